"""Helpers for the phone, device, eKYC and level tests: everything through the real services."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pytest
from cryptography import x509
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey
from sqlalchemy import func, select

from kouza.identity.devices import signing_payload
from kouza.identity.ekyc import CrlRevocationChecker, DevFaceMatcher, EkycMethod
from kouza.identity.ekyc.devca import DevCertificateAuthority, TestCard, TestCitizen
from kouza.identity.ekyc.devchip import DevDocumentIssuer, TestChip, TestChipHolder
from kouza.identity.ekyc.facematch import dev_selfie_for
from kouza.identity.ekyc.result import Sex
from kouza.identity.models import Device, EkycVerification, User
from kouza.identity.proofing import EkycConfiguration, IcChipConfiguration, JpkiConfiguration
from kouza.identity.service import identity
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.factories import verified_user

CODE = re.compile(r"\b(\d{6})\b")
PHONE = "090-1234-5678"
E164 = "+819012345678"
CITIZEN = TestCitizen(
    name="山田　太郎",
    address="東京都千代田区霞が関二丁目１番２号",
    birth_date=date(1985, 6, 15),
    sex=Sex.MALE,
)
KANA = "ヤマダ タロウ"


def configure(rt: Runtime, monkeypatch: pytest.MonkeyPatch, name: str, value: int) -> None:
    """Set an identity setting for one test."""
    assert name in type(rt.settings).model_fields, name
    monkeypatch.setattr(rt.settings, name, value)


def sms_code(mailbox: MemoryMailbox, e164: str = E164) -> str:
    match = CODE.search(mailbox.last_to(e164).body)
    assert match is not None
    return match.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def count(rt: Runtime, model: Any, *where: Any) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def load_user(rt: Runtime, user_id: uuid.UUID) -> User:
    with rt.db.session() as session:
        return identity.get_user(session, user_id)


@dataclass
class DeviceKey:
    """A device's private key as the app holds it."""

    key: ECKey | OKPKey
    algorithm: str

    @classmethod
    def es256(cls) -> DeviceKey:
        return cls(ECKey.generate_key("P-256"), "ES256")

    @classmethod
    def ed25519(cls) -> DeviceKey:
        return cls(OKPKey.generate_key("Ed25519"), "Ed25519")

    @property
    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def sign(self, payload: dict[str, Any], algorithm: str | None = None) -> str:
        alg = algorithm or self.algorithm
        return jws.serialize_compact(
            {"alg": alg}, json.dumps(payload).encode(), self.key, algorithms=[alg]
        )

    def sign_challenge(
        self, *, nonce: str, action: str, device_id: uuid.UUID, user_id: uuid.UUID
    ) -> str:
        return self.sign(
            signing_payload(nonce=nonce, action=action, device_id=device_id, user_id=user_id)
        )


@dataclass
class PhoneUser:
    user: User
    device: Device
    key: DeviceKey
    e164: str


def phone_user(
    rt: Runtime,
    mailbox: MemoryMailbox,
    *,
    phone: str = PHONE,
    e164: str = E164,
    key: DeviceKey | None = None,
    email: str | None = None,
) -> PhoneUser:
    """A user at level ``phone`` with one ES256 device, through the real services."""
    user = verified_user(rt, mailbox, email)
    key = key or DeviceKey.es256()
    with rt.db.unit_of_work() as session:
        challenge = identity.start_phone_verification(session, user, phone=phone, ip="192.0.2.1")
    with rt.db.unit_of_work() as session:
        device = identity.complete_phone_verification(
            session,
            user,
            challenge_id=challenge.id,
            code=sms_code(mailbox, e164),
            device_jwk=key.public_jwk,
            device_name="phone",
        )
    return PhoneUser(load_user(rt, user.id), device, key, e164)


def step_up(rt: Runtime, mailbox: MemoryMailbox, someone: PhoneUser, purpose: str) -> None:
    with rt.db.unit_of_work() as session:
        challenge_id = identity.start_step_up(session, someone.user, purpose)
    with rt.db.unit_of_work() as session:
        identity.complete_step_up(
            session, someone.user, challenge_id, sms_code(mailbox, someone.e164)
        )


@dataclass
class CrlShelf:
    """Where the dev CA publishes CRLs and the checker's loader fetches them."""

    cas: list[Any]
    published: list[bytes] = field(default_factory=list)

    def publish(self, now: datetime) -> None:
        self.published = [ca.crl(now=now) for ca in self.cas]

    def load(self, issuer: x509.Certificate) -> bytes | None:
        for raw in self.published:
            if x509.load_der_x509_crl(raw).issuer == issuer.subject:
                return raw
        return None


@dataclass
class EkycWorld:
    """The development CA and ID-card issuer wired into ``runtime.ekyc``."""

    ca: DevCertificateAuthority
    issuer: DevDocumentIssuer
    jpki_crls: CrlShelf
    chip_crls: CrlShelf
    card: TestCard

    def publish(self, now: datetime) -> None:
        self.jpki_crls.publish(now)
        self.chip_crls.publish(now)

    def chip(self, expires_on: date = date(2030, 1, 1)) -> TestChip:
        return self.issuer.issue_chip(
            TestChipHolder(
                name=CITIZEN.name,
                address=CITIZEN.address,
                birth_date=CITIZEN.birth_date,
                sex=CITIZEN.sex,
                document_number="DL-0001",
                expires_on=expires_on,
                face_image=b"face of taro",
            )
        )

    @staticmethod
    def selfie(chip: TestChip) -> bytes:
        return dev_selfie_for(b"face of taro")


def ekyc_configuration(world: EkycWorld) -> EkycConfiguration:
    return EkycConfiguration(
        jpki=JpkiConfiguration(
            trust_anchors=world.ca.trust_anchors,
            intermediates=world.ca.intermediates,
            revocation=CrlRevocationChecker(loader=world.jpki_crls.load),
        ),
        ic_chip=IcChipConfiguration(
            trust_anchors=world.issuer.trust_anchors,
            revocation=CrlRevocationChecker(loader=world.chip_crls.load),
            face_matcher=DevFaceMatcher(),
        ),
    )


def jpki_attempt(
    rt: Runtime,
    someone: User,
    card: TestCard,
    *,
    kana: str = KANA,
    certificate: bytes | None = None,
    sign_nonce: str | None = None,
    nonce: str | None = None,
) -> EkycVerification:
    """Start eKYC, have ``card`` sign, submit (raises on refusal)."""
    with rt.db.unit_of_work() as session:
        issued = identity.start_ekyc(session, someone, EkycMethod.JPKI)
    used = nonce or issued
    with rt.db.unit_of_work() as session:
        return identity.submit_jpki(
            session,
            someone,
            certificate=certificate or card.certificate_der,
            signature=card.sign_nonce(sign_nonce or used),
            nonce=used,
            kana_name=kana,
        )


def records_of(rt: Runtime, user: User) -> list[EkycVerification]:
    with rt.db.session() as session:
        return list(
            session.scalars(
                select(EkycVerification)
                .where(EkycVerification.user_id == user.id)
                .order_by(EkycVerification.checked_at, EkycVerification.id)
            )
        )
