"""eKYC method (へ): issuer-signed data read from an ID card's IC chip, plus a selfie.

The chip data is structured as ICAO 9303 (part 10 and 11) lays out an eMRTD's logical data
structure, the scheme e-passports are built on, and verified by passive authentication:

- the chip holds **data groups**, each an application-tagged DER file (DG1 holder data, DG2 face
  image, DG3 document data, optional DG15 chip public key; :class:`DataGroup`);
- **EF.SOD** (tag 0x77) holds a CMS ``SignedData`` (RFC 5652) whose encapsulated content, of
  type ``id-icao-mrtd-security-ldsSecurityObject``, is the ``LDSSecurityObject``: version, hash
  algorithm and the ``dataGroupHashValues`` (group number, hash) of every group on the chip;
- the SignedData carries the **document signer** certificate and one SignerInfo with signed
  attributes (content type and message digest, as ICAO requires); the certificate must chain to
  the pinned issuer root (ICAO's CSCA).

Parsing is asn1crypto's (CMS, X.509 and algorithm identifiers) with the ICAO types declared
below; signatures and chains are checked with ``cryptography``. The Japanese cards' own data is
not ICAO's: the My Number card's 券面事項入力補助AP holds name, address, birth date and sex
as separate records. kouza keeps exactly the fields it needs in ICAO-like groups (the mapping
is in ADR 0023), so an adapter for a real card re-packs what it read and an issuer's
document-signer signature still covers every byte.

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
from typing import Any, ClassVar

from asn1crypto import algos, cms, core, parser
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ObjectIdentifier

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
LDS_SECURITY_OBJECT_OID = "2.23.136.1.1.1"
"""id-icao-mrtd-security-ldsSecurityObject (ICAO 9303-10 §4.6.2)."""
EF_SOD_TAG = 23
"""EF.SOD is [APPLICATION 23] (0x77) around the CMS ContentInfo."""
DEFAULT_FACE_MATCH_THRESHOLD = 0.8
_SEX_BY_VALUE = {sex: code for code, sex in SEX_CODES.items()}
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_EC_CURVES: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
}
_MIN_RSA_BITS = 2048
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)


class DataGroup(IntEnum):
    """Data-group numbers (ICAO numbering where the content corresponds)."""

    HOLDER = 1
    """[APPLICATION 1] SEQUENCE { name UTF8String, address UTF8String, birthDate
    PrintableString YYYYMMDD, sex [0] IMPLICIT PrintableString OPTIONAL -- JPKI codes }."""
    FACE = 2
    """[APPLICATION 21] OCTET STRING: the face image (JPEG/JPEG 2000/PNG bytes)."""
    DOCUMENT = 3
    """[APPLICATION 3] SEQUENCE { documentNumber PrintableString, expiresOn YYYYMMDD }."""
    CHIP_KEY = 15
    """[APPLICATION 15] SubjectPublicKeyInfo of the chip's active-authentication key."""


REQUIRED_GROUPS = frozenset({DataGroup.HOLDER, DataGroup.FACE, DataGroup.DOCUMENT})


# --- ASN.1 types (ICAO 9303-10 §4.6.2 and kouza's data groups) -------------------------------


class DataGroupHash(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class LdsSecurityObject(core.Sequence):
    """ICAO's LDSSecurityObject (v0; v1 adds ldsVersionInfo)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


class HolderGroup(core.Sequence):
    explicit = (1, 1)
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("name", core.UTF8String),
        ("address", core.UTF8String),
        ("birth_date", core.PrintableString),
        ("sex", core.PrintableString, {"implicit": 0, "optional": True}),
    ]


class FaceGroup(core.OctetString):
    explicit = (1, 21)


class DocumentGroup(core.Sequence):
    explicit = (1, 3)
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("document_number", core.PrintableString),
        ("expires_on", core.PrintableString),
    ]


@dataclass(frozen=True)
class ChipRead:
    """What the user's app read from the chip (all of it untrusted until verified)."""

    data_groups: Mapping[int, bytes]
    sod: bytes
    """EF.SOD as read: [APPLICATION 23] { ContentInfo (SignedData) }."""
    active_authentication_signature: bytes | None = None


# --- encoders (issuers, adapters and the development issuer use these) -----------------------


def _yyyymmdd(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def encode_holder_group(*, name: str, address: str, birth_date: date, sex: Sex | None) -> bytes:
    """DG1."""
    values: dict[str, Any] = {"name": name, "address": address, "birth_date": _yyyymmdd(birth_date)}
    if sex is not None:
        values["sex"] = _SEX_BY_VALUE[sex]
    return bytes(HolderGroup(values).dump())


def encode_face_group(image: bytes) -> bytes:
    """DG2."""
    return bytes(FaceGroup(image).dump())


def encode_document_group(*, number: str, expires_on: date) -> bytes:
    """DG3."""
    return bytes(
        DocumentGroup({"document_number": number, "expires_on": _yyyymmdd(expires_on)}).dump()
    )


def encode_chip_key_group(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    """DG15."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _application(DataGroup.CHIP_KEY, spki)


def encode_lds_security_object(
    groups: Mapping[int, bytes], algorithm: hashes.HashAlgorithm | None = None
) -> bytes:
    """The LDSSecurityObject listing the hash of every group (the SignedData's content)."""
    algorithm = algorithm or hashes.SHA256()
    entries = [
        {"data_group_number": number, "data_group_hash_value": _digest(algorithm, data)}
        for number, data in sorted(groups.items())
    ]
    return bytes(
        LdsSecurityObject(
            {
                "version": 0,
                "hash_algorithm": {"algorithm": algorithm.name},
                "data_group_hash_values": entries,
            }
        ).dump()
    )


def wrap_sod(content_info: bytes) -> bytes:
    """EF.SOD: [APPLICATION 23] around the DER ContentInfo."""
    return _application(EF_SOD_TAG, content_info)


def active_authentication_message(nonce: str) -> bytes:
    """The bytes the chip signs for ``nonce``."""
    return ACTIVE_AUTHENTICATION_DOMAIN + nonce.encode("utf-8")


def _application(tag: int, content: bytes) -> bytes:
    """[APPLICATION tag] constructed around ``content`` (DER)."""
    return bytes(parser.emit(1, 1, tag, content))


def _unwrap_application(tag: int, data: bytes) -> bytes:
    """The content of an [APPLICATION tag] file; ValueError for anything else."""
    class_, method, found, _, content, _ = parser.parse(data, strict=True)
    if (class_, method, found) != (1, 1, tag):
        raise ValueError(f"expected a constructed [APPLICATION {tag}] element")
    return bytes(content)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize()


# --- decoding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecurityObject:
    """EF.SOD, parsed: the signed hash list, the signer, and what its signature covers."""

    algorithm: hashes.HashAlgorithm
    digests: dict[int, bytes] = field(default_factory=dict)
    signer_certificate: bytes = b""
    signer_info: cms.SignerInfo | None = None
    encapsulated: bytes = b""


def _malformed(what: str, error: Exception | None = None) -> Refusal:
    detail = f": {error}" if error is not None else ""
    return Refusal(EkycFailure.DOCUMENT_MALFORMED, f"{what} is malformed{detail}")


def parse_sod(data: bytes) -> SecurityObject:
    """EF.SOD → SignedData → LDSSecurityObject; refuses any other shape."""
    try:
        info = cms.ContentInfo.load(_unwrap_application(EF_SOD_TAG, data), strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError("the ContentInfo is not SignedData")
        signed = info["content"]
        encapsulated = signed["encap_content_info"]
        if encapsulated["content_type"].dotted != LDS_SECURITY_OBJECT_OID:
            raise ValueError("the content is not an LDSSecurityObject")
        content = bytes(encapsulated["content"].contents)
        certificates = [choice.chosen for choice in signed["certificates"]]
        signer_infos = list(signed["signer_infos"])
        if len(certificates) != 1 or len(signer_infos) != 1:
            raise ValueError("one document-signer certificate and one SignerInfo expected")
        digests, algorithm = _hash_table(content)
        return SecurityObject(
            algorithm, digests, bytes(certificates[0].dump()), signer_infos[0], content
        )
    except Refusal:
        raise
    except _PARSE_ERRORS as error:
        raise _malformed("EF.SOD", error) from None


def _hash_table(content: bytes) -> tuple[dict[int, bytes], hashes.HashAlgorithm]:
    lds = LdsSecurityObject.load(content, strict=True)
    if lds["version"].native not in (0, 1):
        raise ValueError("unsupported LDSSecurityObject version")
    algorithm = _HASHES[lds["hash_algorithm"]["algorithm"].native]
    table: dict[int, bytes] = {}
    for entry in lds["data_group_hash_values"]:
        number = int(entry["data_group_number"].native)
        if number in table:
            raise ValueError(f"data group {number} listed twice")
        table[number] = bytes(entry["data_group_hash_value"].native)
    return table, algorithm


def _date(text: str, label: str) -> date:
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError("not YYYYMMDD")
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as error:
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, f"{label} {text!r}: {error}") from None


def _holder(data: bytes) -> tuple[str, str, date, Sex | None]:
    try:
        values = HolderGroup.load(data, strict=True).native
    except UnicodeDecodeError as error:
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, f"DG1 is not valid UTF-8: {error}") from None
    except _PARSE_ERRORS as error:
        raise _malformed("DG1 (holder data)", error) from None
    name, address, sex_code = values["name"], values["address"], values["sex"]
    if sex_code is not None and sex_code not in SEX_CODES:
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, f"sex code {sex_code!r} is not 1, 2 or 3")
    if not name.strip() or not address.strip():
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, "name or address is empty")
    sex = SEX_CODES[sex_code] if sex_code is not None else None
    return name, address, _date(values["birth_date"], "birth date"), sex


def _document(data: bytes) -> tuple[str, date]:
    try:
        values = DocumentGroup.load(data, strict=True).native
    except (*_PARSE_ERRORS, UnicodeDecodeError) as error:
        raise _malformed("DG3 (document data)", error) from None
    return values["document_number"], _date(values["expires_on"], "expiry date")


def _face(data: bytes) -> bytes:
    try:
        return bytes(FaceGroup.load(data, strict=True).native)
    except _PARSE_ERRORS as error:
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


def require_signed_by(
    sod: SecurityObject,
    certificate: x509.Certificate,
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
) -> None:
    """The SignerInfo names ``certificate``, its signed attributes bind the LDSSecurityObject,
    and its signature over them verifies with ``key``."""
    signer = sod.signer_info
    assert signer is not None
    invalid = Refusal(EkycFailure.SIGNATURE_INVALID, "EF.SOD's signature does not verify")
    try:
        if not _names_certificate(signer["sid"], certificate):
            raise Refusal(
                EkycFailure.SIGNATURE_INVALID,
                "the SignerInfo does not name the document-signer certificate",
            )
        digest_algorithm = _HASHES[signer["digest_algorithm"]["algorithm"].native]
        attributes = signer["signed_attrs"]
        if not attributes:
            raise Refusal(EkycFailure.SIGNATURE_INVALID, "EF.SOD has no signed attributes")
        values = {attribute["type"].native: list(attribute["values"]) for attribute in attributes}
        content_types, digests = values.get("content_type", []), values.get("message_digest", [])
        if len(content_types) != 1 or content_types[0].dotted != LDS_SECURITY_OBJECT_OID:
            raise invalid
        if len(digests) != 1 or digests[0].native != _digest(digest_algorithm, sod.encapsulated):
            raise Refusal(
                EkycFailure.SIGNATURE_INVALID, "EF.SOD's message digest differs from its content"
            )
        signed_bytes = b"\x31" + bytes(attributes.dump())[1:]  # DER of the SET OF, as signed
        signature = bytes(signer["signature"].native)
        algorithm = signer["signature_algorithm"]
        hash_algorithm = _HASHES.get(algorithm.hash_algo) if algorithm.hash_algo else None
        expected = "ecdsa" if isinstance(key, ec.EllipticCurvePublicKey) else "rsassa_pkcs1v15"
    except Refusal:
        raise
    except _PARSE_ERRORS as error:
        raise _malformed("EF.SOD's SignerInfo", error) from None
    if algorithm.signature_algo != expected or hash_algorithm is None:
        raise Refusal(
            EkycFailure.SIGNATURE_INVALID,
            "the signature algorithm does not fit the document signer's key",
        )
    if not verify_signature(key, signature, signed_bytes, hash_algorithm):
        raise invalid


def _names_certificate(sid: cms.SignerIdentifier, certificate: x509.Certificate) -> bool:
    if sid.name == "issuer_and_serial_number":
        chosen = sid.chosen
        return bool(
            chosen["serial_number"].native == certificate.serial_number
            and chosen["issuer"].dump() == certificate.issuer.public_bytes()
        )
    try:
        key_id = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return False
    return bool(sid.chosen.native == key_id.value.digest)


def require_intact_groups(chip: ChipRead, sod: SecurityObject) -> None:
    """Every group read must be signed and unchanged; every required group must be there."""
    for number, data in chip.data_groups.items():
        expected = sod.digests.get(number)
        if expected is None:
            raise Refusal(EkycFailure.DATA_GROUP_TAMPERED, f"DG{number} is not in the signed list")
        if _digest(sod.algorithm, data) != expected:
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
        # the record keeps the whole EF.SOD: it is the issuer's signed statement
        record = VerificationRecord(EkycMethod.IC_CHIP, b"", nonce, chip.sod, now)
        try:
            attributes = self._run(record, chip, selfie, nonce, now)
        except Refusal as refusal:
            return record.refused(refusal)
        return record.accepted(attributes, "verified by IC chip and selfie")

    def _run(
        self, record: VerificationRecord, chip: ChipRead, selfie: bytes, nonce: str, now: datetime
    ) -> VerifiedAttributes:
        consume_nonce(self._nonces, nonce, now)
        sod = parse_sod(chip.sod)
        record.certificate_der = sod.signer_certificate
        chain = self._verify_signer(record, sod, now)
        require_intact_groups(chip, sod)
        attributes = self._attributes(chip, now)
        self._require_chip_authentication(chip, sod, nonce)
        record.revocation = require_not_revoked(chain, self._revocation, now)
        record.face_match_score = self._require_face_match(
            _face(chip.data_groups[DataGroup.FACE]), selfie
        )
        return attributes

    def _verify_signer(
        self, record: VerificationRecord, sod: SecurityObject, now: datetime
    ) -> list[x509.Certificate]:
        certificate = load_certificate(sod.signer_certificate)
        record.note_certificate(certificate)
        key = require_document_signer_key(certificate)
        require_valid_period(certificate, now)
        chain = self._chain.validate(certificate, now)
        if self._policy_oids is not None:
            require_policy(certificate, self._policy_oids)
        require_signing_end_entity(certificate)
        require_signed_by(sod, certificate, key)
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

    def _require_chip_authentication(self, chip: ChipRead, sod: SecurityObject, nonce: str) -> None:
        signed_key = DataGroup.CHIP_KEY in sod.digests
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
        key = serialization.load_der_public_key(_unwrap_application(DataGroup.CHIP_KEY, data))
    except (*_PARSE_ERRORS, UnsupportedAlgorithm):
        raise Refusal(EkycFailure.DOCUMENT_MALFORMED, "DG15 is not a public key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= _MIN_RSA_BITS:
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_CURVES:
        return key
    raise Refusal(EkycFailure.CHIP_NOT_AUTHENTICATED, "the chip key type is not supported")
