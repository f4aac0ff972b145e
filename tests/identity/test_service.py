"""The identity service: sign-up, e-mail verification, login, tokens, secrets at rest."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from kouza.errors import BadRequest
from kouza.identity.errors import (
    AlreadyVerified,
    CodeExpired,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
    TooManyAttempts,
    WeakPassword,
)
from kouza.identity.models import AccessToken, EmailVerification, User
from kouza.identity.service import identity
from kouza.kit import outbox, security
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox, Message
from kouza.kit.outbox import OutboxMessage
from kouza.models import Base
from kouza.runtime import Runtime
from tests.factories import PASSWORD, verified_user

CODE = re.compile(r"\b(\d{6})\b")


def signup(rt: Runtime, email: str = "hanako@example.jp", password: str = PASSWORD) -> User:
    with rt.db.unit_of_work() as session:
        return identity.signup(session, email=email, password=password)


def code_sent_to(mailbox: MemoryMailbox, email: str) -> str:
    match = CODE.search(mailbox.last_to(email).body)
    assert match is not None
    return match.group(1)


def verify(rt: Runtime, email: str, code: str) -> User:
    with rt.db.unit_of_work() as session:
        return identity.verify_email(session, email=email, code=code)


def resend(rt: Runtime, email: str) -> None:
    with rt.db.unit_of_work() as session:
        identity.resend_code(session, email=email)


def login(rt: Runtime, email: str, password: str = PASSWORD) -> str:
    with rt.db.unit_of_work() as session:
        return identity.login(session, email=email, password=password, ip="192.0.2.1")


def authenticate(rt: Runtime, token: str) -> User:
    with rt.db.unit_of_work() as session:
        return identity.authenticate(session, token)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def count(rt: Runtime, model: Any) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def codes(rt: Runtime, user: User) -> list[EmailVerification]:
    with rt.db.session() as session:
        return list(
            session.scalars(
                select(EmailVerification)
                .where(EmailVerification.user_id == user.id)
                .order_by(EmailVerification.id)
            )
        )


def stored_user(rt: Runtime, email: str) -> User:
    with rt.db.session() as session:
        return identity.user_by_email(session, email)


def rows_of(rt: Runtime, table: str) -> list[tuple[Any, ...]]:
    with rt.db.session() as session:
        return [tuple(row) for row in session.execute(Base.metadata.tables[table].select())]


def assert_nowhere(rt: Runtime, secret: str, tables: tuple[str, ...]) -> None:
    """``secret`` is neither a value nor part of a value in any column of ``tables``."""
    for table in tables:
        for row in rows_of(rt, table):
            for value in row:
                assert secret != value and secret not in str(value), (table, row)


class TestSignup:
    def test_normalises_the_address_and_starts_at_level_none(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = signup(rt, "Hanako.Yamada@Example.JP")
        assert user.email == "hanako.yamada@example.jp"
        assert user.level == "none"
        assert user.status == "active"
        assert user.email_verified_at is None
        assert user.created_at == clock.now()
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash

    def test_sends_a_six_digit_code_to_the_normalised_address(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        user = signup(rt, "Hanako@Example.JP")
        [message] = mailbox.messages
        assert (message.channel, message.recipient) == ("email", "hanako@example.jp")
        assert message.subject == "kouza: your verification code"
        code = code_sent_to(mailbox, "hanako@example.jp")
        assert "expires in 15 minutes" in message.body
        [stored] = codes(rt, user)
        assert stored.code_hash == security.keyed_hash(rt.secret, code, purpose="email-code")
        assert stored.attempts == 0
        assert stored.expires_at - stored.created_at == timedelta(minutes=15)

    def test_duplicate_address_in_another_case_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        signup(rt, "hanako@example.jp")
        with pytest.raises(EmailTaken) as caught:
            signup(rt, "HANAKO@example.JP", password="another good password")
        assert caught.value.code == "email_taken"
        assert caught.value.status_code == 409
        assert count(rt, User) == 1
        assert count(rt, EmailVerification) == 1
        assert count(rt, OutboxMessage) == 1
        assert len(mailbox.messages) == 1

    WEAK_PASSWORDS = (
        ("9-chars", "short1234", "passwords are 10 to 128 characters long"),
        ("129-chars", "x" * 129, "passwords are 10 to 128 characters long"),
        ("equal-to-email", "Hanako@Example.jp", "this password is too easy to guess"),
        ("3-distinct-chars", "abcabcabcabc", "this password is too easy to guess"),
        ("common", "password1234", "this password is too easy to guess"),
        ("keyboard-walk", "qwertyuiop12", "this password is too easy to guess"),
        ("common-phrase", "iloveyou2020", "this password is too easy to guess"),
    )

    def test_weak_passwords_are_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        for case, password, message in self.WEAK_PASSWORDS:
            with pytest.raises(WeakPassword) as caught:
                signup(rt, "hanako@example.jp", password)
            assert (caught.value.code, caught.value.status_code) == ("weak_password", 422), case
            assert caught.value.message.startswith(message), case
            assert count(rt, User) == 0, case
            assert count(rt, OutboxMessage) == 0, case
            assert mailbox.messages == [], case

    def test_a_long_password_is_judged_not_crashed_on(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        """zxcvbn raises ValueError past 72 characters by default: a 500 at sign-up."""
        long_one = "kq7vR2mxz4-" * 11 + "Zp4w9bQ"  # 128 characters
        assert signup(rt, password=long_one).email == "hanako@example.jp"

    def test_ten_characters_is_enough(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        assert signup(rt, password="kq7vR2mxz4").email == "hanako@example.jp"

    def test_ten_predictable_characters_are_not(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with pytest.raises(WeakPassword) as caught:  # long enough, but zxcvbn scores it 1
            signup(rt, password="abcd123456")
        assert caught.value.details["score"] < caught.value.details["min_score"] == 3
        assert count(rt, User) == 0

    def test_invalid_addresses_are_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        for email in ["not-an-address", "a@", "@example.jp", "a b@example.jp", " a@example.jp"]:
            with pytest.raises(BadRequest) as caught:
                signup(rt, email)
            assert (caught.value.code, caught.value.status_code) == ("bad_request", 400), email
            assert caught.value.message.startswith("not a valid e-mail address"), email
            assert count(rt, User) == 0, email
            assert mailbox.messages == [], email


class TestVerifyEmail:
    def test_right_code_reaches_level_email(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = signup(rt)
        clock.advance(minutes=3)
        verified = verify(rt, "Hanako@Example.jp", code_sent_to(mailbox, "hanako@example.jp"))
        assert verified.id == user.id
        assert verified.level == "email"
        assert verified.email_verified_at == clock.now()
        assert stored_user(rt, "hanako@example.jp").level == "email"
        [stored] = codes(rt, user)
        assert stored.consumed_at == clock.now()

    def test_wrong_code_is_refused_and_the_attempt_is_counted(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        user = signup(rt)
        code = code_sent_to(mailbox, "hanako@example.jp")
        with pytest.raises(InvalidCode) as caught:
            verify(rt, "hanako@example.jp", wrong(code))
        assert (caught.value.code, caught.value.status_code) == ("invalid_code", 400)
        assert [c.attempts for c in codes(rt, user)] == [1]
        assert stored_user(rt, "hanako@example.jp").level == "none"

    def test_after_five_wrong_codes_even_the_right_one_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        user = signup(rt)
        code = code_sent_to(mailbox, "hanako@example.jp")
        for _ in range(5):
            with pytest.raises(InvalidCode):
                verify(rt, "hanako@example.jp", wrong(code))
        assert [c.attempts for c in codes(rt, user)] == [5]
        with pytest.raises(TooManyAttempts) as caught:
            verify(rt, "hanako@example.jp", code)
        assert (caught.value.code, caught.value.status_code) == ("too_many_attempts", 429)
        assert stored_user(rt, "hanako@example.jp").level == "none"
        assert [c.attempts for c in codes(rt, user)] == [5]

    def test_fourth_wrong_code_still_leaves_the_right_one(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        signup(rt)
        code = code_sent_to(mailbox, "hanako@example.jp")
        for _ in range(4):
            with pytest.raises(InvalidCode):
                verify(rt, "hanako@example.jp", wrong(code))
        assert verify(rt, "hanako@example.jp", code).level == "email"

    def test_expired_code_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        signup(rt)
        code = code_sent_to(mailbox, "hanako@example.jp")
        clock.advance(minutes=15, seconds=1)
        with pytest.raises(CodeExpired) as caught:
            verify(rt, "hanako@example.jp", code)
        assert (caught.value.code, caught.value.status_code) == ("code_expired", 400)
        assert stored_user(rt, "hanako@example.jp").level == "none"

    def test_code_just_before_expiry_is_accepted(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        signup(rt)
        clock.advance(minutes=14, seconds=59)
        assert (
            verify(rt, "hanako@example.jp", code_sent_to(mailbox, "hanako@example.jp")).level
            == "email"
        )

    def test_code_is_single_use(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        signup(rt)
        code = code_sent_to(mailbox, "hanako@example.jp")
        verify(rt, "hanako@example.jp", code)
        with pytest.raises(AlreadyVerified) as caught:
            verify(rt, "hanako@example.jp", code)
        assert caught.value.status_code == 409

    def test_unknown_address(self, rt: Runtime) -> None:
        with pytest.raises(InvalidCode):
            verify(rt, "nobody@example.jp", "123456")


class TestResendCode:
    def test_within_a_minute_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = signup(rt)
        clock.advance(seconds=59)
        with pytest.raises(TooManyAttempts) as caught:
            resend(rt, "hanako@example.jp")
        assert caught.value.status_code == 429
        assert len(mailbox.messages) == 1
        assert len(codes(rt, user)) == 1

    def test_after_a_minute_a_new_code_works_and_the_old_one_does_not(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = signup(rt)
        old = code_sent_to(mailbox, "hanako@example.jp")
        clock.advance(seconds=60)
        resend(rt, "hanako@example.jp")
        assert len(mailbox.messages) == 2
        new = code_sent_to(mailbox, "hanako@example.jp")
        if new == old:  # one chance in a million
            pytest.skip("the two random codes are equal")
        first, second = codes(rt, user)
        assert first.consumed_at == clock.now()
        assert second.consumed_at is None
        with pytest.raises(InvalidCode):
            verify(rt, "hanako@example.jp", old)
        assert verify(rt, "hanako@example.jp", new).level == "email"

    def test_resend_gives_fresh_attempts(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        signup(rt)
        code = code_sent_to(mailbox, "hanako@example.jp")
        for _ in range(5):
            with pytest.raises(InvalidCode):
                verify(rt, "hanako@example.jp", wrong(code))
        clock.advance(minutes=1)
        resend(rt, "hanako@example.jp")
        assert (
            verify(rt, "hanako@example.jp", code_sent_to(mailbox, "hanako@example.jp")).level
            == "email"
        )

    def test_unknown_or_verified_address_gets_nothing(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        resend(rt, "nobody@example.jp")
        assert mailbox.messages == []
        user = verified_user(rt, mailbox, "hanako@example.jp")
        clock.advance(minutes=5)
        resend(rt, "hanako@example.jp")
        assert len(mailbox.messages) == 1
        assert len(codes(rt, user)) == 1


class TestLogin:
    def test_returns_a_token_for_the_user(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = verified_user(rt, mailbox, "hanako@example.jp")
        token = login(rt, "HANAKO@example.jp")
        assert len(token) >= 40
        assert authenticate(rt, token).id == user.id
        with rt.db.session() as session:
            [row] = session.scalars(select(AccessToken)).all()
        assert row.user_id == user.id
        assert row.ip == "192.0.2.1"
        assert row.expires_at == clock.now() + timedelta(seconds=rt.settings.token_ttl_seconds)
        assert row.revoked_at is None

    def test_each_login_gets_a_new_token(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        verified_user(rt, mailbox, "hanako@example.jp")
        assert login(rt, "hanako@example.jp") != login(rt, "hanako@example.jp")

    def test_failures_look_the_same(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        verified_user(rt, mailbox, "hanako@example.jp")
        for email, password in [
            ("hanako@example.jp", "wrong password 123"),
            ("nobody@example.jp", PASSWORD),
            ("not an address", PASSWORD),
            ("hanako@example.jp", ""),
            ("hanako@example.jp", PASSWORD + " "),
        ]:
            with pytest.raises(InvalidCredentials) as caught:
                login(rt, email, password)
            failure = (
                caught.value.code,
                caught.value.status_code,
                caught.value.message,
                caught.value.details,
            )
            assert failure == (
                "invalid_credentials",
                401,
                "wrong e-mail address or password",
                {},
            ), (email, password)
        assert count(rt, AccessToken) == 0

    def test_unverified_user_may_log_in(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        user = signup(rt)
        assert authenticate(rt, login(rt, "hanako@example.jp")).id == user.id


class TestAuthenticate:
    def test_token_expires_after_its_ttl(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        verified_user(rt, mailbox, "hanako@example.jp")
        token = login(rt, "hanako@example.jp")
        clock.advance(seconds=rt.settings.token_ttl_seconds - 1)
        assert authenticate(rt, token).email == "hanako@example.jp"
        clock.advance(seconds=1)
        with pytest.raises(InvalidToken) as caught:
            authenticate(rt, token)
        assert (caught.value.code, caught.value.status_code) == ("invalid_token", 401)

    def test_unknown_tokens(self, rt: Runtime) -> None:
        for token in ["", "not-a-token", "x" * 500]:
            with pytest.raises(InvalidToken):
                authenticate(rt, token)

    def test_disabled_user(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        user = verified_user(rt, mailbox, "hanako@example.jp")
        token = login(rt, "hanako@example.jp")
        with rt.db.unit_of_work() as session:
            identity.get_user(session, user.id).status = "disabled"
        with pytest.raises(InvalidToken):
            authenticate(rt, token)
        with pytest.raises(InvalidCredentials, match="disabled"):
            login(rt, "hanako@example.jp")


class TestLogout:
    def test_revokes_only_that_token(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        verified_user(rt, mailbox, "hanako@example.jp")
        phone, laptop = login(rt, "hanako@example.jp"), login(rt, "hanako@example.jp")
        with rt.db.unit_of_work() as session:
            identity.logout(session, phone)
        with pytest.raises(InvalidToken):
            authenticate(rt, phone)
        assert authenticate(rt, laptop).email == "hanako@example.jp"
        with rt.db.session() as session:
            revoked = sorted(str(t.revoked_at) for t in session.scalars(select(AccessToken)))
        assert revoked == sorted([str(clock.now()), "None"])


class TestSecretsAtRest:
    def test_the_code_is_stored_only_as_a_keyed_hash(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        user = signup(rt)
        code = code_sent_to(mailbox, "hanako@example.jp")
        [stored] = codes(rt, user)
        assert stored.code_hash != code
        assert len(stored.code_hash) == 64
        assert_nowhere(rt, code, ("email_verifications", "users", "outbox_messages"))

    def test_outbox_payload_is_erased_after_delivery(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        signup(rt)
        with rt.db.session() as session:
            message = session.scalars(select(OutboxMessage)).one()
        assert message.payload is None
        assert message.delivered_at == clock.now()
        assert message.attempts == 1
        assert message.recipient == "hanako@example.jp"

    def test_pending_outbox_payload_does_not_reveal_the_code(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        class Down:
            def send(self, message: Message) -> None:
                raise ConnectionError("smtp down")

        rt.senders["email"] = Down()
        user = signup(rt)
        with rt.db.session() as session:
            message = session.scalars(select(OutboxMessage)).one()
        assert message.delivered_at is None
        assert message.payload is not None
        assert message.last_error == "ConnectionError: smtp down"
        # the code is in no column while the message waits; learn it by delivering it later
        stored_payload = message.payload
        rt.senders["email"] = mailbox
        with rt.db.session() as session:
            assert outbox.deliver(session) == 1
        code = code_sent_to(mailbox, "hanako@example.jp")
        assert code not in stored_payload
        assert "verification code" not in stored_payload
        [stored] = codes(rt, user)
        assert stored.code_hash == security.keyed_hash(rt.secret, code, purpose="email-code")
        assert_nowhere(rt, code, ("email_verifications", "outbox_messages"))

    def test_the_token_is_stored_only_as_a_keyed_hash(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        verified_user(rt, mailbox, "hanako@example.jp")
        token = login(rt, "hanako@example.jp")
        with rt.db.session() as session:
            [row] = session.scalars(select(AccessToken)).all()
        assert row.token_hash != token
        assert row.token_hash == security.keyed_hash(rt.secret, token, purpose="token")
        assert_nowhere(rt, token, tuple(Base.metadata.tables))
