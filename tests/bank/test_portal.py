"""The holder portal over HTTP: sign-in, sessions, links, notices and "not me", history."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kouza.bank.app import create_bank_app
from kouza.bank.core import core
from kouza.bank.models import Customer, InternetBankingLogin, PortalSession
from kouza.bank.notices import IDENTITY_CHECK_FAILED, warn_holder
from kouza.bank.pages import CATALOG
from kouza.bank.runtime import BankRuntime
from kouza.kit.clock import ManualClock
from tests.bank.helpers import make_bank, make_client
from tests.bank.portal_support import (
    NOTICE,
    PORTAL,
    IbCustomer,
    alerts,
    count,
    csrf_of,
    debit,
    ib_customer,
    link,
    link_status,
    sign_in,
    webhook_count,
)


@pytest.fixture
def browser(bank_rt: BankRuntime) -> Iterator[TestClient]:
    with TestClient(create_bank_app(bank_rt)) as client:
        yield client


@pytest.fixture
def taro(bank_rt: BankRuntime) -> IbCustomer:
    make_bank(bank_rt)
    make_client(bank_rt)
    return ib_customer(bank_rt)


@pytest.fixture
def signed_in(browser: TestClient, clock: ManualClock, taro: IbCustomer) -> TestClient:
    answer = sign_in(browser, clock, taro)
    assert answer.status_code == 303 and answer.headers["location"] == PORTAL, answer.text
    return browser


def _page_csrf(browser: TestClient, path: str) -> str:
    return csrf_of(browser.get(path))


class TestSignIn:
    def test_password_and_otp_open_the_home_page(
        self, bank_rt: BankRuntime, signed_in: TestClient
    ) -> None:
        home = signed_in.get(PORTAL)

        assert home.status_code == 200
        assert "山田 太郎" in home.text and "1234567" in home.text and "¥500,000" in home.text
        assert home.headers["Cache-Control"] == "no-store"
        policy = home.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy

    @pytest.mark.parametrize("wrong", ["password", "otp"])
    def test_a_wrong_password_or_otp_reads_the_same_and_signs_nobody_in(
        self, browser: TestClient, clock: ManualClock, taro: IbCustomer, wrong: str
    ) -> None:
        answer = sign_in(
            browser,
            clock,
            taro,
            **({"password": "wrong"} if wrong == "password" else {"otp": "000000"}),
        )

        assert answer.status_code == 400
        assert "Login failed" in answer.text
        for path in (PORTAL, f"{PORTAL}/links"):
            page = browser.get(path)  # still the sign-in form
            assert 'action="/banks/0125/portal/login"' in page.text
            assert "portal/links" not in page.text

    def test_three_failures_lock_the_login_as_on_the_oauth_pages(
        self, bank_rt: BankRuntime, browser: TestClient, clock: ManualClock, taro: IbCustomer
    ) -> None:
        for _ in range(3):
            sign_in(browser, clock, taro, password="wrong")
        clock.advance(seconds=31)

        answer = sign_in(browser, clock, taro)

        assert answer.status_code == 400 and "Login failed" in answer.text
        with bank_rt.db.session() as session:
            assert session.scalars(select(InternetBankingLogin.locked_at)).one() is not None

    def test_the_login_form_needs_its_csrf_token(
        self, bank_rt: BankRuntime, browser: TestClient, taro: IbCustomer
    ) -> None:
        browser.get(PORTAL)
        fields = {"branch_code": "100", "account_number": "1234567", "password": taro.password}

        missing = browser.post(f"{PORTAL}/login", data=fields)
        forged = browser.post(f"{PORTAL}/login", data=fields | {"csrf_token": "forged"})

        assert missing.status_code == forged.status_code == 403
        assert "This form is not valid" in missing.text
        assert count(bank_rt, PortalSession) == 0

    def test_the_session_cookie_is_http_only_same_site_and_secure_over_https(
        self, bank_rt: BankRuntime, clock: ManualClock, taro: IbCustomer
    ) -> None:
        with TestClient(create_bank_app(bank_rt), base_url="https://bank.kouza.test") as browser:
            answer = sign_in(browser, clock, taro)

        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"__Host-kouza_portal_{taro.holder.bank_code}=")
        for attribute in ("HttpOnly", "SameSite=lax", "Path=/", "Secure"):
            assert attribute in cookie

    def test_the_otp_issues_a_new_cookie(
        self, browser: TestClient, clock: ManualClock, taro: IbCustomer
    ) -> None:
        page = browser.get(PORTAL)
        otp_page = browser.post(
            f"{PORTAL}/login",
            data={
                "csrf_token": csrf_of(page),
                "branch_code": "100",
                "account_number": "1234567",
                "password": taro.password,
            },
        )
        before = browser.cookies.get("kouza_portal_0125")

        browser.post(
            f"{PORTAL}/otp",
            data={"csrf_token": csrf_of(otp_page), "otp": taro.totp.at(clock.now())},
            follow_redirects=False,
        )

        assert before and browser.cookies.get("kouza_portal_0125") not in (None, before)


class TestSessions:
    def test_ten_idle_minutes_end_the_session(
        self, signed_in: TestClient, clock: ManualClock
    ) -> None:
        clock.advance(minutes=9)
        assert signed_in.get(f"{PORTAL}/links").status_code == 200
        clock.advance(minutes=10, seconds=1)

        expired = signed_in.get(f"{PORTAL}/links")

        assert expired.status_code == 401 and "session has expired" in expired.text

    def test_an_hour_ends_it_whatever_the_activity(
        self, signed_in: TestClient, clock: ManualClock
    ) -> None:
        for _ in range(6):
            clock.advance(minutes=9)
            assert signed_in.get(PORTAL).status_code == 200
        clock.advance(minutes=7)

        assert signed_in.get(f"{PORTAL}/links").status_code == 401

    def test_sign_out_makes_the_cookie_worthless(self, signed_in: TestClient) -> None:
        cookie = signed_in.cookies.get("kouza_portal_0125")
        csrf = _page_csrf(signed_in, PORTAL)

        out = signed_in.post(f"{PORTAL}/sign-out", data={"csrf_token": csrf})
        signed_in.cookies.set("kouza_portal_0125", cookie or "")
        replayed = signed_in.get(f"{PORTAL}/links")

        assert out.status_code == 200 and "You have signed out" in out.text
        assert replayed.status_code == 401

    def test_a_forged_sign_out_changes_nothing(self, signed_in: TestClient) -> None:
        signed_in.post(f"{PORTAL}/sign-out", data={"csrf_token": "forged"})

        assert signed_in.get(f"{PORTAL}/links").status_code == 200


class TestLinks:
    def test_the_links_page_shows_operator_since_status_and_caps(
        self, bank_rt: BankRuntime, signed_in: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)

        page = signed_in.get(f"{PORTAL}/links")

        row = re.search(rf'<tr data-link="{made.id}">(.*?)</tr>', page.text, re.S)
        assert row is not None, page.text
        assert "ドコモ口座" in row.group(1) and "Active" in row.group(1)
        assert "¥300,000" in row.group(1)
        assert "2026" in row.group(1) or "20" in row.group(1)

    def test_revoke_stops_debits_and_tells_the_operator(
        self, bank_rt: BankRuntime, signed_in: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)
        csrf = _page_csrf(signed_in, f"{PORTAL}/links")

        page = signed_in.post(f"{PORTAL}/links/{made.id}/revoke", data={"csrf_token": csrf})

        assert page.status_code == 200 and "The link to ドコモ口座 is revoked" in page.text
        assert link_status(bank_rt, made.id) == "revoked"
        assert webhook_count(bank_rt) == 1
        again = signed_in.post(f"{PORTAL}/links/{made.id}/revoke", data={"csrf_token": csrf})
        assert again.status_code == 422 and "already revoked" in again.text
        assert webhook_count(bank_rt) == 1

    def test_suspend_and_resume(
        self, bank_rt: BankRuntime, signed_in: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)
        csrf = _page_csrf(signed_in, f"{PORTAL}/links")

        signed_in.post(f"{PORTAL}/links/{made.id}/suspend", data={"csrf_token": csrf})
        suspended = link_status(bank_rt, made.id)
        signed_in.post(f"{PORTAL}/links/{made.id}/resume", data={"csrf_token": csrf})

        assert (suspended, link_status(bank_rt, made.id)) == ("suspended", "active")
        assert webhook_count(bank_rt) == 2

    def test_a_missing_csrf_token_changes_nothing(
        self, bank_rt: BankRuntime, signed_in: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)

        page = signed_in.post(f"{PORTAL}/links/{made.id}/revoke", data={})

        assert page.status_code == 403 and "This form is not valid" in page.text
        assert link_status(bank_rt, made.id) == "active" and webhook_count(bank_rt) == 0

    def test_someone_elses_link_is_not_found(
        self, bank_rt: BankRuntime, signed_in: TestClient, taro: IbCustomer
    ) -> None:
        other = ib_customer(bank_rt, number="7654321", email="someone@example.jp")
        theirs = link(bank_rt, other.holder)
        csrf = _page_csrf(signed_in, f"{PORTAL}/links")

        for link_id in (str(theirs.id), str(uuid.uuid4()), "not-a-uuid"):
            page = signed_in.post(f"{PORTAL}/links/{link_id}/revoke", data={"csrf_token": csrf})
            assert page.status_code == 404, link_id
            assert "There is no such link on your accounts" in page.text
        assert link_status(bank_rt, theirs.id) == "active" and webhook_count(bank_rt) == 0
        assert str(theirs.id) not in signed_in.get(f"{PORTAL}/links").text

    def test_an_unknown_action_is_not_found(
        self, bank_rt: BankRuntime, signed_in: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)
        csrf = _page_csrf(signed_in, f"{PORTAL}/links")

        page = signed_in.post(f"{PORTAL}/links/{made.id}/delete", data={"csrf_token": csrf})

        assert page.status_code == 404 and link_status(bank_rt, made.id) == "active"

    def test_signed_out_actions_change_nothing(
        self, bank_rt: BankRuntime, browser: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)

        page = browser.post(f"{PORTAL}/links/{made.id}/revoke", data={"csrf_token": "x"})

        assert page.status_code == 200 and 'action="/banks/0125/portal/login"' in page.text
        assert link_status(bank_rt, made.id) == "active"


class TestNotices:
    def test_the_link_notice_is_listed_and_not_me_revokes_once(
        self, bank_rt: BankRuntime, signed_in: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)
        page = signed_in.get(f"{PORTAL}/notices")
        assert made.notice_reference in page.text and "New wallet link" in page.text

        first = signed_in.post(
            f"{PORTAL}/notices/not-me",
            data={"csrf_token": csrf_of(page), "reference": made.notice_reference},
        )
        second = signed_in.post(
            f"{PORTAL}/notices/not-me",
            data={"csrf_token": csrf_of(page), "reference": made.notice_reference},
        )

        assert first.status_code == 200 and 'data-outcome="link_revoked"' in first.text
        assert second.status_code == 200 and 'data-outcome="already_reported"' in second.text
        assert link_status(bank_rt, made.id) == "revoked"
        assert alerts(bank_rt) == [("holder_disowned_link", str(made.id))]
        assert webhook_count(bank_rt) == 1
        assert "Reported as not you" in signed_in.get(f"{PORTAL}/notices").text

    def test_someone_elses_notice_is_not_found(
        self, bank_rt: BankRuntime, signed_in: TestClient
    ) -> None:
        other = ib_customer(bank_rt, number="7654321", email="someone@example.jp")
        theirs = link(bank_rt, other.holder)
        csrf = _page_csrf(signed_in, f"{PORTAL}/notices")

        page = signed_in.post(
            f"{PORTAL}/notices/not-me",
            data={"csrf_token": csrf, "reference": theirs.notice_reference},
        )

        assert page.status_code == 404
        assert link_status(bank_rt, theirs.id) == "active" and alerts(bank_rt) == []

    def test_not_me_on_a_security_notice_locks_the_login_and_signs_out(
        self, bank_rt: BankRuntime, signed_in: TestClient, clock: ManualClock, taro: IbCustomer
    ) -> None:
        with bank_rt.db.unit_of_work() as session:
            account = core.account(
                session, bank_code="0125", branch_code="100", number=taro.holder.number
            )
            alert = warn_holder(
                session,
                core.bank(session, "0125"),
                session.get_one(Customer, account.customer_id),
                kind=IDENTITY_CHECK_FAILED,
                client=core.client(session, "kouza-wallet"),
                account=None,
                details={},
            )
            reference = alert.notice_reference
        page = signed_in.get(f"{PORTAL}/notices")
        assert reference in page.text and "Someone used your internet-banking login" in page.text
        cookie = signed_in.cookies.get("kouza_portal_0125") or ""

        done = signed_in.post(
            f"{PORTAL}/notices/not-me", data={"csrf_token": csrf_of(page), "reference": reference}
        )

        assert 'data-outcome="login_locked"' in done.text and "signed out" in done.text
        assert signed_in.cookies.get("kouza_portal_0125") is None
        signed_in.cookies.set("kouza_portal_0125", cookie)
        assert signed_in.get(f"{PORTAL}/notices").status_code == 401
        signed_in.cookies.clear()
        clock.advance(seconds=31)
        assert sign_in(signed_in, clock, taro).status_code == 400
        assert [kind for kind, _ in alerts(bank_rt)] == [
            IDENTITY_CHECK_FAILED,
            "holder_confirmed_compromise",
        ]


class TestNoticeWithoutSigningIn:
    def _open(self, browser: TestClient, reference: str) -> tuple[str, httpx.Response]:
        lookup = browser.get(NOTICE)
        shown = browser.post(
            NOTICE, data={"csrf_token": csrf_of(lookup), "reference": reference.lower()}
        )
        return csrf_of(lookup), shown

    def test_the_reference_opens_the_notice_and_not_me_revokes(
        self, bank_rt: BankRuntime, browser: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)
        csrf, shown = self._open(browser, made.notice_reference)
        assert shown.status_code == 200
        assert "***567" in shown.text and "ドコモ口座" in shown.text
        assert "¥500,000" not in shown.text  # no account data

        done = browser.post(
            f"{NOTICE}/not-me", data={"csrf_token": csrf, "reference": made.notice_reference}
        )
        again = browser.post(
            f"{NOTICE}/not-me", data={"csrf_token": csrf, "reference": made.notice_reference}
        )

        assert 'data-outcome="link_revoked"' in done.text
        assert 'data-outcome="already_reported"' in again.text
        assert link_status(bank_rt, made.id) == "revoked" and webhook_count(bank_rt) == 1
        assert len(alerts(bank_rt)) == 1

    @pytest.mark.parametrize(
        ("reference", "status_code"), [("NM-0000000000", 404), ("nonsense", 400)]
    )
    def test_an_unknown_or_malformed_reference(
        self,
        bank_rt: BankRuntime,
        browser: TestClient,
        taro: IbCustomer,
        reference: str,
        status_code: int,
    ) -> None:
        made = link(bank_rt, taro.holder)
        csrf, shown = self._open(browser, reference)
        done = browser.post(f"{NOTICE}/not-me", data={"csrf_token": csrf, "reference": reference})

        for page in (shown, done):
            assert page.status_code == status_code
            assert "There is no notice with this reference" in page.text
        assert link_status(bank_rt, made.id) == "active" and alerts(bank_rt) == []

    def test_not_me_needs_the_forms_csrf_token(
        self, bank_rt: BankRuntime, browser: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)
        browser.get(NOTICE)

        page = browser.post(f"{NOTICE}/not-me", data={"reference": made.notice_reference})

        assert page.status_code == 403
        assert link_status(bank_rt, made.id) == "active" and alerts(bank_rt) == []

    def test_another_banks_notice_is_not_found(
        self, bank_rt: BankRuntime, browser: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)
        make_bank(bank_rt, "0010")
        lookup = browser.get("/banks/0010/notice")

        shown = browser.post(
            "/banks/0010/notice",
            data={"csrf_token": csrf_of(lookup), "reference": made.notice_reference},
        )

        assert shown.status_code == 404


class TestHistory:
    def test_debits_by_operator_with_totals(
        self, bank_rt: BankRuntime, signed_in: TestClient, taro: IbCustomer
    ) -> None:
        made = link(bank_rt, taro.holder)
        debit(bank_rt, made.id, 30_000)
        debit(bank_rt, made.id, 20_000)

        page = signed_in.get(f"{PORTAL}/history")
        only = signed_in.get(f"{PORTAL}/history", params={"operator": "nobody"})

        totals = re.search(r'<table id="totals">(.*?)</table>', page.text, re.S)
        assert totals is not None
        assert "ドコモ口座" in totals.group(1) and "¥50,000" in totals.group(1)
        movements = re.search(r'<table id="movements">(.*?)</table>', page.text, re.S)
        assert movements is not None
        assert "-¥30,000" in movements.group(1) and "¥450,000" in movements.group(1)
        assert "No debits or credits yet" in only.text


class TestPages:
    def test_every_message_has_japanese_and_english(self) -> None:
        assert CATALOG.incomplete() == []

    def test_pages_are_not_in_the_api_schema(self, browser: TestClient) -> None:
        paths = browser.get("/openapi.json").json()["paths"]
        assert not [path for path in paths if "/portal" in path or path.endswith("/notice")]

    def test_the_assets_are_served_by_the_bank(self, browser: TestClient) -> None:
        for path in ("/static/kit/kit.css", "/static/bank/bank.css", "/static/bank/notice.js"):
            assert browser.get(path).status_code == 200, path

    def test_an_unknown_bank_is_a_page_not_a_trace(self, browser: TestClient) -> None:
        page = browser.get("/banks/9999/portal")
        assert page.status_code == 404 and "text/html" in page.headers["content-type"]
