"""JpkiVerifier.verify: the happy path with the development CA and every refusal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ObjectIdentifier

from kouza.identity.ekyc import jpki
from kouza.identity.ekyc.devca import DevCertificateAuthority, TestCard, TestCitizen
from kouza.identity.ekyc.jpki import JPKI_SIGNING_POLICY_OIDS, JpkiVerifier
from kouza.identity.ekyc.nonces import InMemoryNonceStore
from kouza.identity.ekyc.result import EkycFailure, EkycMethod, Sex, VerifiedAttributes
from kouza.identity.ekyc.revocation import CrlRevocationChecker, RevocationState

from .conftest import NOW, Attempt

JPKI_AUTH_POLICY = ObjectIdentifier("1.2.392.200149.8.5.1.3.30")  # 利用者証明用, not signing


def tlv(tag: int, content: bytes) -> bytes:
    """A short-form DER element with any content, well-formed or not."""
    assert len(content) < 128
    return bytes([tag, len(content)]) + content


def _card_with(
    dev_ca: DevCertificateAuthority,
    key: rsa.RSAPrivateKey,
    *,
    other_names: Sequence[x509.GeneralName] | None,
    policy_oids: tuple[ObjectIdentifier, ...] = (jpki.JPKI_SIGNING_POLICY_OID,),
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=365),
) -> TestCard:
    certificate = dev_ca.issue_signing_certificate(
        key.public_key(),
        other_names=other_names,
        policy_oids=policy_oids,
        not_before=not_before,
        not_after=not_after,
    )
    return TestCard(certificate, key)


def _utf8_name(oid: ObjectIdentifier, raw: bytes) -> x509.OtherName:
    return x509.OtherName(oid, tlv(0x0C, raw))


class TestHappyPath:
    def test_attributes_read_back_exactly(
        self, attempt: Attempt, card: TestCard, citizen: TestCitizen
    ) -> None:
        result = attempt(card)

        assert result.ok is True
        assert result.failure is None
        assert result.message == "verified by JPKI signing certificate"
        assert result.attributes == VerifiedAttributes(
            name="山田　太郎",
            address="東京都千代田区霞が関二丁目１番２号",
            birth_date=date(1985, 6, 15),
            sex=Sex.MALE,
            contains_substitute_characters=False,
        )

    def test_result_is_a_complete_record(
        self, verifier: JpkiVerifier, nonces: InMemoryNonceStore, card: TestCard
    ) -> None:
        nonce = nonces.issue(NOW)
        signature = card.sign_nonce(nonce)

        result = verifier.verify(
            certificate=card.certificate_der, signature=signature, nonce=nonce, now=NOW
        )

        assert result.method is EkycMethod.JPKI
        assert result.certificate_der == card.certificate_der
        assert result.certificate_serial == card.certificate.serial_number
        assert result.issuer == card.certificate.issuer.rfc4514_string()
        assert result.checked_at == NOW
        assert result.nonce == nonce
        assert result.signature == signature
        assert result.revocation is not None
        assert result.revocation.state is RevocationState.GOOD
        assert result.revocation.source == "crl"

    def test_pem_certificate_is_accepted(self, attempt: Attempt, card: TestCard) -> None:
        pem = card.certificate.public_bytes(serialization.Encoding.PEM)

        assert attempt(card, certificate=pem).ok is True

    @pytest.mark.parametrize(
        ("sex", "birth_date"),
        [(Sex.FEMALE, date(1926, 12, 25)), (Sex.NOT_KNOWN, date(2019, 5, 1))],
    )
    def test_other_sex_codes_and_eras(
        self,
        attempt: Attempt,
        dev_ca: DevCertificateAuthority,
        rsa_keys: list[rsa.RSAPrivateKey],
        sex: Sex,
        birth_date: date,
    ) -> None:
        person = TestCitizen(
            "鈴木　花子", "大阪府大阪市北区中之島一丁目３番２０号", birth_date, sex
        )
        card = dev_ca.issue_card(person, now=NOW, key=rsa_keys[3])

        result = attempt(card)

        assert result.attributes is not None
        assert (result.attributes.sex, result.attributes.birth_date) == (sex, birth_date)

    def test_intermediate_hierarchy(
        self,
        rsa_keys: list[rsa.RSAPrivateKey],
        citizen: TestCitizen,
        nonces: InMemoryNonceStore,
    ) -> None:
        ca = DevCertificateAuthority.create(
            now=NOW, with_intermediate=True, root_key=rsa_keys[0], intermediate_key=rsa_keys[1]
        )
        card = ca.issue_card(citizen, now=NOW, key=rsa_keys[2])
        verifier = JpkiVerifier(
            trust_anchors=ca.trust_anchors,
            intermediates=ca.intermediates,
            policy_oids=JPKI_SIGNING_POLICY_OIDS,
            revocation=CrlRevocationChecker(ca.crls(now=NOW)),
            nonces=nonces,
        )
        nonce = nonces.issue(NOW)

        result = verifier.verify(
            certificate=card.certificate_der, signature=card.sign_nonce(nonce), nonce=nonce, now=NOW
        )

        assert result.ok is True

    def test_printable_string_tolerated_for_digit_fields(
        self,
        attempt: Attempt,
        dev_ca: DevCertificateAuthority,
        rsa_keys: list[rsa.RSAPrivateKey],
        citizen: TestCitizen,
    ) -> None:
        names: list[x509.GeneralName] = [
            x509.OtherName(name.type_id, bytes(core.PrintableString("319850615").dump()))
            if name.type_id == jpki.OID_BIRTH_DATE
            else name
            for name in citizen.other_names()
        ]
        card = _card_with(dev_ca, rsa_keys[3], other_names=names)

        result = attempt(card)

        assert result.attributes is not None
        assert result.attributes.birth_date == date(1985, 6, 15)

    def test_substitute_characters_are_flagged(
        self, attempt: Attempt, dev_ca: DevCertificateAuthority, rsa_keys: list[rsa.RSAPrivateKey]
    ) -> None:
        names = TestCitizen("髙橋　一郎", "京都府", date(1970, 1, 1), Sex.MALE).other_names()
        names[4] = x509.OtherName(jpki.OID_NAME_SUBSTITUTES, bytes(core.UTF8String("10000").dump()))
        card = _card_with(dev_ca, rsa_keys[3], other_names=names)

        result = attempt(card)

        assert result.attributes is not None
        assert result.attributes.contains_substitute_characters is True


class TestNonceRefusals:
    def test_replayed_nonce(
        self, verifier: JpkiVerifier, nonces: InMemoryNonceStore, card: TestCard
    ) -> None:
        nonce = nonces.issue(NOW)
        signature = card.sign_nonce(nonce)
        first = verifier.verify(
            certificate=card.certificate_der, signature=signature, nonce=nonce, now=NOW
        )

        replay = verifier.verify(
            certificate=card.certificate_der, signature=signature, nonce=nonce, now=NOW
        )

        assert first.ok is True
        assert replay.failure is EkycFailure.NONCE_REPLAYED
        assert replay.attributes is None

    def test_unknown_nonce(self, verifier: JpkiVerifier, card: TestCard) -> None:
        nonce = "made-up-by-the-client"

        result = verifier.verify(
            certificate=card.certificate_der, signature=card.sign_nonce(nonce), nonce=nonce, now=NOW
        )

        assert result.failure is EkycFailure.NONCE_UNKNOWN

    def test_expired_nonce(
        self, verifier: JpkiVerifier, nonces: InMemoryNonceStore, card: TestCard
    ) -> None:
        nonce = nonces.issue(NOW - timedelta(minutes=5))

        result = verifier.verify(
            certificate=card.certificate_der, signature=card.sign_nonce(nonce), nonce=nonce, now=NOW
        )

        assert result.failure is EkycFailure.NONCE_EXPIRED

    def test_signature_over_another_nonce(
        self, verifier: JpkiVerifier, nonces: InMemoryNonceStore, card: TestCard
    ) -> None:
        asked, other = nonces.issue(NOW), nonces.issue(NOW)

        result = verifier.verify(
            certificate=card.certificate_der, signature=card.sign_nonce(other), nonce=asked, now=NOW
        )

        assert result.failure is EkycFailure.SIGNATURE_INVALID
        assert result.ok is False

    def test_garbage_signature(
        self, verifier: JpkiVerifier, nonces: InMemoryNonceStore, card: TestCard
    ) -> None:
        nonce = nonces.issue(NOW)

        result = verifier.verify(
            certificate=card.certificate_der, signature=b"", nonce=nonce, now=NOW
        )

        assert result.failure is EkycFailure.SIGNATURE_INVALID


class TestCertificateRefusals:
    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"not a certificate",
            b"\x30\x03\x02\x01\x01",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ],
    )
    def test_malformed_certificate(self, attempt: Attempt, card: TestCard, data: bytes) -> None:
        result = attempt(card, certificate=data)

        assert result.failure is EkycFailure.CERTIFICATE_MALFORMED
        assert result.certificate_der == data
        assert result.certificate_serial is None

    def test_unpinned_root_with_the_same_name(
        self, attempt: Attempt, rsa_keys: list[rsa.RSAPrivateKey], citizen: TestCitizen
    ) -> None:
        impostor = DevCertificateAuthority.create(now=NOW, root_key=rsa_keys[4])
        card = impostor.issue_card(citizen, now=NOW, key=rsa_keys[3])

        result = attempt(card)

        assert result.failure is EkycFailure.CHAIN_UNTRUSTED

    def test_expired(
        self, attempt: Attempt, dev_ca: DevCertificateAuthority, rsa_keys: list[rsa.RSAPrivateKey]
    ) -> None:
        names = TestCitizen("佐藤　次郎", "北海道", date(1960, 2, 29), Sex.MALE).other_names()
        card = _card_with(
            dev_ca,
            rsa_keys[3],
            other_names=names,
            not_before=NOW - timedelta(days=30),
            not_after=NOW - timedelta(seconds=1),
        )

        assert attempt(card).failure is EkycFailure.CERTIFICATE_EXPIRED

    def test_not_yet_valid(
        self, attempt: Attempt, dev_ca: DevCertificateAuthority, rsa_keys: list[rsa.RSAPrivateKey]
    ) -> None:
        names = TestCitizen("佐藤　次郎", "北海道", date(1960, 2, 29), Sex.MALE).other_names()
        card = _card_with(
            dev_ca,
            rsa_keys[3],
            other_names=names,
            not_before=NOW + timedelta(hours=1),
            not_after=NOW + timedelta(days=30),
        )

        assert attempt(card).failure is EkycFailure.CERTIFICATE_NOT_YET_VALID

    def test_verified_when_the_clock_passes_expiry_later(
        self, attempt: Attempt, card: TestCard
    ) -> None:
        later = card.certificate.not_valid_after_utc + timedelta(seconds=1)

        assert attempt(card, at=later).failure is EkycFailure.CERTIFICATE_EXPIRED

    @pytest.mark.parametrize(
        "policies",
        [(JPKI_AUTH_POLICY,), ()],
        ids=["authentication-certificate-policy", "no-policy"],
    )
    def test_wrong_certificate_policy(
        self,
        attempt: Attempt,
        dev_ca: DevCertificateAuthority,
        rsa_keys: list[rsa.RSAPrivateKey],
        citizen: TestCitizen,
        policies: tuple[ObjectIdentifier, ...],
    ) -> None:
        card = _card_with(
            dev_ca, rsa_keys[3], other_names=citizen.other_names(), policy_oids=policies
        )

        assert attempt(card).failure is EkycFailure.POLICY_MISMATCH

    def test_key_usage_without_digital_signature(
        self, attempt: Attempt, dev_ca: DevCertificateAuthority, rsa_keys: list[rsa.RSAPrivateKey]
    ) -> None:
        key = rsa_keys[3]
        builder = (
            dev_ca.issuing.end_entity_builder(
                public_key=key.public_key(),
                common_name="no-signing",
                not_before=NOW - timedelta(days=1),
                not_after=NOW + timedelta(days=1),
            )
            .add_extension(
                x509.KeyUsage(False, False, True, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(jpki.JPKI_SIGNING_POLICY_OID, None)]
                ),
                critical=True,
            )
        )
        card = TestCard(dev_ca.issuing.sign(builder), key)

        assert attempt(card).failure is EkycFailure.KEY_USAGE_INVALID


class TestKeyRefusals:
    @pytest.mark.parametrize(
        "make_key",
        [
            lambda: ec.generate_private_key(ec.SECP256R1()).public_key(),
            lambda: dsa.generate_private_key(1024).public_key(),
            lambda: ed25519.Ed25519PrivateKey.generate().public_key(),
            lambda: rsa.generate_private_key(65537, 1024).public_key(),
        ],
        ids=["ec-p256", "dsa", "ed25519", "rsa-1024"],
    )
    def test_unsupported_key(
        self,
        verifier: JpkiVerifier,
        nonces: InMemoryNonceStore,
        dev_ca: DevCertificateAuthority,
        card: TestCard,
        citizen: TestCitizen,
        make_key: Callable[[], CertificatePublicKeyTypes],
    ) -> None:
        certificate = dev_ca.issue_signing_certificate(
            make_key(),
            other_names=citizen.other_names(),
            not_before=NOW - timedelta(days=1),
            not_after=NOW + timedelta(days=1),
        )
        nonce = nonces.issue(NOW)

        result = verifier.verify(
            certificate=certificate.public_bytes(serialization.Encoding.DER),
            signature=card.sign_nonce(nonce),
            nonce=nonce,
            now=NOW,
        )

        assert result.failure is EkycFailure.UNSUPPORTED_KEY
        assert result.certificate_serial == certificate.serial_number


class TestAttributeRefusals:
    def test_no_subject_alt_name(
        self, attempt: Attempt, dev_ca: DevCertificateAuthority, rsa_keys: list[rsa.RSAPrivateKey]
    ) -> None:
        card = _card_with(dev_ca, rsa_keys[3], other_names=None)

        assert attempt(card).failure is EkycFailure.ATTRIBUTE_MISSING

    @pytest.mark.parametrize(
        "dropped", [jpki.OID_NAME, jpki.OID_SEX, jpki.OID_BIRTH_DATE, jpki.OID_ADDRESS]
    )
    def test_missing_field(
        self,
        attempt: Attempt,
        dev_ca: DevCertificateAuthority,
        rsa_keys: list[rsa.RSAPrivateKey],
        citizen: TestCitizen,
        dropped: ObjectIdentifier,
    ) -> None:
        names = [name for name in citizen.other_names() if name.type_id != dropped]
        card = _card_with(dev_ca, rsa_keys[3], other_names=list(names))

        result = attempt(card)

        assert result.failure is EkycFailure.ATTRIBUTE_MISSING
        assert result.attributes is None

    @pytest.mark.parametrize(
        ("oid", "value"),
        [
            (jpki.OID_NAME, tlv(0x0C, b"\xe5\xb1\xb1\xff\xfe")),
            (jpki.OID_ADDRESS, tlv(0x0C, b"\xc3\x28")),
            (jpki.OID_NAME, tlv(0x04, "山田".encode())),
            (jpki.OID_NAME, bytes(core.UTF8String("山田\x00太郎").dump())),
            (jpki.OID_SEX, bytes(core.UTF8String("9").dump())),
            (jpki.OID_BIRTH_DATE, bytes(core.UTF8String("19850615").dump())),
            (jpki.OID_BIRTH_DATE, bytes(core.UTF8String("319850000").dump())),
            (jpki.OID_BIRTH_DATE, bytes(core.UTF8String("919850615").dump())),
        ],
        ids=[
            "name-broken-utf8",
            "address-broken-utf8",
            "name-wrong-type",
            "name-control-character",
            "sex-code",
            "birth-date-no-era",
            "birth-date-partial",
            "birth-date-bad-era",
        ],
    )
    def test_malformed_field(
        self,
        attempt: Attempt,
        dev_ca: DevCertificateAuthority,
        rsa_keys: list[rsa.RSAPrivateKey],
        citizen: TestCitizen,
        oid: ObjectIdentifier,
        value: bytes,
    ) -> None:
        names: list[x509.GeneralName] = [
            x509.OtherName(oid, value) if name.type_id == oid else name
            for name in citizen.other_names()
        ]
        card = _card_with(dev_ca, rsa_keys[3], other_names=names)

        assert attempt(card).failure is EkycFailure.ATTRIBUTE_MALFORMED

    def test_duplicate_field(
        self,
        attempt: Attempt,
        dev_ca: DevCertificateAuthority,
        rsa_keys: list[rsa.RSAPrivateKey],
        citizen: TestCitizen,
    ) -> None:
        names: list[x509.GeneralName] = [
            *citizen.other_names(),
            x509.OtherName(jpki.OID_ADDRESS, bytes(core.UTF8String("沖縄県").dump())),
        ]
        card = _card_with(dev_ca, rsa_keys[3], other_names=names)

        assert attempt(card).failure is EkycFailure.ATTRIBUTE_MALFORMED


class TestCaller:
    def test_naive_clock_is_a_programming_error(
        self, verifier: JpkiVerifier, card: TestCard
    ) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            verifier.verify(
                certificate=card.certificate_der,
                signature=b"",
                nonce="n",
                now=datetime(2026, 4, 1),
            )

    def test_policy_set_must_not_be_empty(
        self,
        dev_ca: DevCertificateAuthority,
        nonces: InMemoryNonceStore,
        crl_checker: CrlRevocationChecker,
    ) -> None:
        with pytest.raises(ValueError, match="policy"):
            JpkiVerifier(
                trust_anchors=dev_ca.trust_anchors,
                policy_oids=frozenset(),
                revocation=crl_checker,
                nonces=nonces,
            )


class TestProfileHelpers:
    @pytest.mark.parametrize(
        ("day", "encoded"),
        [
            (date(1912, 7, 29), "119120729"),
            (date(1912, 7, 30), "219120730"),
            (date(1926, 12, 25), "319261225"),
            (date(1989, 1, 7), "319890107"),
            (date(1989, 1, 8), "419890108"),
            (date(2019, 4, 30), "420190430"),
            (date(2019, 5, 1), "520190501"),
        ],
    )
    def test_birth_date_era_prefix(self, day: date, encoded: str) -> None:
        assert jpki.encode_birth_date(day) == encoded
        assert jpki.parse_birth_date(encoded) == day

    def test_challenge_is_domain_separated(self) -> None:
        assert jpki.challenge_message("abc") == b"kouza eKYC JPKI challenge v1\x00abc"

    def test_card_signature_is_pkcs1v15_sha256(self, card: TestCard) -> None:
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = card.sign_nonce("n")
        public_key = card.certificate.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(
            signature, jpki.challenge_message("n"), padding.PKCS1v15(), hashes.SHA256()
        )
        assert len(signature) == 256
