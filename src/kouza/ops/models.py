"""Operator accounts and the audit trail.

Operators authenticate with their own bearer tokens, separate from customers' (a customer token
is never accepted on ``/v1/ops``). Every operator action — from the API or the CLI — writes an
audit event with who, what, on which subject and why.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kouza.kit.db import Base, BigId


class OperatorRole(StrEnum):
    """What an operator may do."""

    ANALYST = "analyst"
    """Read everything, investigate; no money movement."""
    ADMIN = "admin"
    """Everything, including moving money and changing configuration."""


class Operator(Base):
    """A member of the operator's staff (or a service account of theirs)."""

    __tablename__ = "operators"
    __table_args__ = (CheckConstraint("role IN ('analyst', 'admin')", name="role_valid"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class AuditEvent(Base):
    """One operator action."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(120))
    """``operator:<name>`` or ``cli:<os user>``."""
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
