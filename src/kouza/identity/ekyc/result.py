"""What an eKYC verification returns: a complete, storable record, never an exception.

Verifiers take input that came from a user's device (a certificate, a signature, chip data, a
selfie) and must not raise on any of it. They return an :class:`EkycResult` that is either
``ok`` with :class:`VerifiedAttributes`, or refused with one machine-readable
:class:`EkycFailure` and a human message. Either way the result carries what the caller must
keep as the verification record (犯収法 requires the record of how identity was verified): the
certificate, its serial and issuer, the nonce, the signature, the revocation answer and the
time of the check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from kouza.identity.ekyc.revocation import RevocationStatus


class EkycMethod(StrEnum):
    """Which 犯収法施行規則 6条1項1号 method produced the result."""

    JPKI = "jpki"
    """(ワ) signature by the My Number card's JPKI signing key over a server nonce."""
    IC_CHIP = "ic_chip"
    """(へ) issuer-signed data read from an ID card's IC chip, plus a selfie."""


class Sex(StrEnum):
    """Sex as recorded by the issuer (JPKI codes 1, 2, 3)."""

    MALE = "male"
    """JPKI code 1 (男)."""
    FEMALE = "female"
    """JPKI code 2 (女)."""
    NOT_KNOWN = "not_known"
    """JPKI code 3 (不明)."""


class EkycFailure(StrEnum):
    """Why a verification was refused. Stable values: stored and shown to operators."""

    NONCE_UNKNOWN = "nonce_unknown"
    """The nonce was never issued by this server (or is long gone)."""
    NONCE_EXPIRED = "nonce_expired"
    """The nonce was issued but its time to live had passed before it was used."""
    NONCE_REPLAYED = "nonce_replayed"
    """The nonce was already used by an earlier attempt: a replay."""
    CERTIFICATE_MALFORMED = "certificate_malformed"
    """The certificate is neither DER nor PEM, or one of its extensions does not parse."""
    UNSUPPORTED_KEY = "unsupported_key"
    """The certificate's key type or size is not one this method accepts."""
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    """The check time is before the certificate's notBefore."""
    CERTIFICATE_EXPIRED = "certificate_expired"
    """The check time is after the certificate's notAfter."""
    CHAIN_UNTRUSTED = "chain_untrusted"
    """No valid path from the certificate to a pinned trust anchor."""
    POLICY_MISMATCH = "policy_mismatch"
    """The certificate does not assert a required certificate policy."""
    KEY_USAGE_INVALID = "key_usage_invalid"
    """The certificate may not sign (key usage) or is a CA certificate."""
    SIGNATURE_INVALID = "signature_invalid"
    """The signature does not verify over the expected data (e.g. another nonce)."""
    CERTIFICATE_REVOKED = "certificate_revoked"
    """A certificate in the chain is revoked."""
    REVOCATION_UNKNOWN = "revocation_unknown"
    """Revocation status could not be established (stale CRL, responder down): fail closed."""
    ATTRIBUTE_MISSING = "attribute_missing"
    """A required identity attribute (name, address, birth date, sex) is absent."""
    ATTRIBUTE_MALFORMED = "attribute_malformed"
    """An identity attribute is present but badly encoded (broken UTF-8, bad date, bad code)."""
    DOCUMENT_MALFORMED = "document_malformed"
    """IC chip: the security object or a data group does not parse, or a group is missing."""
    DATA_GROUP_TAMPERED = "data_group_tampered"
    """IC chip: a data group's hash differs from the one the issuer signed."""
    DOCUMENT_EXPIRED = "document_expired"
    """IC chip: the ID card itself is past its expiry date."""
    CHIP_NOT_AUTHENTICATED = "chip_not_authenticated"
    """IC chip: active authentication over the nonce is missing or invalid (cloned data)."""
    FACE_MISMATCH = "face_mismatch"
    """IC chip: the selfie does not match the chip's face image, or is not live."""
    FACE_CHECK_UNAVAILABLE = "face_check_unavailable"
    """IC chip: the face-match provider failed to answer: fail closed."""


@dataclass(frozen=True)
class VerifiedAttributes:
    """Identity attributes proven by an issuer's signature."""

    name: str
    """As the issuer recorded it; JPKI separates family and given name with U+3000."""
    address: str
    birth_date: date
    sex: Sex | None
    """None when the document does not record sex (e.g. a driving licence)."""
    contains_substitute_characters: bool = False
    """JPKI: the issuer replaced a character it could not encode (外字) in name or address,
    so an exact name match against another record may fail and needs a person."""
    document_number: str | None = None
    document_expires_on: date | None = None


@dataclass(frozen=True)
class EkycResult:
    """The outcome of one verification attempt, complete enough to store as the record."""

    ok: bool
    failure: EkycFailure | None
    message: str
    attributes: VerifiedAttributes | None
    method: EkycMethod
    certificate_der: bytes
    """The DER certificate (JPKI signing / IC document signer), or the raw bytes submitted
    when they did not parse."""
    certificate_serial: int | None
    issuer: str | None
    """The certificate's issuer as an RFC 4514 string."""
    checked_at: datetime
    nonce: str
    signature: bytes
    revocation: RevocationStatus | None = None
    face_match_score: float | None = None

    def __post_init__(self) -> None:
        if self.ok != (self.failure is None) or self.ok != (self.attributes is not None):
            raise ValueError("an ok result has attributes and no failure, and vice versa")
