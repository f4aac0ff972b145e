"""Operator accounts, the audit trail, kill switches and cases: the controls every layer above uses.

Operators authenticate with their own bearer tokens, separate from customers' (a customer token
is never accepted on ``/v1/ops``). Every operator action — from the API or the CLI — writes an
audit event with who, what, on which subject and why. A case is the fraud team's record of an
investigation about one wallet; risk enforcement, identity and operators open them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kouza.kit.db import Base, BigId


class OperatorRole(StrEnum):
    """What an operator may do."""

    ANALYST = "analyst"
    """Read everything, investigate; no money movement."""
    ADMIN = "admin"
    """Everything, including moving money and changing configuration."""
    CALL_CENTRE = "call_centre"
    """Answers callers: the console's call-centre page only (account look-up, the script)."""


class Operator(Base):
    """A member of the operator's staff (or a service account of theirs)."""

    __tablename__ = "operators"
    __table_args__ = (
        CheckConstraint("role IN ('analyst', 'admin', 'call_centre')", name="role_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class AuditEvent(Base):
    """One operator action, a link of a hash chain (:mod:`kouza.controls.audit`)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_created_at", "created_at"),
        UniqueConstraint("prev_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(120))
    """``operator:<name>`` or ``cli:<os user>``."""
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    """``row_hash`` of the record before this one in id order (64 zeros for the first)."""
    row_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 (hex) over ``prev_hash`` and this record's canonical encoding."""


class SwitchScope(StrEnum):
    """What a kill switch stops."""

    ALL_LINKS = "all_links"
    """No new bank links at all (the global stop of 2020-09-10)."""
    BANK_LINKS = "bank_links"
    """No new links to one bank (target: bank code)."""
    BANK_CHARGES = "bank_charges"
    """No top-ups from one bank (target: bank code)."""
    MERCHANT_PAYMENTS = "merchant_payments"
    """No payments to one merchant (target: merchant id)."""


class KillSwitch(Base):
    """The current state of one switch; its history is in the audit trail."""

    __tablename__ = "kill_switches"
    __table_args__ = (
        UniqueConstraint("scope", "target"),
        CheckConstraint(
            "scope IN ('all_links', 'bank_links', 'bank_charges', 'merchant_payments')",
            name="scope_valid",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500))
    changed_at: Mapped[datetime]


class SettingOverride(Base):
    """An operator's run-time value of one setting, winning over the environment's
    (:mod:`kouza.controls.overrides`, ADR 0035); its history is in the audit trail."""

    __tablename__ = "setting_overrides"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The ``Settings`` field name, e.g. ``accepted_legacy_banks``."""
    value: Mapped[Any] = mapped_column(JSON, nullable=False)
    """The value in JSON form, validated against the field's type and constraints."""
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500))
    changed_at: Mapped[datetime]


class CaseStatus(StrEnum):
    """Where an investigation stands."""

    OPEN = "open"
    """Raised (by an alert or a person), nobody has looked yet."""
    INVESTIGATING = "investigating"
    """An analyst is on it."""
    CONFIRMED_FRAUD = "confirmed_fraud"
    """Fraud confirmed: compensation and clawback may follow."""
    CLEARED = "cleared"
    """Not fraud; the customer is unaffected."""


class Case(Base):
    """An investigation about one wallet."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(
            "status IN ('open', 'investigating', 'confirmed_fraud', 'cleared')",
            name="status_valid",
        ),
        Index("ix_cases_wallet", "wallet_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    status: Mapped[str] = mapped_column(String(24), default=CaseStatus.OPEN.value)
    source: Mapped[str] = mapped_column(String(120))
    """What raised it: ``risk:<rule ids>``, ``enquiry:<id>``, ``operator:<name>``."""
    summary: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    assigned_to: Mapped[str | None] = mapped_column(String(100), default=None)
    """The name of the operator working on it (NULL: unassigned)."""


class CaseNote(Base):
    """One step in a case: status changes and notes, with who did it."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(String(2000))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
