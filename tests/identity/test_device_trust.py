"""Established devices (ADR 0033): a new phone approved by the old one, the trust a key earns
with time, and a risk step-up answered by an established device's own signature."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kouza.identity.devices import SignedChallenge
from kouza.identity.errors import DeviceNotEstablished, StepUpRequired
from kouza.identity.models import Device
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.risk.engine import Decision
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.rules import Outcome
from kouza.runtime import Runtime
from kouza.wallet.enforcement import enforce
from tests.identity.support import DeviceKey, PhoneUser, count, phone_user, step_up


def approval(rt: Runtime, someone: PhoneUser, action: str = "device.register") -> SignedChallenge:
    with rt.db.unit_of_work() as session:
        nonce = identity.issue_device_challenge(session, someone.user, someone.device.id, action)
    signature = someone.key.sign_challenge(
        nonce=nonce, action=action, device_id=someone.device.id, user_id=someone.user.id
    )
    return SignedChallenge(someone.device.id, nonce, signature)


def register(rt: Runtime, someone: PhoneUser, approved: SignedChallenge | None) -> Device:
    with rt.db.unit_of_work() as session:
        return identity.register_device(
            session,
            someone.user,
            jwk=DeviceKey.es256().public_jwk,
            name="new phone",
            approval=approved,
        )


def established(rt: Runtime, someone: PhoneUser, device: Device) -> bool:
    with rt.db.session() as session:
        return identity.device_established(session, someone.user, device.id)


class TestApprovedByTheOldPhone:
    def test_an_established_device_approves_a_new_one_without_a_code(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        clock.advance(hours=72)
        new = register(rt, someone, approval(rt, someone))
        assert new.added_by == "device_signature"
        assert established(rt, someone, new)

    def test_a_device_too_new_cannot_vouch_and_nothing_is_registered(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        clock.advance(hours=71)
        with pytest.raises(DeviceNotEstablished, match="too new"):
            register(rt, someone, approval(rt, someone))
        assert count(rt, Device) == 1

    def test_without_approval_an_sms_step_up_is_needed_and_the_key_waits_for_trust(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        with pytest.raises(StepUpRequired):
            register(rt, someone, None)
        step_up(rt, mailbox, someone, "device.register")
        new = register(rt, someone, None)
        assert new.added_by == "sms_otp"
        assert not established(rt, someone, new)
        clock.advance(hours=72)
        assert established(rt, someone, new)

    def test_a_revoked_or_foreign_device_is_never_established(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        other = phone_user(rt, mailbox, phone="09011112222", e164="+819011112222")
        clock.advance(hours=80)
        assert established(rt, someone, someone.device)
        assert not established(rt, other, someone.device)
        clock.advance(minutes=10)
        step_up(rt, mailbox, someone, "device.revoke")
        with rt.db.unit_of_work() as session:
            identity.revoke_device(session, someone.user, someone.device.id)
        assert not established(rt, someone, someone.device)


def step_up_decision(someone: PhoneUser) -> Decision:
    event = RiskEvent(type=EventType.TOPUP, at=datetime(2026, 1, 1, tzinfo=UTC), amount=1)
    return Decision(event=event, outcome=Outcome.STEP_UP, score=30, rule_set_version="t")


def enforce_step_up(rt: Runtime, someone: PhoneUser) -> None:
    """A risk step-up on a charge signed by the user's device."""
    with rt.db.unit_of_work() as session:
        enforce(
            session,
            step_up_decision(someone),
            user=someone.user,
            wallet_id=someone.user.id,
            purpose="charge",
            signed_by=someone.device.id,
        )


class TestStepUpByTheCheapestFactor:
    def test_an_established_devices_signature_answers_a_risk_step_up(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        clock.advance(hours=73)
        enforce_step_up(rt, someone)

    def test_a_new_devices_signature_does_not_and_the_sms_code_is_asked(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        with pytest.raises(StepUpRequired):
            enforce_step_up(rt, someone)
        step_up(rt, mailbox, someone, "charge")
        enforce_step_up(rt, someone)
