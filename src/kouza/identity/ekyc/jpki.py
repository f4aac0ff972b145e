"""eKYC method (ワ): the My Number card's JPKI signing certificate signs a server nonce.

Flow: the server issues a nonce (:class:`~kouza.identity.ekyc.nonces.NonceStore`); the user's
app reads the signing certificate (署名用電子証明書) from the card and has the card sign
:func:`challenge_message` with the signing key after the user enters the signing password;
the server calls :meth:`JpkiVerifier.verify`.

What the verifier proves, in order (each failure has its own :class:`EkycFailure`):

1. the nonce was issued here, is fresh and unused (it is consumed whatever happens next);
2. the certificate parses (DER or PEM) and has an RSA key of 2048–4096 bits;
3. it is inside its validity period at ``now``;
4. it chains to one of the pinned trust anchors (signature, validity and CA constraints of
   every link, by ``cryptography``'s RFC 5280 path builder);
5. it asserts an accepted certificate policy (the J-LIS signing policy in production);
6. it is an end-entity certificate allowed to make digital signatures;
7. the signature over :func:`challenge_message` of *this* nonce verifies (PKCS#1 v1.5, SHA-256,
   which is what the card computes);
8. the four attributes (name, sex, birth date, address) are present exactly once in the
   subjectAltName ``otherName`` fields of arc 1.2.392.200149.8.5.5 and decode;
9. neither the certificate nor any CA below the anchor is revoked (fail closed on unknown).

The J-LIS profile details (OIDs, value encodings, era-prefixed birth date, sex codes) and how
sure we are of each are in ``docs/ekyc.md``. The verifier knows nothing of the development CA:
trust anchors, policy OIDs, the revocation checker and the clock all come from the caller.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence
from datetime import date, datetime
from enum import IntEnum

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ObjectIdentifier

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
from kouza.identity.ekyc.revocation import RevocationChecker

PERSONAL_DATA_ARC = "1.2.392.200149.8.5.5"
OID_NAME = ObjectIdentifier(f"{PERSONAL_DATA_ARC}.1")
OID_NAME_SUBSTITUTES = ObjectIdentifier(f"{PERSONAL_DATA_ARC}.2")
OID_SEX = ObjectIdentifier(f"{PERSONAL_DATA_ARC}.3")
OID_BIRTH_DATE = ObjectIdentifier(f"{PERSONAL_DATA_ARC}.4")
OID_ADDRESS = ObjectIdentifier(f"{PERSONAL_DATA_ARC}.5")
OID_ADDRESS_SUBSTITUTES = ObjectIdentifier(f"{PERSONAL_DATA_ARC}.6")

JPKI_SIGNING_POLICY_OID = ObjectIdentifier("1.2.392.200149.8.5.1.1.20")
"""署名用電子証明書 on the physical card (J-LIS profile; see docs/ekyc.md for the evidence)."""
JPKI_SIGNING_POLICY_OIDS: frozenset[ObjectIdentifier] = frozenset({JPKI_SIGNING_POLICY_OID})

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096
CHALLENGE_DOMAIN = b"kouza eKYC JPKI challenge v1\x00"
"""Prefix of what the card signs, so a signature made here can never be passed off as a
signature over a document (the signing key's legal use) or over another protocol's data."""

SEX_CODES = {"1": Sex.MALE, "2": Sex.FEMALE, "3": Sex.NOT_KNOWN}
_REQUIRED = {OID_NAME: "name", OID_SEX: "sex", OID_BIRTH_DATE: "birth date", OID_ADDRESS: "address"}


class Era(IntEnum):
    """First digit of the JPKI birth date (元号区分); the other eight digits are Gregorian."""

    NOT_KNOWN = 0
    MEIJI = 1
    TAISHO = 2
    SHOWA = 3
    HEISEI = 4
    REIWA = 5


_ERA_STARTS = (
    (date(2019, 5, 1), Era.REIWA),
    (date(1989, 1, 8), Era.HEISEI),
    (date(1926, 12, 25), Era.SHOWA),
    (date(1912, 7, 30), Era.TAISHO),
    (date(1868, 10, 23), Era.MEIJI),
)


def era_of(day: date) -> Era:
    """The Japanese era a Gregorian date falls in (NOT_KNOWN before Meiji)."""
    return next((era for start, era in _ERA_STARTS if day >= start), Era.NOT_KNOWN)


def encode_birth_date(day: date) -> str:
    """``EYYYYMMDD`` as the J-LIS profile writes it."""
    return f"{era_of(day).value}{day.year:04d}{day.month:02d}{day.day:02d}"


def parse_birth_date(value: str) -> date:
    """Read ``EYYYYMMDD``; a partial date (``00`` month or day) is refused, not guessed."""
    if len(value) != 9 or not value.isascii() or not value.isdigit() or int(value[0]) > 5:
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, f"birth date {value!r} is not EYYYYMMDD")
    try:
        return date(int(value[1:5]), int(value[5:7]), int(value[7:9]))
    except ValueError:
        raise Refusal(
            EkycFailure.ATTRIBUTE_MALFORMED,
            f"birth date {value!r} is not a complete calendar date; needs a person to review",
        ) from None


def challenge_message(nonce: str) -> bytes:
    """The bytes the card signs for ``nonce``."""
    return CHALLENGE_DOMAIN + nonce.encode("utf-8")


# --- subjectAltName attributes ---------------------------------------------------------------


def read_attributes(certificate: x509.Certificate) -> VerifiedAttributes:
    """Name, address, birth date and sex from the JPKI otherName fields."""
    values = _personal_data(certificate)
    missing = [label for oid, label in _REQUIRED.items() if oid not in values]
    if missing:
        raise Refusal(EkycFailure.ATTRIBUTE_MISSING, f"missing in the certificate: {missing}")
    sex_code = _text(values[OID_SEX], "sex", ascii_only=True)
    if sex_code not in SEX_CODES:
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, f"sex code {sex_code!r} is not 1, 2 or 3")
    return VerifiedAttributes(
        name=_display_text(values[OID_NAME], "name"),
        address=_display_text(values[OID_ADDRESS], "address"),
        birth_date=parse_birth_date(_text(values[OID_BIRTH_DATE], "birth date", ascii_only=True)),
        sex=SEX_CODES[sex_code],
        contains_substitute_characters=_has_substitutes(values),
    )


def _personal_data(certificate: x509.Certificate) -> dict[ObjectIdentifier, bytes]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise Refusal(
            EkycFailure.ATTRIBUTE_MISSING, "the certificate has no subjectAltName"
        ) from None
    values: dict[ObjectIdentifier, bytes] = {}
    for other in san.get_values_for_type(x509.OtherName):
        if not other.type_id.dotted_string.startswith(PERSONAL_DATA_ARC + "."):
            continue
        if other.type_id in values:
            raise Refusal(
                EkycFailure.ATTRIBUTE_MALFORMED, f"{other.type_id.dotted_string} appears twice"
            )
        values[other.type_id] = other.value
    return values


def _text(value: bytes, label: str, *, ascii_only: bool = False) -> str:
    # The profile uses UTF8String; PrintableString is tolerated for the digit-only fields in
    # case a CA generation encoded them that way (see docs/ekyc.md, "uncertain").
    allowed: tuple[type[core.AbstractString], ...] = (
        (core.UTF8String, core.PrintableString) if ascii_only else (core.UTF8String,)
    )
    try:
        parsed = core.load(value, strict=True)
        if type(parsed) not in allowed:
            raise ValueError(f"unexpected string type {type(parsed).__name__}")
        return str(parsed.native)
    except (ValueError, TypeError, UnicodeDecodeError) as error:
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, f"{label} is malformed: {error}") from None


def _display_text(value: bytes, label: str) -> str:
    text = _text(value, label)
    if not text.strip() or any(unicodedata.category(char) == "Cc" for char in text):
        raise Refusal(EkycFailure.ATTRIBUTE_MALFORMED, f"{label} is empty or has control codes")
    return text


def _has_substitutes(values: dict[ObjectIdentifier, bytes]) -> bool:
    # One digit per character, "1" where J-LIS put a substitute for a character outside its
    # repertoire (外字). Optional and informational: absent or unreadable means "not flagged".
    for oid in (OID_NAME_SUBSTITUTES, OID_ADDRESS_SUBSTITUTES):
        if oid not in values:
            continue
        try:
            flags = _text(values[oid], "substitute positions", ascii_only=True)
        except Refusal:
            continue
        if flags.strip("0"):
            return True
    return False


# --- the verifier ---------------------------------------------------------------------------


def require_card_key(certificate: x509.Certificate) -> rsa.RSAPublicKey:
    """The card's key: RSA, 2048–4096 bits. EC, DSA and EdDSA keys are refused."""
    try:
        key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        kind = type(key).__name__ if key is not None else "an unknown algorithm"
        raise Refusal(EkycFailure.UNSUPPORTED_KEY, f"JPKI keys are RSA; this one is {kind}")
    if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise Refusal(
            EkycFailure.UNSUPPORTED_KEY,
            f"RSA-{key.key_size} is outside the accepted {MIN_RSA_BITS}–{MAX_RSA_BITS} bits",
        )
    return key


def require_card_signature(key: rsa.RSAPublicKey, signature: bytes, nonce: str) -> None:
    """Refuse unless ``signature`` is the card's PKCS#1 v1.5 SHA-256 signature of the nonce."""
    try:
        key.verify(signature, challenge_message(nonce), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise Refusal(
            EkycFailure.SIGNATURE_INVALID, "the signature does not verify over this nonce"
        ) from None


class JpkiVerifier:
    """Verifies a JPKI signing certificate and the card's signature over a server nonce."""

    def __init__(
        self,
        *,
        trust_anchors: Sequence[x509.Certificate],
        policy_oids: Collection[ObjectIdentifier],
        revocation: RevocationChecker,
        nonces: NonceStore,
        intermediates: Sequence[x509.Certificate] = (),
    ) -> None:
        if not policy_oids:
            raise ValueError("at least one accepted certificate policy is required")
        self._chain = ChainValidator(trust_anchors=trust_anchors, intermediates=intermediates)
        self._policy_oids = frozenset(policy_oids)
        self._revocation = revocation
        self._nonces = nonces

    def verify(
        self, *, certificate: bytes, signature: bytes, nonce: str, now: datetime
    ) -> EkycResult:
        """Verify one attempt; never raises on bad input, returns the full record."""
        require_aware(now)
        record = VerificationRecord(EkycMethod.JPKI, certificate, nonce, signature, now)
        try:
            attributes = self._run(record, certificate, signature, nonce, now)
        except Refusal as refusal:
            return record.refused(refusal)
        return record.accepted(attributes, "verified by JPKI signing certificate")

    def _run(
        self,
        record: VerificationRecord,
        certificate_bytes: bytes,
        signature: bytes,
        nonce: str,
        now: datetime,
    ) -> VerifiedAttributes:
        consume_nonce(self._nonces, nonce, now)
        certificate = load_certificate(certificate_bytes)
        record.note_certificate(certificate)
        key = require_card_key(certificate)
        require_valid_period(certificate, now)
        chain = self._chain.validate(certificate, now)
        require_policy(certificate, self._policy_oids)
        require_signing_end_entity(certificate)
        require_card_signature(key, signature, nonce)
        attributes = read_attributes(certificate)
        # Revocation last: it is the only network call, and it is pointless for input that
        # is already refused.
        record.revocation = require_not_revoked(chain, self._revocation, now)
        return attributes
