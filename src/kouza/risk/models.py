"""Recorded risk events and the decisions taken on them.

Every assessed event is stored with its decision: the outcome, the score, the rule set version,
each fired rule with the feature values its condition read, the learned model's verdict
when one is loaded and a candidate rule set's verdict when one runs in shadow — enough to
explain a decision to an analyst or a regulator, and to backtest a new rule set over what
really happened (``kouza risk backtest RULESET --since …``). Bank accounts appear only as
keyed fingerprints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kouza.kit.db import Base, BigId


class RiskEventRecord(Base):
    """One security-relevant action as the risk engine saw it."""

    __tablename__ = "risk_events"
    __table_args__ = (
        Index("ix_risk_events_at", "at"),
        Index("ix_risk_events_wallet_at", "wallet", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    wallet: Mapped[str] = mapped_column(String(64), default="")
    user: Mapped[str] = mapped_column(String(64), default="")
    device: Mapped[str] = mapped_column(String(128), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    email_domain: Mapped[str] = mapped_column(String(255), default="")
    bank: Mapped[str] = mapped_column(String(4), default="")
    account: Mapped[str] = mapped_column(String(64), default="")
    """Keyed fingerprint of the bank account, never the number."""
    holder_name: Mapped[str] = mapped_column(String(100), default="")
    merchant: Mapped[str] = mapped_column(String(64), default="")
    category: Mapped[str] = mapped_column(String(32), default="")
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    """Yen involved (0 when none)."""
    outcome: Mapped[str] = mapped_column(String(64), default="ok")
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class RiskDecisionRecord(Base):
    """The decision on one event."""

    __tablename__ = "risk_decisions"
    __table_args__ = (Index("ix_risk_decisions_outcome", "outcome", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("risk_events.id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))
    score: Mapped[int]
    rule_set_version: Mapped[str] = mapped_column(String(64))
    fired: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """Each fired rule: id, score, outcome, shadow, and the feature values it read."""
    model: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The learned model's verdict when one was loaded: version, score and the five largest
    feature contributions (for operators; never shown to customers)."""
    candidate: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The candidate rule set's verdict when one was set beside the live one: version, outcome,
    score and the ids of its rules that fired (shadow: never enforced; operators only)."""
    created_at: Mapped[datetime]


class RuleSetRecord(Base):
    """A rule set made live or set as the candidate at run time (``kouza.risk.versions``): its
    text as loaded, so earlier versions can be read, compared and published again."""

    __tablename__ = "risk_rule_sets"
    __table_args__ = (
        CheckConstraint("role IN ('live', 'candidate')", name="role_valid"),
        Index("ix_risk_rule_sets_loaded_at", "loaded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    """``live`` (enforced from then on) or ``candidate`` (judged in shadow)."""
    digest: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the text (two loads of the same file share it)."""
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500))
    loaded_at: Mapped[datetime]
