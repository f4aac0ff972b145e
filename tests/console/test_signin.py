"""Sign-in, sessions, sign-out, CSRF, throttling and roles of the console."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from kouza.api.app import create_app
from kouza.cli import common
from kouza.cli.main import app
from kouza.console.auth import console_auth, idle_limit, session_limit
from kouza.console.models import ConsoleCredential, ConsoleSession
from kouza.console.web import catalog
from kouza.controls.models import AuditEvent, OperatorRole
from kouza.kit.clock import ManualClock
from kouza.runtime import Runtime
from tests.console.support import PASSWORD, csrf_of, make_staff, sign_in


def sessions(rt: Runtime) -> int:
    with rt.db.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(ConsoleSession)) or 0)


def test_every_message_is_in_japanese_and_english() -> None:
    assert catalog.incomplete() == []


class TestSignIn:
    def test_password_and_code_open_a_session_with_a_strict_http_only_cookie(
        self, client: TestClient, rt: Runtime
    ) -> None:
        staff = make_staff(rt, "aiko")
        answer = sign_in(client, rt, staff)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("kouza_console=")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
        page = client.get("/console/")
        assert page.status_code == 200 and "aiko" in page.text
        assert sessions(rt) == 1
        with rt.db.unit_of_work() as session:
            event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event is not None
        assert (event.actor, event.action) == ("console:aiko", "console.sign_in")

    def test_over_https_the_cookie_is_host_prefixed_and_secure(self, rt: Runtime) -> None:
        staff = make_staff(rt, "aiko")
        with TestClient(create_app(rt), base_url="https://testserver") as client:
            answer = sign_in(client, rt, staff)
            cookie = next(
                c
                for c in answer.headers.get_list("set-cookie")
                if c.startswith("__Host-kouza_console=")
            )
            assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
            assert client.get("/console/").status_code == 200

    @pytest.mark.parametrize("what", ["password", "code", "name"])
    def test_a_wrong_field_is_refused_with_one_message_and_no_session(
        self, client: TestClient, rt: Runtime, what: str
    ) -> None:
        staff = make_staff(rt, "aiko")
        if what == "password":
            staff.password = "wrong password here"
        elif what == "name":
            staff.name = "nobody"
        answer = sign_in(client, rt, staff, code="000000" if what == "code" else None)
        assert answer.status_code == 401
        assert "Wrong operator name, password or code." in answer.text or "違います" in answer.text
        assert sessions(rt) == 0
        assert client.get("/console/", follow_redirects=False).headers["location"] == (
            "/console/login"
        )

    def test_a_code_is_accepted_once(self, client: TestClient, rt: Runtime) -> None:
        staff = make_staff(rt, "aiko")
        assert sign_in(client, rt, staff).status_code == 303
        client.cookies.clear()
        assert sign_in(client, rt, staff).status_code == 401
        assert sign_in(client, rt, staff, step=1).status_code == 303

    def test_the_form_needs_its_csrf_token(self, client: TestClient, rt: Runtime) -> None:
        staff = make_staff(rt, "aiko")
        answer = client.post(
            "/console/login",
            data={"name": staff.name, "password": PASSWORD, "code": staff.totp.at(rt.now())},
        )
        assert answer.status_code == 403
        assert sessions(rt) == 0

    def test_failures_lock_the_operator_out_before_the_password_is_checked(
        self, client: TestClient, rt: Runtime
    ) -> None:
        rt.settings.console_signin_failures_per_operator = 3  # an operator's setting
        staff = make_staff(rt, "aiko")
        for _ in range(3):
            assert sign_in(client, rt, staff, code="000000").status_code == 401
        answer = sign_in(client, rt, staff)
        assert answer.status_code == 429
        assert int(answer.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in answer.text or "多すぎます" in answer.text
        assert sessions(rt) == 0


class TestSessions:
    def test_an_idle_session_ends(
        self, client: TestClient, rt: Runtime, clock: ManualClock
    ) -> None:
        rt.settings.console_session_idle_minutes = 15
        idle = idle_limit(rt.settings)
        assert idle == timedelta(minutes=15)
        sign_in(client, rt, make_staff(rt, "aiko"))
        clock.advance(seconds=int((idle - timedelta(minutes=1)).total_seconds()))
        assert client.get("/console/").status_code == 200
        clock.advance(seconds=int((idle - timedelta(minutes=1)).total_seconds()))
        assert client.get("/console/").status_code == 200
        clock.advance(seconds=int((idle + timedelta(seconds=1)).total_seconds()))
        answer = client.get("/console/", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
        assert sessions(rt) == 0

    def test_a_busy_session_ends_at_its_absolute_expiry(
        self, client: TestClient, rt: Runtime, clock: ManualClock
    ) -> None:
        sign_in(client, rt, make_staff(rt, "aiko"))
        steps = int(session_limit(rt.settings) / timedelta(minutes=20))
        for _ in range(steps - 1):
            clock.advance(seconds=20 * 60)
            assert client.get("/console/").status_code == 200
        clock.advance(seconds=20 * 60)
        assert client.get("/console/", follow_redirects=False).status_code == 303

    def test_sign_out_deletes_the_session(self, client: TestClient, rt: Runtime) -> None:
        sign_in(client, rt, make_staff(rt, "aiko"))
        cookie = client.cookies.get("kouza_console")
        page = client.get("/console/")
        answer = client.post(
            "/console/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
        assert sessions(rt) == 0
        client.cookies.set("kouza_console", cookie or "")
        assert client.get("/console/", follow_redirects=False).status_code == 303

    def test_sign_out_without_the_csrf_token_changes_nothing(
        self, client: TestClient, rt: Runtime
    ) -> None:
        sign_in(client, rt, make_staff(rt, "aiko"))
        assert client.post("/console/logout", data={"csrf_token": "0" * 64}).status_code == 403
        assert sessions(rt) == 1
        assert client.get("/console/").status_code == 200

    def test_htmx_requests_without_a_session_are_told_where_to_sign_in(
        self, client: TestClient
    ) -> None:
        answer = client.get("/console/", headers={"HX-Request": "true"})
        assert answer.status_code == 401 and answer.headers["HX-Redirect"] == "/console/login"

    def test_resetting_the_credential_ends_the_sessions(
        self, client: TestClient, rt: Runtime
    ) -> None:
        staff = make_staff(rt, "aiko")
        sign_in(client, rt, staff)
        with rt.db.unit_of_work() as session:
            console_auth.set_credential(
                session, operator_name="aiko", password=PASSWORD, actor="test"
            )
        assert client.get("/console/", follow_redirects=False).status_code == 303


class TestRoles:
    def test_call_centre_staff_land_on_their_page_and_see_only_it(
        self, client: TestClient, rt: Runtime
    ) -> None:
        staff = make_staff(rt, "chika", OperatorRole.CALL_CENTRE)
        answer = sign_in(client, rt, staff)
        assert answer.headers["location"] == "/console/call-centre"
        assert client.get("/console/", follow_redirects=False).headers["location"] == (
            "/console/call-centre"
        )


class TestCli:
    def test_operators_create_with_console_prints_a_totp_uri_and_stores_no_seed(
        self, rt: Runtime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(common, "_runtime", rt)
        result = CliRunner().invoke(
            app,
            ["operators", "create", "daichi", "--role", "call_centre", "--console"],
            input=f"{PASSWORD}\n{PASSWORD}\n",
        )
        assert result.exit_code == 0, result.output
        uri = next(line for line in result.output.splitlines() if line.startswith("otpauth://"))
        seed = uri.split("secret=")[1].split("&")[0]
        with rt.db.unit_of_work() as session:
            stored = session.scalars(select(ConsoleCredential)).one()
        assert seed not in stored.totp_seed_encrypted and PASSWORD not in stored.password_hash

    def test_a_short_password_is_refused(
        self, rt: Runtime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(common, "_runtime", rt)
        result = CliRunner().invoke(
            app, ["operators", "create", "eri", "--console"], input="short\nshort\n"
        )
        assert result.exit_code == 1 and "at least 12 characters" in result.output
