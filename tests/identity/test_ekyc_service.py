"""eKYC through the identity service: records, refusals with reasons, promotion, kana names."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kouza.identity.ekyc import EkycMethod, jpki
from kouza.identity.ekyc.devca import DevCertificateAuthority, TestCard
from kouza.identity.ekyc.devchip import TestChip
from kouza.identity.errors import (
    EkycNotConfigured,
    EkycRefused,
    InvalidKanaName,
    LevelRequired,
)
from kouza.identity.models import EkycNonce, EkycVerification, VerifiedIdentity
from kouza.identity.proofing import declared_kana
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.factories import verified_user
from tests.identity.support import (
    CITIZEN,
    KANA,
    EkycWorld,
    PhoneUser,
    count,
    jpki_attempt,
    load_user,
    phone_user,
    records_of,
)


@pytest.fixture
def holder(rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld) -> PhoneUser:
    return phone_user(rt, mailbox)


def refused(
    rt: Runtime, holder: PhoneUser, card: TestCard, *, level: str = "phone", **kwargs: object
) -> str:
    """Attempt, expect a refusal (level unchanged); returns the failure stored in the record."""
    with pytest.raises(EkycRefused) as caught:
        jpki_attempt(rt, holder.user, card, **kwargs)  # type: ignore[arg-type]
    [record] = [
        r
        for r in records_of(rt, holder.user)
        if str(r.id) == caught.value.details["verification_id"]
    ]
    assert record.ok is False
    assert caught.value.details["failure"] == record.failure
    assert caught.value.message == record.message
    assert load_user(rt, holder.user.id).level == level
    if level == "phone":
        assert count(rt, VerifiedIdentity) == 0
    assert record.failure is not None
    return record.failure


def card_with(
    world: EkycWorld,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    clock: ManualClock,
    *,
    other_names: Sequence[x509.GeneralName] | None = None,
    not_after: timedelta = timedelta(days=365),
) -> TestCard:
    certificate = world.ca.issue_signing_certificate(
        key.public_key(),
        other_names=other_names or CITIZEN.other_names(),
        not_before=clock.now() - timedelta(days=1),
        not_after=clock.now() + not_after,
    )
    return TestCard(certificate, key)  # type: ignore[arg-type]


class TestJpkiHappyPath:
    def test_reaches_verified_and_stores_identity_and_record(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld, clock: ManualClock
    ) -> None:
        record = jpki_attempt(rt, holder.user, world.card, kana="やまだ　たろう")
        assert load_user(rt, holder.user.id).level == "verified"
        assert (record.ok, record.failure, record.method) == (True, None, "jpki")
        assert record.certificate_der == world.card.certificate_der
        assert record.certificate_serial == f"{world.card.certificate.serial_number:X}"
        assert record.checked_at == clock.now()
        assert record.declared_kana == "ﾔﾏﾀﾞ ﾀﾛｳ"
        assert record.revocation is not None and record.revocation.startswith("good")
        assert record.attributes == {
            "name": "山田　太郎",
            "address": CITIZEN.address,
            "birth_date": "1985-06-15",
            "sex": "male",
            "contains_substitute_characters": False,
            "document_number": None,
            "document_expires_on": None,
        }
        with rt.db.session() as session:
            verified = session.get(VerifiedIdentity, holder.user.id)
            assert verified is not None
            assert (verified.name, verified.kana_name, verified.birth_date, verified.sex) == (
                "山田　太郎",
                "ﾔﾏﾀﾞ ﾀﾛｳ",
                date(1985, 6, 15),
                "male",
            )
            assert verified.verification_id == record.id
            nonce = session.query(EkycNonce).one()
            assert nonce.used_at == clock.now() and len(nonce.nonce_hash) == 64

    def test_needs_the_phone_level(
        self, rt: Runtime, mailbox: MemoryMailbox, world: EkycWorld
    ) -> None:
        user = verified_user(rt, mailbox)
        with pytest.raises(LevelRequired), rt.db.unit_of_work() as session:
            identity.start_ekyc(session, user, EkycMethod.JPKI)

    def test_not_configured(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        someone = phone_user(rt, mailbox)
        with pytest.raises(EkycNotConfigured) as caught, rt.db.unit_of_work() as session:
            identity.start_ekyc(session, someone.user, EkycMethod.JPKI)
        assert caught.value.status_code == 503


class TestJpkiRefusals:
    def test_malformed_certificate(self, rt: Runtime, holder: PhoneUser, world: EkycWorld) -> None:
        assert (
            refused(rt, holder, world.card, certificate=b"\x30\x03garbage")
            == "certificate_malformed"
        )

    def test_wrong_chain(
        self,
        rt: Runtime,
        holder: PhoneUser,
        world: EkycWorld,
        clock: ManualClock,
        identity_rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        foreign = DevCertificateAuthority.create(now=clock.now(), root_key=identity_rsa_keys[3])
        card = foreign.issue_card(CITIZEN, now=clock.now(), key=identity_rsa_keys[2])
        assert refused(rt, holder, card) == "chain_untrusted"

    def test_expired_certificate(
        self,
        rt: Runtime,
        holder: PhoneUser,
        world: EkycWorld,
        clock: ManualClock,
        identity_rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        card = card_with(world, identity_rsa_keys[2], clock, not_after=timedelta(hours=1))
        clock.advance(hours=2)
        world.publish(clock.now())
        assert refused(rt, holder, card) == "certificate_expired"

    def test_signature_over_another_nonce(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld
    ) -> None:
        assert refused(rt, holder, world.card, sign_nonce="another nonce") == "signature_invalid"

    def test_replayed_nonce(self, rt: Runtime, holder: PhoneUser, world: EkycWorld) -> None:
        first = jpki_attempt(rt, holder.user, world.card)
        assert first.ok
        assert (
            refused(rt, holder, world.card, nonce=first.nonce, level="verified") == "nonce_replayed"
        )

    def test_nonce_of_another_user_is_unknown(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld, mailbox: MemoryMailbox
    ) -> None:
        other = phone_user(rt, mailbox, phone="080-9876-5432", e164="+818098765432")
        with rt.db.unit_of_work() as session:
            nonce = identity.start_ekyc(session, other.user, EkycMethod.JPKI)
        assert refused(rt, holder, world.card, nonce=nonce) == "nonce_unknown"

    def test_unsupported_key(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld, clock: ManualClock
    ) -> None:
        card = card_with(world, ec.generate_private_key(ec.SECP256R1()), clock)
        with pytest.raises(EkycRefused):
            with rt.db.unit_of_work() as session:
                nonce = identity.start_ekyc(session, holder.user, EkycMethod.JPKI)
            with rt.db.unit_of_work() as session:
                identity.submit_jpki(
                    session,
                    holder.user,
                    certificate=card.certificate_der,
                    signature=b"\x00" * 64,
                    nonce=nonce,
                    kana_name=KANA,
                )
        assert records_of(rt, holder.user)[-1].failure == "unsupported_key"

    def test_broken_utf8_in_the_name(
        self,
        rt: Runtime,
        holder: PhoneUser,
        world: EkycWorld,
        clock: ManualClock,
        identity_rsa_keys: list[rsa.RSAPrivateKey],
    ) -> None:
        names = CITIZEN.other_names()
        names[0] = x509.OtherName(jpki.OID_NAME, b"\x0c\x03\xe5\xb1\xff")
        card = card_with(world, identity_rsa_keys[2], clock, other_names=names)
        assert refused(rt, holder, card) == "attribute_malformed"

    def test_revocation_takes_effect_when_the_crl_is_published(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld, clock: ManualClock
    ) -> None:
        world.ca.revoke(world.card.certificate.serial_number, now=clock.now())
        clock.advance(minutes=1)
        assert jpki_attempt(rt, holder.user, world.card).ok  # the CRL in force does not know
        world.publish(clock.now())
        clock.advance(minutes=1)
        assert refused(rt, holder, world.card, level="verified") == "certificate_revoked"
        revocation = records_of(rt, holder.user)[-1].revocation
        assert revocation is not None and revocation.startswith("revoked")

    def test_every_attempt_is_kept(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld, clock: ManualClock
    ) -> None:
        refused(rt, holder, world.card, sign_nonce="x")
        clock.advance(seconds=1)
        jpki_attempt(rt, holder.user, world.card)
        clock.advance(seconds=1)
        refused(rt, holder, world.card, sign_nonce="y", level="verified")
        assert [(r.ok, r.failure) for r in records_of(rt, holder.user)] == [
            (False, "signature_invalid"),
            (True, None),
            (False, "signature_invalid"),
        ]


class TestKanaName:
    CASES = (
        ("ヤマダ タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        ("やまだ　たろう", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        ("ｷｭｳﾍﾞｴ ｼﾞｮｳ", "ｷﾕｳﾍﾞｴ ｼﾞﾖｳ"),
    )
    REFUSED = ("山田 太郎", "", "YAMADA TARO", "ヤマダ 1", "株式会社ヤマダ", "ヤマダ\ud800")

    def test_normalised_to_zengin_form(self) -> None:
        for raw, expected in self.CASES:
            assert declared_kana(raw) == expected

    def test_refused(self) -> None:
        for raw in self.REFUSED:
            with pytest.raises(InvalidKanaName):
                declared_kana(raw)

    def test_unusable_kana_changes_nothing(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld
    ) -> None:
        with pytest.raises(InvalidKanaName):
            jpki_attempt(rt, holder.user, world.card, kana="Yamada Taro")
        assert count(rt, EkycVerification) == 0
        with rt.db.session() as session:
            assert session.query(EkycNonce).one().used_at is None

    def test_kana_without_the_family_given_split_is_recorded_and_refused(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld
    ) -> None:
        assert refused(rt, holder, world.card, kana="ヤマダタロウ") == "kana_name_inconsistent"
        assert records_of(rt, holder.user)[-1].attributes is not None


class TestIcChip:
    def submit(
        self, rt: Runtime, holder: PhoneUser, chip: TestChip, selfie: bytes
    ) -> EkycVerification:
        with rt.db.unit_of_work() as session:
            nonce = identity.start_ekyc(session, holder.user, EkycMethod.IC_CHIP)
        with rt.db.unit_of_work() as session:
            return identity.submit_ic_chip(
                session,
                holder.user,
                chip=chip.read(nonce),
                selfie=selfie,
                nonce=nonce,
                kana_name=KANA,
            )

    def test_happy_path(self, rt: Runtime, holder: PhoneUser, world: EkycWorld) -> None:
        chip = world.chip()
        record = self.submit(rt, holder, chip, world.selfie(chip))
        assert (record.ok, record.method, record.face_match_score) == (True, "ic_chip", 1.0)
        assert record.attributes is not None
        assert record.attributes["document_number"] == "DL-0001"
        assert load_user(rt, holder.user.id).level == "verified"

    def test_face_mismatch_is_recorded(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld
    ) -> None:
        with pytest.raises(EkycRefused):
            self.submit(rt, holder, world.chip(), b"someone else")
        assert records_of(rt, holder.user)[-1].failure == "face_mismatch"
        assert load_user(rt, holder.user.id).level == "phone"

    def test_the_development_face_matcher_is_refused_in_production(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld
    ) -> None:
        rt.settings.env = "production"
        with (
            pytest.raises(EkycNotConfigured, match="development face matcher"),
            rt.db.unit_of_work() as session,
        ):
            identity.start_ekyc(session, holder.user, EkycMethod.IC_CHIP)
        assert records_of(rt, holder.user) == []
        assert load_user(rt, holder.user.id).level == "phone"

    def test_jpki_nonce_is_not_an_ic_chip_nonce(
        self, rt: Runtime, holder: PhoneUser, world: EkycWorld
    ) -> None:
        chip = world.chip()
        with rt.db.unit_of_work() as session:
            nonce = identity.start_ekyc(session, holder.user, EkycMethod.JPKI)
        with pytest.raises(EkycRefused), rt.db.unit_of_work() as session:
            identity.submit_ic_chip(
                session,
                holder.user,
                chip=chip.read(nonce),
                selfie=world.selfie(chip),
                nonce=nonce,
                kana_name=KANA,
            )
        assert records_of(rt, holder.user)[-1].failure == "nonce_unknown"
