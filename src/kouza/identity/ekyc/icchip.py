"""eKYC method (へ): issuer-signed data read from an ID card's IC chip, plus a selfie.

The model follows ICAO 9303 passive authentication, the scheme e-passports and the Japanese
driving-licence and residence-card chips are built on:

- the chip holds **data groups** (DG1 holder data, DG2 face image, DG3 document data, optional
  DG15 chip public key), each a small DER structure (encoders below);
- a **security object** lists the SHA-2 hash of every data group (ICAO's LDSSecurityObject
  shape: version, hash AlgorithmIdentifier, sequence of (group number, hash));
- the issuer's **document signer** signs the security object; its certificate chains to the
  pinned issuer root (ICAO's CSCA).

One deliberate difference: ICAO wraps the security object in CMS SignedData. ``cryptography``
can build CMS but cannot verify it, and parsing CMS signed attributes by hand would need a real
ASN.1 library, so the chip read here carries the security object, a *detached* signature over
its DER and the document-signer certificate separately. An adapter for a real chip unwraps the
CMS into these three parts (and must then also check the CMS signed attributes); the checks
below stay the same.

Passive authentication proves the data is the issuer's, not that it was read from the physical
card just now: a copy of someone else's chip data verifies too. Two things close that gap: the
selfie (checked by a :class:`FaceMatcher` against DG2) and, for chips that have a key, active
authentication: the chip signs the server nonce with the private key whose public half is in
DG15. If the security object lists DG15, the signature is required (stripping DG15 is refused);
``require_active_authentication`` makes chips without DG15 unacceptable altogether.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import IntEnum

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ObjectIdentifier

from kouza.identity.ekyc import der
from kouza.identity.ekyc.facematch import FaceMatch, FaceMatcher
from kouza.identity.ekyc.jpki import SEX_CODES
from kouza.identity.ekyc.nonces import NonceStore
from kouza.identity.ekyc.pki import (
    ChainValidator,
    Refusal,
    VerificationRecord,
    consume_nonce,
    load_certificate,
    require_aware,
    require_not_revoked,
    require_policy,
    require_signing_end_entity,
    require_valid_period,
)
from kouza.identity.ekyc.result import (
    EkycFailure,
    EkycMethod,
    EkycResult,
    Sex,
    VerifiedAttributes,
)
from kouza.identity.ekyc.revocation import RevocationChecker, verify_signature

JST = timezone(timedelta(hours=9), "JST")
"""Japanese cards print dates in Japan time; "expired today" is judged on the JST date."""

ACTIVE_AUTHENTICATION_DOMAIN = b"kouza eKYC chip challenge v1\x00"
SECURITY_OBJECT_VERSION = 0
DEFAULT_FACE_MATCH_THRESHOLD = 0.8
_SEX_BY_VALUE = {sex: code for code, sex in SEX_CODES.items()}
_SEX_TAG = der.context_tag(0)
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256(),
    "2.16.840.1.101.3.4.2.2": hashes.SHA384(),
    "2.16.840.1.101.3.4.2.3": hashes.SHA512(),
}
_HASH_OIDS = {algorithm.name: ObjectIdentifier(oid) for oid, algorithm in _HASHES.items()}
_EC_CURVES: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
}
_MIN_RSA_BITS = 2048


class DataGroup(IntEnum):
    """Data-group numbers (ICAO numbering where the content corresponds)."""

    HOLDER = 1
    """SEQUENCE { name UTF8String, address UTF8String, birthDate PrintableString YYYYMMDD,
    sex [0] IMPLICIT PrintableString OPTIONAL -- JPKI codes "1", "2", "3" }."""
    FACE = 2
    """OCTET STRING: the face image (JPEG/JPEG 2000 bytes, opaque here)."""
    DOCUMENT = 3
    """SEQUENCE { documentNumber PrintableString, expiresOn PrintableString YYYYMMDD }."""
    CHIP_KEY = 15
    """SubjectPublicKeyInfo of the chip's active-authentication key."""


REQUIRED_GROUPS = frozenset({DataGroup.HOLDER, DataGroup.FACE, DataGroup.DOCUMENT})


@dataclass(frozen=True)
class ChipRead:
    """What the user's app read from the chip (all of it untrusted until verified)."""

    data_groups: Mapping[int, bytes]
    security_object: bytes
    security_object_signature: bytes
    document_signer_certificate: bytes
    active_authentication_signature: bytes | None = None


# --- encoders (issuers, adapters and the development issuer use these) -----------------------


def _yyyymmdd(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def encode_holder_group(*, name: str, address: str, birth_date: date, sex: Sex | None) -> bytes:
    """DG1."""
    items = [
        der.encode_utf8(name),
        der.encode_utf8(address),
        der.encode_printable(_yyyymmdd(birth_date)),
    ]
    if sex is not None:
        items.append(der.encode(_SEX_TAG, _SEX_BY_VALUE[sex].encode("ascii")))
    return der.encode_sequence(*items)


def encode_face_group(image: bytes) -> bytes:
    """DG2."""
    return der.encode_octets(image)


def encode_document_group(*, number: str, expires_on: date) -> bytes:
    """DG3."""
    return der.encode_sequence(
        der.encode_printable(number), der.encode_printable(_yyyymmdd(expires_on))
    )


def encode_chip_key_group(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    """DG15."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def encode_security_object(
    groups: Mapping[int, bytes], algorithm: hashes.HashAlgorithm | None = None
) -> bytes:
    """The hash list the document signer signs."""
    algorithm = algorithm or hashes.SHA256()
    entries = [
        der.encode_sequence(
            der.encode_integer(number), der.encode_octets(der.digest(algorithm, data))
        )
        for number, data in sorted(groups.items())
    ]
    return der.encode_sequence(
        der.encode_integer(SECURITY_OBJECT_VERSION),
        der.encode_sequence(der.encode_oid(_HASH_OIDS[algorithm.name])),
        der.encode_sequence(*entries),
    )


def active_authentication_message(nonce: str) -> bytes:
    """The bytes the chip signs for ``nonce``."""
    return ACTIVE_AUTHENTICATION_DOMAIN + nonce.encode("utf-8")


# --- decoding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SecurityObject:
    algorithm: hashes.HashAlgorithm
    digests: dict[int, bytes] = field(default_factory=dict)


def _malformed(what: str, error: Exception | None = None) -> Refusal:
    detail = f": {error}" if error is not None else ""
    return Refusal(EkycFailure.DOCUMENT_MALFORMED, f"{what} is malformed{detail}")


def parse_security_object(data: bytes) -> _SecurityObject:
    """Version, hash algorithm and per-group hashes; refuses anything else."""
    try:
        version, algorithm_id, entries = der.decode_sequence(data)
        if der.decode_integer(version) != SECURITY_OBJECT_VERSION:
            raise der.DerError("unsupported version")
        oid = der.decode_oid(der.decode_items(der.expect(algorithm_id, der.SEQUENCE))[0])
        algorithm = _HASHES[oid.dotted_string]
        table: dict[int, bytes] = {}
        for entry in der.decode_items(der.expect(entries, der.SEQUENCE)):
            number_tlv, hash_tlv = der.decode_items(der.expect(entry, der.SEQUENCE))
            number = der.decode_integer(number_tlv)
            if number in table:
                raise der.DerError(f"data group {number} listed twice")
            table[number] = der.expect(hash_tlv, der.OCTET_STRING)
    except (der.DerError, ValueError, KeyError, IndexError) as error:
        raise _malformed("the security object", error) from None
    return _SecurityObject(algorithm, table)


def _string(tlv: der.Tlv, tag: int, label: str) -> str:
    content = der.expect(tlv, tag)
    try:
        return content.decode("utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise Refusal(
            EkycFailure.ATTRIBUTE_MALFORMED, f"{label} is not valid UTF-8: {error}"
        ) from None


def _date(text: str, label: str) -> date:
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError("not YYYYMMDD")
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as error:
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, f"{label} {text!r}: {error}") from None


def _holder(data: bytes) -> tuple[str, str, date, Sex | None]:
    try:
        items = der.decode_sequence(data)
        if len(items) not in (3, 4):
            raise der.DerError("DG1 has 3 or 4 elements")
        name = _string(items[0], der.UTF8_STRING, "name")
        address = _string(items[1], der.UTF8_STRING, "address")
        birth = _string(items[2], der.PRINTABLE_STRING, "birth date")
        sex_code = _string(items[3], _SEX_TAG, "sex") if len(items) == 4 else None
    except der.DerError as error:
        raise _malformed("DG1 (holder data)", error) from None
    if sex_code is not None and sex_code not in SEX_CODES:
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, f"sex code {sex_code!r} is not 1, 2 or 3")
    if not name.strip() or not address.strip():
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, "name or address is empty")
    sex = SEX_CODES[sex_code] if sex_code is not None else None
    return name, address, _date(birth, "birth date"), sex


def _document(data: bytes) -> tuple[str, date]:
    try:
        number_tlv, expiry_tlv = der.decode_sequence(data)
        number = _string(number_tlv, der.PRINTABLE_STRING, "document number")
        expiry = _string(expiry_tlv, der.PRINTABLE_STRING, "expiry date")
    except (der.DerError, ValueError) as error:
        raise _malformed("DG3 (document data)", error) from None
    return number, _date(expiry, "expiry date")


def _face(data: bytes) -> bytes:
    try:
        return der.expect(der.decode_single(data), der.OCTET_STRING)
    except der.DerError as error:
        raise _malformed("DG2 (face image)", error) from None


# --- checks ---------------------------------------------------------------------------------


def require_document_signer_key(
    certificate: x509.Certificate,
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """Document signers use RSA ≥ 2048 or ECDSA on P-256/P-384."""
    try:
        key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        key = None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= _MIN_RSA_BITS:
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_CURVES:
        return key
    raise Refusal(EkycFailure.UNSUPPORTED_KEY, "document signers must use RSA-2048+ or P-256/384")


def _hash_for(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC_CURVES[key.curve.name]
    return hashes.SHA256()


def require_intact_groups(chip: ChipRead, security_object: _SecurityObject) -> None:
    """Every group read must be signed and unchanged; every required group must be there."""
    for number, data in chip.data_groups.items():
        expected = security_object.digests.get(number)
        if expected is None:
            raise Refusal(EkycFailure.DATA_GROUP_TAMPERED, f"DG{number} is not in the signed list")
        if der.digest(security_object.algorithm, data) != expected:
            raise Refusal(
                EkycFailure.DATA_GROUP_TAMPERED, f"DG{number} differs from what was signed"
            )
    missing = sorted(int(group) for group in REQUIRED_GROUPS if group not in chip.data_groups)
    if missing:
        raise _malformed(f"the chip read (missing DG{missing})")


class IcChipVerifier:
    """Verifies issuer-signed IC-chip data, the chip's liveness proof and the selfie."""

    def __init__(
        self,
        *,
        trust_anchors: Sequence[x509.Certificate],
        revocation: RevocationChecker,
        nonces: NonceStore,
        face_matcher: FaceMatcher,
        intermediates: Sequence[x509.Certificate] = (),
        policy_oids: Collection[ObjectIdentifier] | None = None,
        face_match_threshold: float = DEFAULT_FACE_MATCH_THRESHOLD,
        require_active_authentication: bool = False,
    ) -> None:
        if not 0.0 < face_match_threshold <= 1.0:
            raise ValueError("the face-match threshold must be in (0, 1]")
        self._chain = ChainValidator(trust_anchors=trust_anchors, intermediates=intermediates)
        self._policy_oids = frozenset(policy_oids) if policy_oids else None
        self._revocation = revocation
        self._nonces = nonces
        self._face_matcher = face_matcher
        self._threshold = face_match_threshold
        self._require_active_authentication = require_active_authentication

    def verify(self, *, chip: ChipRead, selfie: bytes, nonce: str, now: datetime) -> EkycResult:
        """Verify one attempt; never raises on bad input, returns the full record."""
        require_aware(now)
        record = VerificationRecord(
            EkycMethod.IC_CHIP,
            chip.document_signer_certificate,
            nonce,
            chip.security_object_signature,
            now,
        )
        try:
            attributes = self._run(record, chip, selfie, nonce, now)
        except Refusal as refusal:
            return record.refused(refusal)
        return record.accepted(attributes, "verified by IC chip and selfie")

    def _run(
        self, record: VerificationRecord, chip: ChipRead, selfie: bytes, nonce: str, now: datetime
    ) -> VerifiedAttributes:
        consume_nonce(self._nonces, nonce, now)
        chain = self._verify_signer(record, chip, now)
        security_object = parse_security_object(chip.security_object)
        require_intact_groups(chip, security_object)
        attributes = self._attributes(chip, now)
        self._require_chip_authentication(chip, security_object, nonce)
        record.revocation = require_not_revoked(chain, self._revocation, now)
        record.face_match_score = self._require_face_match(
            _face(chip.data_groups[DataGroup.FACE]), selfie
        )
        return attributes

    def _verify_signer(
        self, record: VerificationRecord, chip: ChipRead, now: datetime
    ) -> list[x509.Certificate]:
        certificate = load_certificate(chip.document_signer_certificate)
        record.note_certificate(certificate)
        key = require_document_signer_key(certificate)
        require_valid_period(certificate, now)
        chain = self._chain.validate(certificate, now)
        if self._policy_oids is not None:
            require_policy(certificate, self._policy_oids)
        require_signing_end_entity(certificate)
        if not verify_signature(
            key, chip.security_object_signature, chip.security_object, _hash_for(key)
        ):
            raise Refusal(
                EkycFailure.SIGNATURE_INVALID, "the security object's signature does not verify"
            )
        return chain

    def _attributes(self, chip: ChipRead, now: datetime) -> VerifiedAttributes:
        name, address, birth_date, sex = _holder(chip.data_groups[DataGroup.HOLDER])
        number, expires_on = _document(chip.data_groups[DataGroup.DOCUMENT])
        if expires_on < now.astimezone(JST).date():
            raise Refusal(EkycFailure.DOCUMENT_EXPIRED, f"the ID card expired on {expires_on}")
        return VerifiedAttributes(
            name=name,
            address=address,
            birth_date=birth_date,
            sex=sex,
            document_number=number,
            document_expires_on=expires_on,
        )

    def _require_chip_authentication(
        self, chip: ChipRead, security_object: _SecurityObject, nonce: str
    ) -> None:
        signed_key = DataGroup.CHIP_KEY in security_object.digests
        if not signed_key:
            if self._require_active_authentication:
                raise Refusal(EkycFailure.CHIP_NOT_AUTHENTICATED, "the chip has no AA key")
            return
        if DataGroup.CHIP_KEY not in chip.data_groups:
            raise Refusal(EkycFailure.CHIP_NOT_AUTHENTICATED, "DG15 is signed but was not sent")
        signature = chip.active_authentication_signature
        key = _chip_key(chip.data_groups[DataGroup.CHIP_KEY])
        if signature is None or not verify_signature(
            key, signature, active_authentication_message(nonce), _hash_for(key)
        ):
            raise Refusal(EkycFailure.CHIP_NOT_AUTHENTICATED, "the chip did not sign this nonce")

    def _require_face_match(self, reference: bytes, selfie: bytes) -> float:
        match = self._compare_faces(reference, selfie)
        if not match.live:
            raise Refusal(EkycFailure.FACE_MISMATCH, "the selfie did not pass the liveness check")
        if match.score < self._threshold:
            raise Refusal(
                EkycFailure.FACE_MISMATCH,
                f"the selfie does not match the chip photo (score {match.score:.2f})",
            )
        return match.score

    def _compare_faces(self, reference: bytes, selfie: bytes) -> FaceMatch:
        # The matcher is a third-party provider behind a Protocol; whatever it raises, the
        # only safe outcome is a refusal, so the catch is deliberately broad.
        try:
            return self._face_matcher.compare(reference=reference, selfie=selfie)
        except Exception as error:
            raise Refusal(
                EkycFailure.FACE_CHECK_UNAVAILABLE, f"the face-match provider failed: {error!r}"
            ) from None


def _chip_key(data: bytes) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise Refusal(EkycFailure.DOCUMENT_MALFORMED, "DG15 is not a public key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= _MIN_RSA_BITS:
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_CURVES:
        return key
    raise Refusal(EkycFailure.CHIP_NOT_AUTHENTICATED, "the chip key type is not supported")
