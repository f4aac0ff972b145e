"""Users and their credentials.

A user signs up with an e-mail address and a password (argon2id hash); the address is verified
with a six-digit code (stored as a keyed hash, attempt-limited, expiring). Login returns an
opaque bearer token whose keyed hash is stored, so a leaked table yields no usable token.
``level`` is the verification level that gates what the user's wallet may do (DESIGN.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
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
