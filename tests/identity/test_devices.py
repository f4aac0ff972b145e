"""Step-up codes, device keys and device signatures over single-use server challenges."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, RSAKey

from kouza.identity.devices import parse_device_key
from kouza.identity.errors import (
    CodeExpired,
    DeviceChallengeExpired,
    DeviceChallengeInvalid,
    DeviceChallengeReplayed,
    DeviceExists,
    DeviceRevoked,
    DeviceSignatureInvalid,
    InvalidDeviceKey,
    InvalidPurpose,
    PhoneRequired,
    StepUpRequired,
    UnknownAction,
    UnknownChallenge,
    UnknownDevice,
    UnsupportedDeviceKey,
)
from kouza.identity.models import Device, DeviceChallenge
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.factories import verified_user
from tests.identity.support import (
    DeviceKey,
    PhoneUser,
    count,
    phone_user,
    sms_code,
    step_up,
)


def challenge(
    rt: Runtime, someone: PhoneUser, action: str = "bank.link", device_id: uuid.UUID | None = None
) -> str:
    with rt.db.unit_of_work() as session:
        return identity.issue_device_challenge(
            session, someone.user, device_id or someone.device.id, action
        )


def verify(
    rt: Runtime,
    someone: PhoneUser,
    *,
    nonce: str,
    signature: str,
    action: str = "bank.link",
    device_id: uuid.UUID | None = None,
) -> Device:
    with rt.db.unit_of_work() as session:
        return identity.verify_device_signature(
            session, someone.user, device_id or someone.device.id, action, nonce, signature
        )


def signed(
    someone: PhoneUser, nonce: str, action: str = "bank.link", key: DeviceKey | None = None
) -> str:
    return (key or someone.key).sign_challenge(
        nonce=nonce, action=action, device_id=someone.device.id, user_id=someone.user.id
    )


def register(rt: Runtime, someone: PhoneUser, key: DeviceKey, name: str = "tablet") -> Device:
    with rt.db.unit_of_work() as session:
        return identity.register_device(session, someone.user, jwk=key.public_jwk, name=name)


def challenge_used(rt: Runtime) -> bool:
    with rt.db.session() as session:
        return session.query(DeviceChallenge).one().used_at is not None


class TestParseDeviceKey:
    def test_es256_and_ed25519(self) -> None:
        for key, algorithm in ((DeviceKey.es256(), "ES256"), (DeviceKey.ed25519(), "Ed25519")):
            parsed = parse_device_key(key.public_jwk)
            assert parsed.algorithm == algorithm
            assert parsed.thumbprint == key.key.thumbprint()
            assert "d" not in parsed.public_jwk

    REFUSED: tuple[tuple[Any, type[Exception]], ...] = (
        (dict(ECKey.generate_key("P-256").as_dict(private=True)), InvalidDeviceKey),
        (dict(ECKey.generate_key("P-384").as_dict(private=False)), UnsupportedDeviceKey),
        (
            dict(RSAKey.import_key(rsa.generate_private_key(65537, 2048)).as_dict(private=False)),
            UnsupportedDeviceKey,
        ),
        ({"kty": "oct", "k": "c2VjcmV0"}, UnsupportedDeviceKey),
        ({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, InvalidDeviceKey),
        ({"kty": "OKP", "crv": "Ed25519"}, InvalidDeviceKey),
        ({}, UnsupportedDeviceKey),
    )

    def test_refusals(self) -> None:
        for jwk, error in self.REFUSED:
            with pytest.raises(error) as caught:
                parse_device_key(jwk)
            assert caught.value.status_code == 400  # type: ignore[attr-defined]


class TestStepUp:
    def test_needs_a_verified_phone(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        user = verified_user(rt, mailbox)
        with pytest.raises(PhoneRequired), rt.db.unit_of_work() as session:
            identity.start_step_up(session, user, "device.register")

    def test_satisfied_for_its_purpose_for_five_minutes(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        clock.advance(minutes=1)
        step_up(rt, mailbox, someone, "charge")
        assert "to confirm 'charge'" in mailbox.last_to(someone.e164).body
        with rt.db.session() as session:
            assert identity.step_up_satisfied(session, someone.user, "charge")
            assert not identity.step_up_satisfied(session, someone.user, "withdraw")
        clock.advance(minutes=5)
        with rt.db.session() as session:
            assert not identity.step_up_satisfied(session, someone.user, "charge")
            assert identity.step_up_satisfied(
                session, someone.user, "charge", within=timedelta(minutes=6)
            )

    def test_spent_once(self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock) -> None:
        someone = phone_user(rt, mailbox)
        clock.advance(minutes=1)
        step_up(rt, mailbox, someone, "withdraw")
        with rt.db.unit_of_work() as session:
            identity.spend_step_up(session, someone.user, "withdraw")
        with pytest.raises(StepUpRequired), rt.db.unit_of_work() as session:
            identity.spend_step_up(session, someone.user, "withdraw")

    def test_expired_code_and_wrong_purpose_name(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        clock.advance(minutes=1)
        with rt.db.unit_of_work() as session:
            challenge_id = identity.start_step_up(session, someone.user, "charge")
        clock.advance(minutes=5)
        with pytest.raises(CodeExpired), rt.db.unit_of_work() as session:
            identity.complete_step_up(
                session, someone.user, challenge_id, sms_code(mailbox, someone.e164)
            )
        for purpose in ("", "Charge", "a" * 65, "charge now"):
            with pytest.raises(InvalidPurpose), rt.db.unit_of_work() as session:
                identity.start_step_up(session, someone.user, purpose)

    def test_a_phone_verification_code_is_not_a_step_up(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        with rt.db.session() as session:
            from kouza.identity.models import OtpChallenge

            phone_challenge = session.query(OtpChallenge).one()
        with pytest.raises(UnknownChallenge), rt.db.unit_of_work() as session:
            identity.complete_step_up(session, someone.user, phone_challenge.id, "000000")


class TestRegisterDevice:
    def test_a_new_device_needs_a_step_up(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        tablet = DeviceKey.ed25519()
        with pytest.raises(StepUpRequired):
            register(rt, someone, tablet)
        assert count(rt, Device) == 1
        clock.advance(minutes=1)
        step_up(rt, mailbox, someone, "device.register")
        device = register(rt, someone, tablet)
        assert (device.name, device.algorithm, device.created_at) == (
            "tablet",
            "Ed25519",
            clock.now(),
        )
        with rt.db.session() as session:
            assert [d.name for d in identity.devices_of(session, someone.user)] == [
                "phone",
                "tablet",
            ]
        with pytest.raises(StepUpRequired):  # the step-up was spent
            register(rt, someone, DeviceKey.es256())

    def test_the_same_key_twice(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        clock.advance(minutes=1)
        step_up(rt, mailbox, someone, "device.register")
        with pytest.raises(DeviceExists):
            register(rt, someone, someone.key)
        assert count(rt, Device) == 1

    def test_needs_a_phone(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        user = verified_user(rt, mailbox)
        with pytest.raises(PhoneRequired), rt.db.unit_of_work() as session:
            identity.register_device(session, user, jwk=DeviceKey.es256().public_jwk, name="x")


class TestDeviceSignature:
    def test_es256_signature_over_the_challenge(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        nonce = challenge(rt, someone)
        clock.advance(seconds=30)
        device = verify(rt, someone, nonce=nonce, signature=signed(someone, nonce))
        assert device.id == someone.device.id
        assert device.last_used_at == clock.now()

    def test_ed25519_signature(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        someone = phone_user(rt, mailbox, key=DeviceKey.ed25519())
        nonce = challenge(rt, someone, "charge")
        assert (
            verify(
                rt,
                someone,
                nonce=nonce,
                signature=signed(someone, nonce, "charge"),
                action="charge",
            ).id
            == someone.device.id
        )

    def test_replay_is_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        someone = phone_user(rt, mailbox)
        nonce = challenge(rt, someone)
        signature = signed(someone, nonce)
        verify(rt, someone, nonce=nonce, signature=signature)
        with pytest.raises(DeviceChallengeReplayed):
            verify(rt, someone, nonce=nonce, signature=signature)

    def test_expired_challenge(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        someone = phone_user(rt, mailbox)
        nonce = challenge(rt, someone)
        clock.advance(minutes=2)
        with pytest.raises(DeviceChallengeExpired):
            verify(rt, someone, nonce=nonce, signature=signed(someone, nonce))

    def test_wrong_action_spends_the_challenge(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        someone = phone_user(rt, mailbox)
        nonce = challenge(rt, someone, "charge")
        with pytest.raises(DeviceChallengeInvalid, match="issued for 'charge'"):
            verify(
                rt,
                someone,
                nonce=nonce,
                signature=signed(someone, nonce, "withdraw"),
                action="withdraw",
            )
        assert challenge_used(rt)
        with pytest.raises(DeviceChallengeReplayed):
            verify(
                rt,
                someone,
                nonce=nonce,
                signature=signed(someone, nonce, "charge"),
                action="charge",
            )

    def test_signature_naming_another_action_is_refused(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        nonce = challenge(rt, someone, "charge")
        with pytest.raises(DeviceSignatureInvalid):
            verify(
                rt,
                someone,
                nonce=nonce,
                signature=signed(someone, nonce, "withdraw"),
                action="charge",
            )
        assert challenge_used(rt)

    def test_bad_signatures_are_refused_and_spend_the_challenge(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        payload = {
            "nonce": "",
            "action": "bank.link",
            "device_id": str(someone.device.id),
            "user_id": str(someone.user.id),
        }
        stranger = str(uuid.uuid4())
        forgeries: list[Callable[[str], str]] = [
            lambda nonce: signed(someone, nonce, key=DeviceKey.es256()),  # another key
            lambda nonce: someone.key.sign(payload | {"nonce": nonce, "user_id": stranger}),
            lambda nonce: someone.key.sign(payload | {"nonce": nonce, "extra": "1"}),
            lambda nonce: "not.a.jws",
            lambda nonce: signed(someone, nonce)[:-4] + "AAAA",
        ]
        for forge in forgeries:
            nonce = challenge(rt, someone)
            with pytest.raises(DeviceSignatureInvalid):
                verify(rt, someone, nonce=nonce, signature=forge(nonce))
        with rt.db.session() as session:
            assert all(c.used_at is not None for c in session.query(DeviceChallenge))

    def test_other_users_device_is_unknown(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        owner = phone_user(rt, mailbox)
        intruder = phone_user(rt, mailbox, phone="080-9876-5432", e164="+818098765432")
        nonce = challenge(rt, owner)
        with pytest.raises(UnknownDevice):
            challenge(rt, intruder, device_id=owner.device.id)
        with pytest.raises(UnknownDevice):
            verify(
                rt, intruder, nonce=nonce, signature=signed(owner, nonce), device_id=owner.device.id
            )
        with pytest.raises(DeviceChallengeInvalid):  # own device, someone else's challenge
            verify(rt, intruder, nonce=nonce, signature=signed(intruder, nonce))
        assert not challenge_used(rt)

    def test_revoked_device(self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock) -> None:
        someone = phone_user(rt, mailbox)
        nonce = challenge(rt, someone)
        with pytest.raises(StepUpRequired), rt.db.unit_of_work() as session:
            identity.revoke_device(session, someone.user, someone.device.id)
        clock.advance(minutes=1)
        step_up(rt, mailbox, someone, "device.revoke")
        with rt.db.unit_of_work() as session:
            identity.revoke_device(session, someone.user, someone.device.id)
        with pytest.raises(DeviceRevoked):
            verify(rt, someone, nonce=nonce, signature=signed(someone, nonce))
        with pytest.raises(DeviceRevoked):
            challenge(rt, someone)

    def test_unknown_action(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        someone = phone_user(rt, mailbox)
        with pytest.raises(UnknownAction):
            challenge(rt, someone, "steal")
        assert count(rt, DeviceChallenge) == 0

    def test_nonce_is_stored_only_as_a_keyed_hash(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        someone = phone_user(rt, mailbox)
        nonce = challenge(rt, someone)
        with rt.db.session() as session:
            stored = session.query(DeviceChallenge).one()
        assert stored.nonce_hash != nonce and len(stored.nonce_hash) == 64
