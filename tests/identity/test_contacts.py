"""Changing the phone number or e-mail address: device signature, code to the new contact,
warning to the old one, caps, limits, risk events; devices added and revoked are recorded."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from kouza.errors import BadRequest
from kouza.identity.devices import SensitiveAction
from kouza.identity.errors import (
    CodeExpired,
    DeviceChallengeInvalid,
    DeviceChallengeReplayed,
    DeviceSignatureInvalid,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    LevelRequired,
    PhoneInUse,
    RateLimited,
    StepUpRequired,
    TooManyAttempts,
)
from kouza.identity.models import ContactChange, OtpChallenge, UserPhone, VerificationLevel
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.risk.models import RiskEventRecord
from kouza.runtime import Runtime
from tests.factories import PASSWORD, verified_user
from tests.identity.support import (
    E164,
    DeviceKey,
    PhoneUser,
    configure,
    count,
    load_user,
    phone_user,
    sms_code,
    step_up,
    wrong,
)

NEW_PHONE = "080-9876-5432"
NEW_E164 = "+818098765432"
NEW_EMAIL = "hanako.new@example.jp"
CODE = re.compile(r"\b(\d{6})\b")


def signed(rt: Runtime, someone: PhoneUser, action: SensitiveAction) -> dict[str, Any]:
    """A fresh challenge for ``action``, signed by the user's device."""
    with rt.db.unit_of_work() as session:
        nonce = identity.issue_device_challenge(
            session, someone.user, someone.device.id, action.value
        )
    signature = someone.key.sign_challenge(
        nonce=nonce, action=action.value, device_id=someone.device.id, user_id=someone.user.id
    )
    return {"device_id": someone.device.id, "nonce": nonce, "signature": signature}


def start_phone(
    rt: Runtime, someone: PhoneUser, phone: str = NEW_PHONE, proof: dict[str, Any] | None = None
) -> ContactChange:
    proof = proof or signed(rt, someone, SensitiveAction.CHANGE_PHONE)
    with rt.db.unit_of_work() as session:
        return identity.start_phone_change(
            session, someone.user, phone=phone, ip="192.0.2.9", **proof
        )


def confirm_phone(rt: Runtime, someone: PhoneUser, change: ContactChange, code: str) -> None:
    with rt.db.unit_of_work() as session:
        identity.confirm_phone_change(session, someone.user, change.id, code, ip="192.0.2.9")


def start_email(
    rt: Runtime, someone: PhoneUser, email: str = NEW_EMAIL, proof: dict[str, Any] | None = None
) -> ContactChange:
    proof = proof or signed(rt, someone, SensitiveAction.CHANGE_EMAIL)
    with rt.db.unit_of_work() as session:
        return identity.start_email_change(
            session, someone.user, email=email, ip="192.0.2.9", **proof
        )


def confirm_email(rt: Runtime, someone: PhoneUser, change: ContactChange, code: str) -> None:
    with rt.db.unit_of_work() as session:
        identity.confirm_email_change(session, someone.user, change.id, code)


def mail_code(mailbox: MemoryMailbox, address: str) -> str:
    match = CODE.search(mailbox.last_to(address).body)
    assert match is not None
    return match.group(1)


def phone_of(rt: Runtime, someone: PhoneUser) -> str:
    with rt.db.session() as session:
        row = session.get(UserPhone, someone.user.id)
        assert row is not None
        return row.e164


def events_of(rt: Runtime, someone: PhoneUser, kind: str) -> list[RiskEventRecord]:
    with rt.db.session() as session:
        return list(
            session.scalars(
                select(RiskEventRecord)
                .where(RiskEventRecord.user == str(someone.user.id), RiskEventRecord.type == kind)
                .order_by(RiskEventRecord.id)
            )
        )


class TestPhoneChange:
    def test_code_to_the_new_number_then_switch_and_warn_the_old_one(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        change = start_phone(rt, someone)
        assert (change.kind, change.old_value, change.new_value) == ("phone", E164, NEW_E164)
        assert phone_of(rt, someone) == E164  # nothing switches before the code
        code = sms_code(mailbox, NEW_E164)
        confirm_phone(rt, someone, change, code)
        assert phone_of(rt, someone) == NEW_E164
        warning = mailbox.last_to(E164).body
        assert "+81****5432" in warning and "If this was not you" in warning
        assert code not in warning
        assert (
            "phone number of your account was changed" in mailbox.last_to(someone.user.email).body
        )
        [event] = events_of(rt, someone, "contact_change")
        assert (event.device, event.ip) == (str(someone.device.id), "192.0.2.9")
        assert event.attributes == {"contact": "phone", "change": "replaced"}
        assert load_user(rt, someone.user.id).level == VerificationLevel.PHONE.value

    def test_without_a_valid_device_signature_nothing_is_sent(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        proof = signed(rt, someone, SensitiveAction.CHANGE_PHONE)
        forged = DeviceKey.es256().sign_challenge(
            nonce=str(proof["nonce"]),
            action="phone.change",
            device_id=someone.device.id,
            user_id=someone.user.id,
        )
        with pytest.raises(DeviceSignatureInvalid):
            start_phone(rt, someone, proof={**proof, "signature": forged})
        with pytest.raises(DeviceChallengeReplayed):  # the refused attempt spent the challenge
            start_phone(rt, someone, proof=proof)
        email_proof = signed(rt, someone, SensitiveAction.CHANGE_EMAIL)
        with pytest.raises(DeviceChallengeInvalid, match=r"issued for 'email\.change'"):
            start_phone(rt, someone, proof=email_proof)
        assert count(rt, ContactChange) == 0
        assert count(rt, OtpChallenge, OtpChallenge.e164 == NEW_E164) == 0
        with pytest.raises(LookupError):
            mailbox.last_to(NEW_E164)

    def test_the_number_cap_holds_at_start_and_at_confirmation(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        phone_user(rt, mailbox, phone="090-5555-0001", e164="+819055550001")
        with pytest.raises(PhoneInUse):
            start_phone(rt, someone, phone="090-5555-0001")
        change = start_phone(rt, someone)
        code = sms_code(mailbox, NEW_E164)
        rival = phone_user(rt, mailbox, phone=NEW_PHONE, e164=NEW_E164)  # claims it meanwhile
        with pytest.raises(PhoneInUse):
            confirm_phone(rt, someone, change, code)
        assert phone_of(rt, someone) == E164
        assert phone_of(rt, rival) == NEW_E164

    def test_a_cap_of_two_lets_a_family_share_the_new_number(
        self, rt: Runtime, mailbox: MemoryMailbox, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        configure(rt, monkeypatch, "phone_max_users_per_number", 2)
        phone_user(rt, mailbox, phone=NEW_PHONE, e164=NEW_E164)
        someone = phone_user(rt, mailbox)
        change = start_phone(rt, someone)
        confirm_phone(rt, someone, change, sms_code(mailbox, NEW_E164))
        assert phone_of(rt, someone) == NEW_E164

    def test_bad_input(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        someone = phone_user(rt, mailbox)
        with pytest.raises(BadRequest, match="already the phone number"):
            start_phone(rt, someone, phone="+81 90 1234 5678")
        with pytest.raises(BadRequest, match="not a mobile number"):
            start_phone(rt, someone, phone="03-1234-5678")
        assert count(rt, ContactChange) == 0

    def test_wrong_codes_are_counted_and_the_code_expires(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        change = start_phone(rt, someone)
        code = sms_code(mailbox, NEW_E164)
        for _ in range(5):
            with pytest.raises(InvalidCode):
                confirm_phone(rt, someone, change, wrong(code))
        with pytest.raises(TooManyAttempts):
            confirm_phone(rt, someone, change, code)
        clock.advance(seconds=60)
        again = start_phone(rt, someone)
        clock.advance(seconds=301)
        with pytest.raises(CodeExpired):
            confirm_phone(rt, someone, again, sms_code(mailbox, NEW_E164))
        assert phone_of(rt, someone) == E164

    def test_a_new_request_supersedes_the_pending_one(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        first = start_phone(rt, someone)
        old_code = sms_code(mailbox, NEW_E164)
        clock.advance(seconds=60)
        second = start_phone(rt, someone, phone="080-9876-5433")
        with pytest.raises(InvalidCode, match="completed or replaced"):
            confirm_phone(rt, someone, first, old_code)
        confirm_phone(rt, someone, second, sms_code(mailbox, "+818098765433"))
        assert phone_of(rt, someone) == "+818098765433"

    def test_step_ups_proven_with_the_old_phone_die(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        step_up(rt, mailbox, someone, "withdraw")
        change = start_phone(rt, someone)
        confirm_phone(rt, someone, change, sms_code(mailbox, NEW_E164))
        with rt.db.unit_of_work() as session, pytest.raises(StepUpRequired):
            identity.spend_step_up(session, someone.user, "withdraw")

    def test_requests_per_user_per_day(
        self,
        rt: Runtime,
        mailbox: MemoryMailbox,
        clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        configure(rt, monkeypatch, "contact_change_limit_per_user_per_day", 2)
        someone = phone_user(rt, mailbox)
        start_phone(rt, someone)
        clock.advance(minutes=1)
        start_email(rt, someone)
        clock.advance(minutes=1)
        with pytest.raises(RateLimited, match="user"):
            start_phone(rt, someone, phone="080-9876-5433")
        assert count(rt, ContactChange) == 2
        clock.advance(hours=24)
        start_phone(rt, someone, phone="080-9876-5433")


class TestEmailChange:
    def test_code_to_the_new_address_then_switch_and_warn_the_old_one(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        old = someone.user.email
        change = start_email(rt, someone)
        code = mail_code(mailbox, NEW_EMAIL)
        clock.advance(minutes=1)
        confirm_email(rt, someone, change, code)
        user = load_user(rt, someone.user.id)
        assert (user.email, user.email_verified_at) == (NEW_EMAIL, clock.now())
        warning = mailbox.last_to(old)
        assert "e-mail address of your account was changed to h***@example.jp" in warning.body
        assert mailbox.last_to(E164).body == warning.body
        with rt.db.unit_of_work() as session:
            identity.login(session, email=NEW_EMAIL, password=PASSWORD)
        with rt.db.unit_of_work() as session, pytest.raises(InvalidCredentials):
            identity.login(session, email=old, password=PASSWORD)
        [event] = events_of(rt, someone, "contact_change")
        assert event.device == str(someone.device.id)
        assert event.attributes == {"contact": "email", "change": "replaced"}

    def test_a_taken_address_sends_nothing(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        someone = phone_user(rt, mailbox)
        verified_user(rt, mailbox, NEW_EMAIL)
        sent = len(mailbox.messages)
        with pytest.raises(EmailTaken):
            start_email(rt, someone)
        with pytest.raises(BadRequest, match="already the e-mail address"):
            start_email(rt, someone, email=someone.user.email.upper())
        assert len(mailbox.messages) == sent
        assert count(rt, ContactChange) == 0

    def test_an_address_taken_before_confirmation(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        change = start_email(rt, someone)
        code = mail_code(mailbox, NEW_EMAIL)
        verified_user(rt, mailbox, NEW_EMAIL)
        with pytest.raises(EmailTaken):
            confirm_email(rt, someone, change, code)
        assert load_user(rt, someone.user.id).email == someone.user.email

    def test_needs_a_device(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        user = verified_user(rt, mailbox)
        with rt.db.unit_of_work() as session, pytest.raises(LevelRequired):
            identity.start_email_change(
                session, user, email=NEW_EMAIL, device_id=uuid.uuid4(), nonce="x", signature="y"
            )

    def test_wrong_codes_expiry_and_single_use(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        change = start_email(rt, someone)
        code = mail_code(mailbox, NEW_EMAIL)
        for _ in range(5):
            with pytest.raises(InvalidCode):
                confirm_email(rt, someone, change, wrong(code))
        with pytest.raises(TooManyAttempts):
            confirm_email(rt, someone, change, code)
        clock.advance(minutes=1)
        again = start_email(rt, someone)
        code = mail_code(mailbox, NEW_EMAIL)
        confirm_email(rt, someone, again, code)
        with pytest.raises(InvalidCode, match="completed or replaced"):
            confirm_email(rt, someone, again, code)
        clock.advance(minutes=1)
        late = start_email(rt, someone, email="third@example.jp")
        clock.advance(minutes=16)
        with pytest.raises(CodeExpired):
            confirm_email(rt, someone, late, mail_code(mailbox, "third@example.jp"))

    def test_resend_throttle_and_per_address_limit(
        self,
        rt: Runtime,
        mailbox: MemoryMailbox,
        clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        configure(rt, monkeypatch, "email_change_limit_per_address_per_day", 1)
        someone, other = (
            phone_user(rt, mailbox),
            phone_user(rt, mailbox, phone="090-5555-0001", e164="+819055550001"),
        )
        start_email(rt, someone)
        with pytest.raises(TooManyAttempts, match="wait 60 seconds"):
            start_email(rt, someone, email="other@example.jp")
        with pytest.raises(RateLimited, match="e-mail address"):
            start_email(rt, other)


class TestDeviceEvents:
    def test_adding_and_revoking_devices_are_recorded(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        [first] = events_of(rt, someone, "device_added")
        assert (first.device, first.attributes) == (
            str(someone.device.id),
            {"first": True, "added_by": "phone_verification"},
        )
        assert len(events_of(rt, someone, "phone_verified")) == 1
        step_up(rt, mailbox, someone, "device.register")
        with rt.db.unit_of_work() as session:
            second = identity.register_device(
                session,
                someone.user,
                jwk=DeviceKey.es256().public_jwk,
                name="tablet",
                ip="198.51.100.4",
            )
        added = events_of(rt, someone, "device_added")
        assert [(e.device, e.ip) for e in added] == [
            (str(someone.device.id), "192.0.2.1"),
            (str(second.id), "198.51.100.4"),
        ]
        assert added[1].attributes == {"first": False, "added_by": "sms_otp"}
        step_up(rt, mailbox, someone, "device.revoke")
        with rt.db.unit_of_work() as session:
            identity.revoke_device(session, someone.user, someone.device.id)
        [revoked] = events_of(rt, someone, "contact_change")
        assert revoked.device == str(someone.device.id)
        assert revoked.attributes == {"contact": "device", "change": "revoked"}
