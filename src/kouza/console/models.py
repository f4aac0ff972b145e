"""The console's tables: operators' console credentials, their sessions, and pending approvals.

* :class:`ConsoleCredential` — one per operator who may sign in to ``/console``: an argon2id
  password hash and a Fernet-encrypted TOTP seed (key derived from the server secret for this
  purpose only), plus the last TOTP time step accepted, so a code is never accepted twice.
* :class:`ConsoleSession` — a signed-in browser. The cookie holds a random session id; the table
  holds only its keyed hash, so a database dump opens no session. Each session has an idle and
  an absolute expiry; signing out deletes the row.
* :class:`Approval` — maker-checker: a dangerous action (unlock, switch off, compensation,
  publishing rules) requested by one operator, run only when another admin approves it
  (:mod:`kouza.console.approvals`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kouza.kit.db import Base, BigId


class ConsoleCredential(Base):
    """How one operator signs in to the console (password + TOTP)."""

    __tablename__ = "console_credentials"

    operator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("operators.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_seed_encrypted: Mapped[str] = mapped_column(Text)
    """Fernet token of the base32 seed (``kouza.console.auth``), never the seed itself."""
    last_totp_step: Mapped[int] = mapped_column(default=0)
    """The TOTP time step (Unix time // 30) of the last accepted code: a replay is refused."""
    set_at: Mapped[datetime]


class ConsoleSession(Base):
    """A signed-in console browser."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_operator", "operator_id"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Keyed hash of the session id in the cookie."""
    operator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("operators.id"))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    """Absolute expiry, whatever the activity."""
    ip: Mapped[str] = mapped_column(String(64), default="")


class ApprovalStatus(StrEnum):
    """Where a maker-checker request stands."""

    PENDING = "pending"
    """Waiting for a second operator."""
    APPROVED = "approved"
    """Approved; the action is running (compensation talks to banks in its own steps)."""
    REJECTED = "rejected"
    """A second operator refused it; nothing ran."""
    EXECUTED = "executed"
    """Approved, and the action ran."""
    FAILED = "failed"
    """Approved, but the action was refused (its message is in ``result``)."""


class ApprovalAction(StrEnum):
    """The dangerous actions that need a second operator."""

    UNLOCK_WALLET = "unlock_wallet"
    """Lift a wallet lock (params: wallet_id)."""
    SWITCH_OFF = "switch_off"
    """Turn a kill switch off (params: scope, target)."""
    COMPENSATE = "compensate"
    """Refund the victims of a confirmed case (params: case_id)."""
    PUBLISH_RULES = "publish_rules"
    """Make a candidate rule set live (params: version)."""


class Approval(Base):
    """A dangerous action requested by one operator, decided by another."""

    __tablename__ = "console_approvals"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'executed', 'failed')",
            name="status_valid",
        ),
        CheckConstraint(
            "action IN ('unlock_wallet', 'switch_off', 'compensate', 'publish_rules')",
            name="action_valid",
        ),
        CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by", name="checker_is_not_maker"
        ),
        Index("ix_console_approvals_status", "status", "requested_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(200))
    """What it acts on, for the list (a wallet id, ``scope:target``, a case id, a version)."""
    reason: Mapped[str] = mapped_column(String(500))
    requested_by: Mapped[str] = mapped_column(String(100))
    """Operator name of the maker."""
    requested_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    """Operator name of the checker (never the maker: a CHECK and the service refuse it)."""
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=ApprovalStatus.PENDING.value)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """What the action answered (or the refusal's code and message)."""
