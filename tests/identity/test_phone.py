"""Phone numbers and SMS codes: normalisation, verification, attempts, throttling, rate limits."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from kouza.identity.errors import (
    CodeExpired,
    InvalidCode,
    InvalidDeviceKey,
    InvalidPhoneNumber,
    LevelRequired,
    PhoneAlreadyVerified,
    PhoneInUse,
    RateLimited,
    TooManyAttempts,
    UnknownChallenge,
)
from kouza.identity.models import (
    Device,
    OtpChallenge,
    RateLimitHit,
    User,
    UserPhone,
    VerificationLevel,
)
from kouza.identity.phones import normalize_phone
from kouza.identity.service import identity
from kouza.kit import security
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.factories import PASSWORD, verified_user
from tests.identity.support import (
    E164,
    PHONE,
    DeviceKey,
    configure,
    count,
    load_user,
    phone_user,
    sms_code,
    wrong,
)


def start(rt: Runtime, user: User, phone: str = PHONE, ip: str = "192.0.2.1") -> OtpChallenge:
    with rt.db.unit_of_work() as session:
        return identity.start_phone_verification(session, user, phone=phone, ip=ip)


def confirm(
    rt: Runtime, user: User, challenge: OtpChallenge, code: str, key: DeviceKey | None = None
) -> Device:
    with rt.db.unit_of_work() as session:
        return identity.complete_phone_verification(
            session,
            user,
            challenge_id=challenge.id,
            code=code,
            device_jwk=(key or DeviceKey.es256()).public_jwk,
            device_name="Hanako's phone",
        )


def attempts_of(rt: Runtime, challenge: OtpChallenge) -> int:
    with rt.db.session() as session:
        row = session.get(OtpChallenge, challenge.id)
        assert row is not None
        return row.attempts


class TestNormalizePhone:
    CASES = (
        ("090-1234-5678", "+819012345678"),
        ("09012345678", "+819012345678"),
        ("０９０−１２３４−５６７８", "+819012345678"),
        ("+81 90 1234 5678", "+819012345678"),
        ("+81-(0)90-1234-5678", "+819012345678"),
        ("070 1234 5678", "+817012345678"),
        ("080-9876-5432", "+818098765432"),
        ("+1 650 253 0000", "+16502530000"),
        ("+44 7400 123456", "+447400123456"),
    )
    REFUSED = (
        ("", "not a phone number"),
        ("abc", "not a phone number"),
        ("090-1234-567", "not a valid phone number"),
        ("03-1234-5678", "not a mobile number"),
        ("0120-123-456", "not a mobile number"),
        ("050-1234-5678", "not a mobile number"),
        ("+44 20 7946 0000", "not a mobile number"),
        ("0" * 41, "at most 40 characters"),
    )

    def test_mobile_numbers_become_e164(self) -> None:
        for raw, expected in self.CASES:
            assert normalize_phone(raw) == expected, raw

    def test_others_are_refused_with_a_reason(self) -> None:
        for raw, reason in self.REFUSED:
            with pytest.raises(InvalidPhoneNumber) as caught:
                normalize_phone(raw)
            assert reason in caught.value.message, raw
            assert caught.value.status_code == 400


class TestStartPhoneVerification:
    def test_sends_a_code_to_the_e164_number_and_stores_only_its_hash(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = verified_user(rt, mailbox)
        challenge = start(rt, user, "０９０−１２３４−５６７８")
        message = mailbox.last_to(E164)
        assert message.channel == "sms"
        assert "expires in 5 minutes" in message.body
        code = sms_code(mailbox)
        assert (challenge.e164, challenge.attempts) == (E164, 0)
        assert challenge.expires_at == clock.now() + timedelta(minutes=5)
        assert challenge.code_hash == security.keyed_hash(
            rt.secret, f"{challenge.id}\x00{code}", purpose="sms-code"
        )
        assert code not in challenge.code_hash

    def test_needs_a_verified_email(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        with rt.db.unit_of_work() as session:
            user = identity.signup(session, email="new@example.jp", password=PASSWORD)
        with pytest.raises(LevelRequired):
            start(rt, user)
        assert count(rt, OtpChallenge) == 0

    def test_invalid_number_sends_nothing(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        user = verified_user(rt, mailbox)
        sent = len(mailbox.messages)
        with pytest.raises(InvalidPhoneNumber):
            start(rt, user, "03-1234-5678")
        assert len(mailbox.messages) == sent
        assert count(rt, OtpChallenge) == 0
        assert count(rt, RateLimitHit) == 0


class TestCompletePhoneVerification:
    def test_right_code_reaches_phone_level_with_the_first_device(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = verified_user(rt, mailbox)
        challenge = start(rt, user)
        clock.advance(minutes=4, seconds=59)
        key = DeviceKey.ed25519()
        device = confirm(rt, user, challenge, sms_code(mailbox), key)
        assert (device.user_id, device.algorithm, device.name) == (
            user.id,
            "Ed25519",
            "Hanako's phone",
        )
        assert device.thumbprint == key.key.thumbprint()
        assert device.created_at == clock.now()
        assert load_user(rt, user.id).level == VerificationLevel.PHONE.value
        with rt.db.session() as session:
            phone = session.get(UserPhone, user.id)
            assert phone is not None
            assert (phone.e164, phone.verified_at) == (E164, clock.now())

    def test_expired_code_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = verified_user(rt, mailbox)
        challenge = start(rt, user)
        clock.advance(minutes=5)
        with pytest.raises(CodeExpired):
            confirm(rt, user, challenge, sms_code(mailbox))
        assert load_user(rt, user.id).level == "email"
        assert count(rt, Device) == 0

    def test_five_wrong_codes_lock_the_challenge_and_the_count_persists(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        user = verified_user(rt, mailbox)
        challenge = start(rt, user)
        code = sms_code(mailbox)
        for left in (4, 3, 2, 1, 0):
            with pytest.raises(InvalidCode) as caught:
                confirm(rt, user, challenge, wrong(code))
            assert caught.value.details == {"attempts_left": left}
        assert attempts_of(rt, challenge) == 5
        with pytest.raises(TooManyAttempts):
            confirm(rt, user, challenge, code)
        assert attempts_of(rt, challenge) == 5
        assert load_user(rt, user.id).level == "email"

    def test_code_is_single_use(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        someone = phone_user(rt, mailbox)
        with rt.db.session() as session:
            challenge = session.query(OtpChallenge).one()
        with pytest.raises(PhoneAlreadyVerified):
            confirm(rt, someone.user, challenge, sms_code(mailbox))

    def test_another_users_challenge_is_unknown(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        owner = verified_user(rt, mailbox)
        challenge = start(rt, owner)
        other = verified_user(rt, mailbox)
        with pytest.raises(UnknownChallenge):
            confirm(rt, other, challenge, sms_code(mailbox))
        assert attempts_of(rt, challenge) == 0

    def test_bad_device_key_changes_nothing(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        user = verified_user(rt, mailbox)
        challenge = start(rt, user)
        with pytest.raises(InvalidDeviceKey), rt.db.unit_of_work() as session:
            identity.complete_phone_verification(
                session,
                user,
                challenge_id=challenge.id,
                code=sms_code(mailbox),
                device_jwk={"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
                device_name="x",
            )
        assert attempts_of(rt, challenge) == 0
        assert confirm(rt, user, challenge, sms_code(mailbox)).user_id == user.id

    def test_parallel_wrong_guesses_are_all_counted(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        user = verified_user(rt, mailbox)
        challenge = start(rt, user)
        guess = wrong(sms_code(mailbox))
        outcomes: list[str] = []
        barrier = threading.Barrier(8)

        def attempt() -> None:
            barrier.wait()
            try:
                confirm(rt, user, challenge, guess)
            except (InvalidCode, TooManyAttempts) as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=attempt) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["invalid_code"] * 5 + ["too_many_attempts"] * 3
        assert attempts_of(rt, challenge) == 5


class TestResend:
    def test_within_a_minute_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = verified_user(rt, mailbox)
        start(rt, user)
        clock.advance(seconds=59)
        with pytest.raises(TooManyAttempts) as caught:
            start(rt, user)
        assert caught.value.details == {"retry_after": 1}
        assert count(rt, OtpChallenge) == 1

    def test_after_a_minute_the_old_code_dies(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        user = verified_user(rt, mailbox)
        first = start(rt, user)
        old = sms_code(mailbox)
        clock.advance(seconds=60)
        second = start(rt, user)
        with pytest.raises(InvalidCode, match="already used or replaced"):
            confirm(rt, user, first, old)
        assert confirm(rt, user, second, sms_code(mailbox)).user_id == user.id


class TestRateLimits:
    def test_per_phone_number(
        self,
        rt: Runtime,
        mailbox: MemoryMailbox,
        clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        configure(rt, monkeypatch, "sms_limit_per_phone_per_hour", 3)
        first, second = verified_user(rt, mailbox), verified_user(rt, mailbox)
        for user in (first, second, first):
            start(rt, user, ip="")
            clock.advance(minutes=1)
        with pytest.raises(RateLimited) as caught:
            start(rt, second, ip="")
        assert caught.value.details == {"scope": "phone number", "retry_after": 57 * 60}
        assert count(rt, OtpChallenge) == 3
        clock.advance(minutes=57)  # the first send leaves the sliding window
        start(rt, second, ip="")
        assert count(rt, OtpChallenge) == 4

    def test_per_ip_address(
        self, rt: Runtime, mailbox: MemoryMailbox, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        configure(rt, monkeypatch, "sms_limit_per_ip_per_hour", 2)
        users = [verified_user(rt, mailbox) for _ in range(3)]
        start(rt, users[0], "090-1111-2221", ip="198.51.100.7")
        start(rt, users[1], "090-1111-2222", ip="198.51.100.7")
        with pytest.raises(RateLimited, match="IP address"):
            start(rt, users[2], "090-1111-2223", ip="198.51.100.7")
        start(rt, users[2], "090-1111-2223", ip="198.51.100.8")

    def test_per_user(
        self,
        rt: Runtime,
        mailbox: MemoryMailbox,
        clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        configure(rt, monkeypatch, "sms_limit_per_user_per_hour", 2)
        user = verified_user(rt, mailbox)
        for number in ("090-1111-2221", "090-1111-2222"):
            start(rt, user, number)
            clock.advance(minutes=1)
        with pytest.raises(RateLimited, match="user"):
            start(rt, user, "090-1111-2223")

    def test_keys_are_stored_hashed(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        start(rt, verified_user(rt, mailbox), ip="198.51.100.7")
        with rt.db.session() as session:
            keys = [hit.key_hash for hit in session.query(RateLimitHit)]
        assert len(keys) == 3
        assert all(len(key) == 64 and E164 not in key and "198.51" not in key for key in keys)


class TestPhoneCap:
    def test_one_number_backs_one_user_by_default(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        phone_user(rt, mailbox)
        other = verified_user(rt, mailbox)
        with pytest.raises(PhoneInUse):
            start(rt, other)
        assert count(rt, UserPhone) == 1

    def test_the_cap_is_checked_again_at_confirmation(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        first, second = verified_user(rt, mailbox), verified_user(rt, mailbox)
        first_challenge = start(rt, first, ip="")
        first_code = sms_code(mailbox)
        second_challenge = start(rt, second, ip="")
        second_code = sms_code(mailbox)
        confirm(rt, first, first_challenge, first_code)
        with pytest.raises(PhoneInUse):
            confirm(rt, second, second_challenge, second_code)
        assert load_user(rt, second.id).level == "email"
        assert count(rt, UserPhone) == 1

    def test_a_configured_cap_of_two(
        self, rt: Runtime, mailbox: MemoryMailbox, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        configure(rt, monkeypatch, "phone_max_users_per_number", 2)
        phone_user(rt, mailbox)
        phone_user(rt, mailbox)
        with pytest.raises(PhoneInUse):
            start(rt, verified_user(rt, mailbox))
        assert count(rt, UserPhone) == 2
