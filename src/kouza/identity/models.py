"""Users, their credentials, phones, devices, eKYC records and re-verification campaigns.

A user signs up with an e-mail address and a password (argon2id hash); the address is verified
with a six-digit code (stored as a keyed hash, attempt-limited, expiring). Login returns an
opaque bearer token whose keyed hash is stored, so a leaked table yields no usable token.
``level`` is the verification level that gates what the user's wallet may do (DESIGN.md).

Above that: a verified phone (``user_phones``, one per user; ``phone_numbers`` is the row every
claim on a number locks), SMS codes (``otp_challenges``, phone verification and step-up),
sliding-window rate limits (``rate_limit_hits``), device public keys and their single-use
challenges (``devices``, ``device_challenges``), eKYC nonces and the record of every attempt
(``ekyc_nonces``, ``ekyc_verifications``), what eKYC proved (``verified_identities``), and
operators' re-verification campaigns with each user's status in them, device-signed contact
changes (``contact_changes``), revocation re-checks (``ekyc_rechecks``) and the rows rate-limit
keys lock (``rate_limit_keys``). Codes and nonces are stored only as keyed hashes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kouza.kit.db import Base, BigId


class VerificationLevel(StrEnum):
    """How much kouza knows about a user; each level allows more."""

    NONE = "none"
    """Signed up, e-mail not yet verified: may do nothing with money."""
    EMAIL = "email"
    """E-mail verified: prepaid balance and small payments; may not link a bank."""
    PHONE = "phone"
    """Plus a verified phone number and a registered device key."""
    VERIFIED = "verified"
    """Plus eKYC (JPKI or IC chip): may link banks, charge and withdraw."""


LEVEL_ORDER = list(VerificationLevel)


class UserStatus(StrEnum):
    """Whether a user may sign in."""

    ACTIVE = "active"
    """Normal."""
    DISABLED = "disabled"
    """Closed by the operator; cannot sign in."""


class User(Base):
    """A customer of the wallet operator."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("level IN ('none', 'email', 'phone', 'verified')", name="level_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Lower-cased, normalised address."""
    password_hash: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), default=VerificationLevel.NONE.value)
    status: Mapped[str] = mapped_column(String(16), default=UserStatus.ACTIVE.value)
    email_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the password was last changed (starts the money-out cool-off, ADR 0021)."""


class EmailVerification(Base):
    """A code sent to verify an e-mail address."""

    __tablename__ = "email_verifications"
    __table_args__ = (Index("ix_email_verifications_user", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]


class AccessToken(Base):
    """A bearer token issued at login (only its keyed hash is kept)."""

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str] = mapped_column(String(64), default="")


# --- phone, one-time passwords, rate limits -----------------------------------------------------


class OtpPurpose(StrEnum):
    """What a one-time password sent by SMS proves when it is entered."""

    PHONE_VERIFICATION = "phone_verification"
    """The user holds the phone number being verified (reaching the ``phone`` level)."""
    STEP_UP = "step_up"
    """The user holds their verified phone right now (a step-up another action demanded)."""
    PHONE_CHANGE = "phone_change"
    """The user holds the new number their verified phone is being changed to."""


class PhoneNumber(Base):
    """A phone number seen by kouza: the row every claim on the number locks first.

    Locking it serialises concurrent verifications of one number, so the cap on how many users
    one number may back holds without a check-then-insert race.
    """

    __tablename__ = "phone_numbers"

    e164: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[datetime]


class UserPhone(Base):
    """The verified phone number of a user (one per user)."""

    __tablename__ = "user_phones"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    e164: Mapped[str] = mapped_column(ForeignKey("phone_numbers.e164"), index=True)
    verified_at: Mapped[datetime]


class OtpChallenge(Base):
    """A six-digit code sent by SMS; only its keyed hash is kept."""

    __tablename__ = "otp_challenges"
    __table_args__ = (
        Index("ix_otp_challenges_user", "user_id", "purpose", "created_at"),
        CheckConstraint(
            "purpose IN ('phone_verification', 'step_up', 'phone_change')", name="purpose_valid"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    step_up_for: Mapped[str] = mapped_column(String(64), default="")
    """The action a step-up was demanded for (empty for phone verification)."""
    e164: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]
    """When the right code was entered (or the challenge was superseded by a resend)."""
    satisfied: Mapped[bool] = mapped_column(default=False)
    """True once the right code was entered (a superseded challenge is consumed, not satisfied)."""
    spent_at: Mapped[datetime | None]
    """When a satisfied step-up was used up by the action that demanded it."""
    ip: Mapped[str] = mapped_column(String(64), default="")


class RateLimitKey(Base):
    """The row a rate-limit key's counters lock, so a full window cannot be overrun by racers."""

    __tablename__ = "rate_limit_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]


class RateLimitHit(Base):
    """One counted event in a sliding-window rate limit; the key is stored as a keyed hash."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_key_at", "key_hash", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


# --- device keys --------------------------------------------------------------------------------


class Device(Base):
    """A device's public key (JWK), registered with the phone or later after a step-up."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("user_id", "thumbprint", name="uq_devices_user_thumbprint"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    thumbprint: Mapped[str] = mapped_column(String(64))
    """RFC 7638 SHA-256 thumbprint of the public key (base64url)."""
    algorithm: Mapped[str] = mapped_column(String(16))
    """The JWS algorithm this key signs with: ``ES256`` or ``EdDSA``."""
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    """First seen."""
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    added_by: Mapped[str | None] = mapped_column(String(24), default=None)
    """How the registration was proven (:class:`kouza.identity.devices.DeviceAddedBy`); None
    for keys registered before the column existed (trusted by age alone)."""


class DeviceChallenge(Base):
    """A single-use server challenge a device signs for one sensitive action."""

    __tablename__ = "device_challenges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id"))
    action: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


# --- eKYC ---------------------------------------------------------------------------------------


class EkycNonce(Base):
    """An eKYC challenge bound to the user and method it was issued for (keyed hash only)."""

    __tablename__ = "ekyc_nonces"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class EkycVerification(Base):
    """The record of one eKYC attempt, kept whether it succeeded or not (犯収法 record)."""

    __tablename__ = "ekyc_verifications"
    __table_args__ = (Index("ix_ekyc_verifications_user", "user_id", "checked_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(16))
    ok: Mapped[bool]
    failure: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(500))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_serial: Mapped[str | None] = mapped_column(String(64))
    """Hexadecimal serial of the JPKI signing / document-signer certificate."""
    issuer: Mapped[str | None] = mapped_column(String(500))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[str] = mapped_column(String(128))
    """The (spent) challenge the signature covers, kept so the record can be re-checked."""
    revocation: Mapped[str | None] = mapped_column(String(200))
    face_match_score: Mapped[float | None]
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    declared_kana: Mapped[str] = mapped_column(String(200))
    checked_at: Mapped[datetime]


class VerifiedIdentity(Base):
    """What eKYC proved about a user (latest successful verification) and their kana name."""

    __tablename__ = "verified_identities"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    verification_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ekyc_verifications.id"))
    name: Mapped[str] = mapped_column(String(200))
    """As the issuer recorded it (kanji; JPKI separates family and given name with U+3000)."""
    kana_name: Mapped[str] = mapped_column(String(200))
    """Declared reading, in Zengin form (half-width katakana)."""
    address: Mapped[str] = mapped_column(String(500))
    birth_date: Mapped[date]
    sex: Mapped[str | None] = mapped_column(String(16))
    contains_substitute_characters: Mapped[bool] = mapped_column(default=False)
    verified_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    """When a re-check found the certificate behind this identity revoked (the user is then
    demoted from ``verified`` until an eKYC succeeds again, which clears it)."""
    revocation_reason: Mapped[str | None] = mapped_column(String(200))


class EkycRecheckOutcome(StrEnum):
    """What a later revocation re-check found about a stored verification."""

    GOOD = "good"
    """The certificate is still not revoked."""
    REVOKED = "revoked"
    """The certificate is revoked now: the user is demoted from ``verified``."""
    UNKNOWN = "unknown"
    """No trustworthy revocation answer; nothing changes, the operator is told."""
    UNCHECKABLE = "uncheckable"
    """The certificate no longer validates (expired, root gone): revocation cannot be asked."""


class EkycRecheck(Base):
    """One revocation re-check of the verification behind a user's verified identity."""

    __tablename__ = "ekyc_rechecks"
    __table_args__ = (
        Index("ix_ekyc_rechecks_verification", "verification_id", "checked_at"),
        CheckConstraint(
            "outcome IN ('good', 'revoked', 'unknown', 'uncheckable')", name="outcome_valid"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    verification_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ekyc_verifications.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    demoted: Mapped[bool] = mapped_column(default=False)
    checked_at: Mapped[datetime]


# --- contact changes ------------------------------------------------------------------------


class ContactKind(StrEnum):
    """Which contact a change replaces."""

    PHONE = "phone"
    """The verified phone number (confirmed by an SMS code to the new number)."""
    EMAIL = "email"
    """The e-mail address (confirmed by a code e-mailed to the new address)."""


class ContactChange(Base):
    """A device-signed request to replace the phone number or e-mail address, and its outcome.

    Pending until the code sent to the new contact is confirmed; a newer request of the same
    kind supersedes it. Completed rows are the history a victim's claim is judged by.
    """

    __tablename__ = "contact_changes"
    __table_args__ = (
        Index("ix_contact_changes_user", "user_id", "kind", "created_at"),
        CheckConstraint("kind IN ('phone', 'email')", name="kind_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(8))
    old_value: Mapped[str] = mapped_column(String(320))
    """The contact being replaced (E.164 number or normalised address)."""
    new_value: Mapped[str] = mapped_column(String(320))
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id"))
    """The device whose signature authorised the change."""
    otp_challenge_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("otp_challenges.id"))
    """Phone: the SMS code sent to the new number."""
    code_hash: Mapped[str | None] = mapped_column(String(64))
    """E-mail: keyed hash of the code sent to the new address (bound to this row's id)."""
    attempts: Mapped[int] = mapped_column(default=0)
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    superseded_at: Mapped[datetime | None]


# --- re-verification ----------------------------------------------------------------------------


class ReverificationCampaign(Base):
    """An operator's demand that a cohort of users pass eKYC again before charging."""

    __tablename__ = "reverification_campaigns"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    started_by: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime]


class ReverificationRequirement(Base):
    """One user's place in a campaign: pending until an eKYC passed after the start."""

    __tablename__ = "reverification_requirements"
    __table_args__ = (Index("ix_reverification_requirements_user", "user_id", "cleared_at"),)

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reverification_campaigns.id"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    required_since: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ekyc_verifications.id"))
