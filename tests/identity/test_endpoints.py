"""Identity over HTTP: /v1/auth/*, /v1/me, and the app's meta endpoints."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kouza.api.app import create_app
from kouza.identity.models import AccessToken, EmailVerification, User
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.factories import PASSWORD
from tests.problems import problem

CODE = re.compile(r"\b(\d{6})\b")
EMAIL = "hanako@example.jp"


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt)) as test_client:
        yield test_client


def code_sent_to(mailbox: MemoryMailbox, email: str = EMAIL) -> str:
    match = CODE.search(mailbox.last_to(email).body)
    assert match is not None
    return match.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def count(rt: Runtime, model: Any) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def signed_up(client: TestClient, mailbox: MemoryMailbox, email: str = EMAIL) -> str:
    """Sign up and verify through the API; returns a bearer token."""
    assert (
        client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD}).status_code
        == 202
    )
    assert (
        client.post(
            "/v1/auth/verify-email", json={"email": email, "code": code_sent_to(mailbox, email)}
        ).status_code
        == 200
    )
    response = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: Any, error: str = "invalid_token") -> None:
    assert response.status_code == 401
    assert response.json()["error"] == error
    assert response.headers["WWW-Authenticate"] == "Bearer"


class TestSignup:
    def test_creates_the_user_with_a_normalised_address(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        response = client.post(
            "/v1/auth/signup", json={"email": "Hanako@Example.JP", "password": PASSWORD}
        )
        assert response.status_code == 202
        assert response.json() == {"status": "check_your_email", "email": EMAIL}
        with rt.db.session() as session:
            user = session.scalars(select(User)).one()
        assert (user.email, user.level, user.email_verified_at) == (EMAIL, "none", None)
        assert user.created_at == clock.now()
        assert mailbox.last_to(EMAIL).recipient == EMAIL
        assert "Your code is" in mailbox.last_to(EMAIL).body

    def test_a_registered_address_gets_the_same_answer_and_a_warning(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        """On the old code the second sign-up answered 409 email_taken: anyone could test
        whether an address had an account."""
        first = client.post("/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        again = client.post(
            "/v1/auth/signup", json={"email": "HANAKO@example.jp", "password": PASSWORD + "!"}
        )
        assert (again.status_code, again.content, again.headers["content-type"]) == (
            first.status_code,
            first.content,
            first.headers["content-type"],
        )
        assert count(rt, User) == 1
        assert len(mailbox.messages) == 2
        warning = mailbox.last_to(EMAIL)
        assert "someone tried to sign up with your address" in warning.subject
        assert "Nothing was changed" in warning.body
        assert not re.search(r"\b\d{6}\b", warning.body)  # no code: the account exists

    BAD_INPUT: tuple[tuple[str, Any, int, str], ...] = (
        ("short-password", {"email": EMAIL, "password": "short"}, 422, "validation_error"),
        ("password-is-email", {"email": EMAIL, "password": EMAIL.upper()}, 422, "weak_password"),
        ("common-password", {"email": EMAIL, "password": "password1234"}, 422, "weak_password"),
        ("bad-address", {"email": "not-an-address", "password": PASSWORD}, 400, "bad_request"),
        ("missing-password", {"email": EMAIL}, 422, "validation_error"),
        ("null-email", {"email": None, "password": PASSWORD}, 422, "validation_error"),
        ("number-password", {"email": EMAIL, "password": 1234567890123}, 422, "validation_error"),
        (
            "extra-field",
            {"email": EMAIL, "password": PASSWORD, "level": "verified"},
            422,
            "validation_error",
        ),
        ("address-too-long", {"email": "x" * 321, "password": PASSWORD}, 422, "validation_error"),
        ("password-too-long", {"email": EMAIL, "password": "x" * 129}, 422, "validation_error"),
        ("not-an-object", ["hanako@example.jp", PASSWORD], 422, "validation_error"),
    )

    def test_bad_input(self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox) -> None:
        for case, body, status, error in self.BAD_INPUT:
            response = client.post("/v1/auth/signup", json=body)
            assert response.status_code == status, (case, response.text)
            assert response.json()["error"] == error, case
            assert response.json()["message"], case
            assert count(rt, User) == 0, case
            assert mailbox.messages == [], case


class TestVerifyEmail:
    def test_right_code(
        self, client: TestClient, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        client.post("/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        response = client.post(
            "/v1/auth/verify-email", json={"email": EMAIL, "code": code_sent_to(mailbox)}
        )
        assert response.status_code == 200
        assert response.json()["level"] == "email"
        assert response.json()["email_verified_at"] is not None

    def test_wrong_codes_are_counted_across_requests(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        client.post("/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        code = code_sent_to(mailbox)
        for attempt in range(1, 6):
            response = client.post(
                "/v1/auth/verify-email", json={"email": EMAIL, "code": wrong(code)}
            )
            assert response.status_code == 400
            assert response.json() == problem(400, "invalid_code", "wrong or unknown code")
            with rt.db.session() as session:
                assert session.scalars(select(EmailVerification.attempts)).one() == attempt
        response = client.post("/v1/auth/verify-email", json={"email": EMAIL, "code": code})
        assert response.status_code == 429
        assert response.json()["error"] == "too_many_attempts"
        with rt.db.session() as session:
            assert session.scalars(select(User.level)).one() == "none"

    def test_parallel_wrong_codes_cannot_exceed_the_attempt_limit(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        if rt.db.dialect != "postgresql":
            pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
        client.post("/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        guess = wrong(code_sent_to(mailbox))
        barrier = threading.Barrier(12)
        statuses: list[Any] = [None] * 12

        def attempt(index: int) -> None:
            with TestClient(client.app) as own_client:
                barrier.wait()
                try:
                    statuses[index] = own_client.post(
                        "/v1/auth/verify-email", json={"email": EMAIL, "code": guess}
                    ).status_code
                except Exception as exc:  # reported by the assertion below
                    statuses[index] = exc

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert all(status in (400, 429) for status in statuses), statuses
        with rt.db.session() as session:
            counted = session.scalars(select(EmailVerification.attempts)).one()
        guesses_checked = statuses.count(400)
        assert (guesses_checked, counted) == (5, 5), statuses

    def test_expired_code(
        self, client: TestClient, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        client.post("/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        clock.advance(minutes=15, seconds=1)
        response = client.post(
            "/v1/auth/verify-email", json={"email": EMAIL, "code": code_sent_to(mailbox)}
        )
        assert response.status_code == 400
        assert response.json()["error"] == "code_expired"

    def test_malformed_codes_are_not_attempts(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        client.post("/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        for code in ["12345", "1234567", "abcdef", "12 345", 123456, None]:
            response = client.post("/v1/auth/verify-email", json={"email": EMAIL, "code": code})
            assert response.status_code == 422, code
            assert response.json()["error"] == "validation_error", code
            assert response.json()["details"]["problems"][0]["field"] == "body.code", code
        with rt.db.session() as session:
            assert session.scalars(select(EmailVerification.attempts)).one() == 0
        response = client.post(
            "/v1/auth/verify-email", json={"email": EMAIL, "code": f" {code_sent_to(mailbox)} "}
        )
        assert response.status_code == 200


class TestResendCode:
    def test_throttled_then_allowed(
        self, client: TestClient, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        client.post("/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        old = code_sent_to(mailbox)
        response = client.post("/v1/auth/resend-code", json={"email": EMAIL})
        assert response.status_code == 429
        assert response.json()["error"] == "too_many_attempts"
        clock.advance(seconds=60)
        response = client.post("/v1/auth/resend-code", json={"email": EMAIL})
        assert response.status_code == 202
        assert len(mailbox.messages) == 2
        new = code_sent_to(mailbox)
        if new != old:
            assert (
                client.post("/v1/auth/verify-email", json={"email": EMAIL, "code": old}).status_code
                == 400
            )
        assert (
            client.post("/v1/auth/verify-email", json={"email": EMAIL, "code": new}).status_code
            == 200
        )

    def test_unknown_address_looks_the_same(
        self, client: TestClient, mailbox: MemoryMailbox
    ) -> None:
        response = client.post("/v1/auth/resend-code", json={"email": "nobody@example.jp"})
        assert response.status_code == 202
        assert mailbox.messages == []


class TestLogin:
    def test_token_opens_me(self, client: TestClient, mailbox: MemoryMailbox, rt: Runtime) -> None:
        client.post("/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        response = client.post(
            "/v1/auth/login", json={"email": "Hanako@EXAMPLE.jp", "password": PASSWORD}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == rt.settings.token_ttl_seconds
        me = client.get("/v1/me", headers=bearer(body["access_token"]))
        assert me.status_code == 200
        assert (me.json()["email"], me.json()["level"]) == (EMAIL, "none")

    def test_failures_look_the_same(
        self, client: TestClient, mailbox: MemoryMailbox, rt: Runtime
    ) -> None:
        client.post("/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        for body in [
            {"email": EMAIL, "password": "wrong password 1"},
            {"email": "nobody@example.jp", "password": PASSWORD},
            {"email": "not-an-address", "password": PASSWORD},
        ]:
            response = client.post("/v1/auth/login", json=body)
            assert_unauthorized(response, "invalid_credentials")
            assert response.json() == problem(
                401, "invalid_credentials", "wrong e-mail address or password"
            ), body
        assert count(rt, AccessToken) == 0


class TestMe:
    def test_missing_or_invalid_token(self, client: TestClient) -> None:
        for headers in [
            {},
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": "Basic aGFuYWtvOng="},
            {"Authorization": "Bearer"},
            {"Authorization": "Token abc"},
            {"Authorization": "bearer"},
        ]:
            assert_unauthorized(client.get("/v1/me", headers=headers))

    def test_token_expires(
        self, client: TestClient, mailbox: MemoryMailbox, rt: Runtime, clock: ManualClock
    ) -> None:
        token = signed_up(client, mailbox)
        clock.advance(seconds=rt.settings.token_ttl_seconds - 1)
        assert client.get("/v1/me", headers=bearer(token)).status_code == 200
        clock.advance(seconds=1)
        assert_unauthorized(client.get("/v1/me", headers=bearer(token)))


class TestLogout:
    def test_revokes_the_token(self, client: TestClient, mailbox: MemoryMailbox) -> None:
        token = signed_up(client, mailbox)
        response = client.post("/v1/auth/logout", headers=bearer(token))
        assert response.status_code == 204
        assert response.content == b""
        assert_unauthorized(client.get("/v1/me", headers=bearer(token)))
        assert_unauthorized(client.post("/v1/auth/logout", headers=bearer(token)))

    def test_needs_a_token(self, client: TestClient) -> None:
        assert_unauthorized(client.post("/v1/auth/logout"))


class TestMeta:
    def test_openapi_lists_the_paths_and_their_errors(self, client: TestClient) -> None:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        spec = response.json()
        assert {
            "/v1/auth/signup",
            "/v1/auth/verify-email",
            "/v1/auth/resend-code",
            "/v1/auth/login",
            "/v1/auth/logout",
            "/v1/me",
            "/v1/wallets",
            "/v1/wallets/{wallet_id}",
            "/v1/wallets/{wallet_id}/statement",
            "/v1/wallets/{wallet_id}/payments",
            "/v1/wallets/{wallet_id}/transfers",
            "/health",
        } <= set(spec["paths"])
        signup = spec["paths"]["/v1/auth/signup"]["post"]["responses"]
        assert {"202", "400", "413", "422"} == set(signup)  # no 409: nothing to enumerate
        pay = spec["paths"]["/v1/wallets/{wallet_id}/payments"]["post"]
        assert {"201", "400", "401", "403", "404", "409", "422"} <= set(pay["responses"])
        assert any(
            p["name"] == "Idempotency-Key" and p["in"] == "header" and p["required"]
            for p in pay["parameters"]
        )

    def test_docs(self, client: TestClient) -> None:
        response = client.get("/docs")
        assert response.status_code == 200
        assert "swagger" in response.text.lower()

    def test_health(self, client: TestClient, rt: Runtime) -> None:
        response = client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": rt.db.dialect}
