"""IcChipVerifier.verify: EF.SOD (CMS SignedData over the LDSSecurityObject), active
authentication and the selfie."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asn1crypto import cms, core
from cryptography.hazmat.primitives import serialization

from kouza.identity.ekyc import icchip
from kouza.identity.ekyc.devchip import DevDocumentIssuer, TestChip, TestChipHolder, sign_sod
from kouza.identity.ekyc.facematch import DevFaceMatcher, FaceMatch, FaceMatcher, dev_selfie_for
from kouza.identity.ekyc.icchip import ChipRead, DataGroup, IcChipVerifier
from kouza.identity.ekyc.nonces import InMemoryNonceStore
from kouza.identity.ekyc.result import (
    EkycFailure,
    EkycMethod,
    EkycResult,
    Sex,
    VerifiedAttributes,
)
from kouza.identity.ekyc.revocation import (
    CrlRevocationChecker,
    OcspRevocationChecker,
    RevocationChecker,
)

from .conftest import NOW

FACE = b"\xff\xd8\xff\xe0 face of Hanako"


@pytest.fixture(scope="module")
def issuer() -> DevDocumentIssuer:
    return DevDocumentIssuer.create(now=NOW)


@pytest.fixture
def holder() -> TestChipHolder:
    return TestChipHolder(
        name="鈴木　花子",
        address="大阪府大阪市北区中之島一丁目３番２０号",
        birth_date=date(1990, 1, 2),
        sex=Sex.FEMALE,
        document_number="123456789012",
        expires_on=date(2031, 1, 2),
        face_image=FACE,
    )


@pytest.fixture
def chip(issuer: DevDocumentIssuer, holder: TestChipHolder) -> TestChip:
    return issuer.issue_chip(holder)


class _Unavailable:
    def compare(self, *, reference: bytes, selfie: bytes) -> FaceMatch:
        raise TimeoutError("provider timed out")


class _Photo:
    def compare(self, *, reference: bytes, selfie: bytes) -> FaceMatch:
        return FaceMatch(score=0.99, live=False)


class World:
    def __init__(self, issuer: DevDocumentIssuer) -> None:
        self.issuer = issuer
        self.nonces = InMemoryNonceStore()

    def verifier(
        self,
        *,
        revocation: RevocationChecker | None = None,
        face_matcher: FaceMatcher | None = None,
        require_active_authentication: bool = False,
    ) -> IcChipVerifier:
        return IcChipVerifier(
            trust_anchors=self.issuer.trust_anchors,
            revocation=revocation or CrlRevocationChecker(self.issuer.crl(now=NOW)),
            nonces=self.nonces,
            face_matcher=face_matcher or DevFaceMatcher(),
            require_active_authentication=require_active_authentication,
        )

    def attempt(
        self,
        chip: TestChip,
        *,
        selfie: bytes = dev_selfie_for(FACE),
        tamper: Callable[[ChipRead], ChipRead] | None = None,
        verifier: IcChipVerifier | None = None,
        at: datetime = NOW,
    ) -> EkycResult:
        nonce = self.nonces.issue(NOW)
        read = chip.read(nonce)
        if tamper is not None:
            read = tamper(read)
        return (verifier or self.verifier()).verify(chip=read, selfie=selfie, nonce=nonce, now=at)


@pytest.fixture
def world(issuer: DevDocumentIssuer) -> World:
    return World(issuer)


def _failure(result: EkycResult) -> EkycFailure | None:
    return result.failure


def _with_group(read: ChipRead, number: int, data: bytes) -> ChipRead:
    return replace(read, data_groups={**read.data_groups, number: data})


def _signed_data(sod: bytes) -> cms.ContentInfo:
    return cms.ContentInfo.load(sod[4:] if sod[1] == 0x82 else sod[2:])


def _resigned_data(sod: bytes, field: str, value: object) -> bytes:
    """EF.SOD with one SignedData field replaced, every other byte kept as signed."""
    signed = _signed_data(sod)["content"]
    signed[field] = value
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed})
    return icchip.wrap_sod(bytes(info.dump()))


def _with_certificate(sod: bytes, *, certificate_from: bytes) -> bytes:
    certificates = _signed_data(certificate_from)["content"]["certificates"]
    return _resigned_data(sod, "certificates", certificates)


def _with_content(sod: bytes, content: bytes) -> bytes:
    return _resigned_data(
        sod,
        "encap_content_info",
        {"content_type": icchip.LDS_SECURITY_OBJECT_OID, "content": content},
    )


class TestHappyPath:
    def test_attributes_and_record(self, world: World, chip: TestChip) -> None:
        result = world.attempt(chip)

        assert result.ok is True
        assert result.attributes == VerifiedAttributes(
            name="鈴木　花子",
            address="大阪府大阪市北区中之島一丁目３番２０号",
            birth_date=date(1990, 1, 2),
            sex=Sex.FEMALE,
            document_number="123456789012",
            document_expires_on=date(2031, 1, 2),
        )
        assert result.method is EkycMethod.IC_CHIP
        assert result.face_match_score == 1.0
        assert result.certificate_serial == world.issuer.signer.serial_number

    def test_document_without_sex_and_without_chip_key(
        self, world: World, issuer: DevDocumentIssuer, holder: TestChipHolder
    ) -> None:
        chip = issuer.issue_chip(replace(holder, sex=None), with_chip_key=False)

        result = world.attempt(chip)

        assert result.ok is True
        assert result.attributes is not None
        assert result.attributes.sex is None

    def test_ocsp_for_the_document_signer(
        self, world: World, issuer: DevDocumentIssuer, chip: TestChip
    ) -> None:
        client = httpx.Client(transport=httpx.MockTransport(issuer.ocsp_handler(lambda: NOW)))
        verifier = world.verifier(revocation=OcspRevocationChecker(client=client))

        assert world.attempt(chip, verifier=verifier).ok is True


class TestDataRefusals:
    def test_tampered_data_group(self, world: World, chip: TestChip) -> None:
        forged = icchip.encode_holder_group(
            name="悪人　太郎", address="東京都", birth_date=date(1990, 1, 2), sex=Sex.MALE
        )

        result = world.attempt(chip, tamper=lambda read: _with_group(read, 1, forged))

        assert _failure(result) is EkycFailure.DATA_GROUP_TAMPERED
        assert result.attributes is None

    def test_unsigned_extra_group(self, world: World, chip: TestChip) -> None:
        result = world.attempt(chip, tamper=lambda read: _with_group(read, 7, b"\x04\x00"))

        assert _failure(result) is EkycFailure.DATA_GROUP_TAMPERED

    def test_missing_required_group(self, world: World, chip: TestChip) -> None:
        def drop_face(read: ChipRead) -> ChipRead:
            groups = {k: v for k, v in read.data_groups.items() if k != DataGroup.FACE}
            return replace(read, data_groups=groups)

        assert _failure(world.attempt(chip, tamper=drop_face)) is EkycFailure.DOCUMENT_MALFORMED

    def test_garbage_security_object_with_valid_signature(
        self, world: World, issuer: DevDocumentIssuer, chip: TestChip
    ) -> None:
        signed_junk = issuer.sign_content(b"\x30\x03\x02\x01\x07")

        def swap(read: ChipRead) -> ChipRead:
            return replace(read, sod=signed_junk)

        assert _failure(world.attempt(chip, tamper=swap)) is EkycFailure.DOCUMENT_MALFORMED

    @pytest.mark.parametrize(
        "sod",
        [
            b"",
            b"\x77\x00",
            b"\x30\x03\x02\x01\x07",
            b"\x77\x05\x30\x03\x02\x01\x07",
        ],
    )
    def test_an_ef_sod_that_is_not_signed_data(
        self, world: World, chip: TestChip, sod: bytes
    ) -> None:
        result = world.attempt(chip, tamper=lambda read: replace(read, sod=sod))

        assert _failure(result) is EkycFailure.DOCUMENT_MALFORMED

    def test_broken_utf8_signed_by_the_issuer(
        self, world: World, issuer: DevDocumentIssuer, chip: TestChip
    ) -> None:
        sequence = b"".join(
            [
                b"\x0c\x04\xe9\x88\xb4\xff",
                bytes(core.UTF8String("大阪府").dump()),
                bytes(core.PrintableString("19900102").dump()),
            ]
        )
        inner = b"\x30" + bytes([len(sequence)]) + sequence
        broken = b"\x61" + bytes([len(inner)]) + inner
        groups = {**chip.data_groups, DataGroup.HOLDER: broken}
        bad_chip = replace(chip, data_groups=groups, sod=issuer.sign_sod(groups))

        assert _failure(world.attempt(bad_chip)) is EkycFailure.ATTRIBUTE_MALFORMED

    def test_expired_document(
        self, world: World, issuer: DevDocumentIssuer, holder: TestChipHolder
    ) -> None:
        # 2026-04-01 01:00 UTC is already 10:00 on 1 April in Japan: a card valid through
        # 31 March has expired even though it is still 31 March in UTC a few hours earlier.
        chip = issuer.issue_chip(replace(holder, expires_on=date(2026, 3, 31)))

        assert _failure(world.attempt(chip)) is EkycFailure.DOCUMENT_EXPIRED


class TestIssuerRefusals:
    def test_wrong_issuer(self, world: World, holder: TestChipHolder) -> None:
        stranger = DevDocumentIssuer.create(now=NOW)

        assert _failure(world.attempt(stranger.issue_chip(holder))) is EkycFailure.CHAIN_UNTRUSTED

    def test_signature_by_another_signer(self, world: World, chip: TestChip) -> None:
        # the genuine document signer's certificate, but another key signed the SignedData
        stranger = DevDocumentIssuer.create(now=NOW)
        content = icchip.encode_lds_security_object(chip.data_groups)
        forged = sign_sod(content, key=stranger.signer_key, certificate=world.issuer.signer)

        result = world.attempt(chip, tamper=lambda read: replace(read, sod=forged))

        assert _failure(result) is EkycFailure.SIGNATURE_INVALID

    def test_a_signer_info_naming_another_certificate(self, world: World, chip: TestChip) -> None:
        stranger = DevDocumentIssuer.create(now=NOW)
        content = icchip.encode_lds_security_object(chip.data_groups)
        theirs = sign_sod(content, key=stranger.signer_key, certificate=stranger.signer)
        ours = sign_sod(content, key=world.issuer.signer_key, certificate=world.issuer.signer)
        mixed = _with_certificate(theirs, certificate_from=ours)

        result = world.attempt(chip, tamper=lambda read: replace(read, sod=mixed))

        assert _failure(result) is EkycFailure.SIGNATURE_INVALID

    def test_a_message_digest_over_other_content(self, world: World, chip: TestChip) -> None:
        # the signed attributes are intact, but the LDSSecurityObject beside them was swapped
        other = dict(chip.data_groups)
        other[DataGroup.HOLDER] = icchip.encode_holder_group(
            name="悪人　太郎", address="東京都", birth_date=date(1990, 1, 2), sex=Sex.MALE
        )
        swapped = _with_content(chip.sod, icchip.encode_lds_security_object(other))

        def swap(read: ChipRead) -> ChipRead:
            return replace(read, data_groups=other, sod=swapped)

        assert _failure(world.attempt(chip, tamper=swap)) is EkycFailure.SIGNATURE_INVALID

    def test_revoked_document_signer(self, world: World, holder: TestChipHolder) -> None:
        issuer = DevDocumentIssuer.create(now=NOW)
        local = World(issuer)
        chip = issuer.issue_chip(holder)
        issuer.revoke_signer(now=NOW)

        assert _failure(local.attempt(chip)) is EkycFailure.CERTIFICATE_REVOKED

    def test_document_signer_not_yet_valid(self, world: World, chip: TestChip) -> None:
        before = NOW - timedelta(hours=1)

        assert _failure(world.attempt(chip, at=before)) is EkycFailure.CERTIFICATE_NOT_YET_VALID


class TestChipAuthentication:
    def test_stripped_chip_key(self, world: World, chip: TestChip) -> None:
        def strip(read: ChipRead) -> ChipRead:
            groups = {k: v for k, v in read.data_groups.items() if k != DataGroup.CHIP_KEY}
            return replace(read, data_groups=groups, active_authentication_signature=None)

        assert _failure(world.attempt(chip, tamper=strip)) is EkycFailure.CHIP_NOT_AUTHENTICATED

    def test_answer_to_another_nonce(self, world: World, chip: TestChip) -> None:
        old_answer = chip.read("an earlier nonce").active_authentication_signature

        def replay(read: ChipRead) -> ChipRead:
            return replace(read, active_authentication_signature=old_answer)

        assert _failure(world.attempt(chip, tamper=replay)) is EkycFailure.CHIP_NOT_AUTHENTICATED

    def test_required_but_chip_has_no_key(
        self, world: World, issuer: DevDocumentIssuer, holder: TestChipHolder
    ) -> None:
        chip = issuer.issue_chip(holder, with_chip_key=False)
        verifier = world.verifier(require_active_authentication=True)

        assert _failure(world.attempt(chip, verifier=verifier)) is (
            EkycFailure.CHIP_NOT_AUTHENTICATED
        )

    def test_replayed_read(self, world: World, chip: TestChip) -> None:
        nonce = world.nonces.issue(NOW)
        read = chip.read(nonce)
        verifier = world.verifier()
        first = verifier.verify(chip=read, selfie=dev_selfie_for(FACE), nonce=nonce, now=NOW)

        again = verifier.verify(chip=read, selfie=dev_selfie_for(FACE), nonce=nonce, now=NOW)

        assert first.ok is True
        assert again.failure is EkycFailure.NONCE_REPLAYED


class TestFace:
    def test_someone_else(self, world: World, chip: TestChip) -> None:
        result = world.attempt(chip, selfie=dev_selfie_for(b"another face"))

        assert _failure(result) is EkycFailure.FACE_MISMATCH
        assert result.face_match_score is None

    def test_not_live(self, world: World, chip: TestChip) -> None:
        verifier = world.verifier(face_matcher=_Photo())

        assert _failure(world.attempt(chip, verifier=verifier)) is EkycFailure.FACE_MISMATCH

    def test_provider_down(self, world: World, chip: TestChip) -> None:
        verifier = world.verifier(face_matcher=_Unavailable())

        assert _failure(world.attempt(chip, verifier=verifier)) is (
            EkycFailure.FACE_CHECK_UNAVAILABLE
        )

    def test_dev_matcher_is_deterministic(self) -> None:
        matcher = DevFaceMatcher()

        assert matcher.compare(reference=FACE, selfie=dev_selfie_for(FACE)) == FaceMatch(1.0, True)
        assert matcher.compare(reference=FACE, selfie=b"jpeg") == FaceMatch(0.0, False)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_verifies_the_development_ef_sod(
    issuer: DevDocumentIssuer, chip: TestChip, tmp_path: Path
) -> None:
    """An independent CMS implementation accepts what the development issuer signs."""
    (tmp_path / "sod.der").write_bytes(_signed_data(chip.sod).dump())
    (tmp_path / "csca.pem").write_bytes(
        issuer.root.certificate.public_bytes(serialization.Encoding.PEM)
    )
    verified = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "sod.der"),
            "-CAfile",
            str(tmp_path / "csca.pem"),
            "-purpose",
            "any",
            "-binary",
            "-out",
            str(tmp_path / "lds.der"),
            "-attime",
            str(int(NOW.timestamp())),
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    assert (tmp_path / "lds.der").read_bytes() == icchip.encode_lds_security_object(
        chip.data_groups
    )
