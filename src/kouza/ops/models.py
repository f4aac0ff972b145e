"""The incident tooling's records: wallet locks, bank lock notices, enquiries, victims' costs and
compensation.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kouza.kit.db import Base, BigId


class Enquiry(Base):
    """A call-centre enquiry: who called, about which account (as a keyed fingerprint only)."""

    __tablename__ = "enquiries"
    __table_args__ = (Index("ix_enquiries_created_at", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    caller_name: Mapped[str] = mapped_column(String(200))
    caller_contact: Mapped[str] = mapped_column(String(200), default="")
    """Phone or e-mail to call back on, as the caller gave it."""
    bank_code: Mapped[str | None] = mapped_column(String(4))
    account_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    """The same keyed HMAC the bank links carry; the account number itself is never stored."""
    wallet_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("wallets.id"))
    """The wallet the account was linked to when the enquiry was taken, if any."""
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    """The case the enquiry raised or joined (a caller reporting unauthorised debits)."""
    notes: Mapped[str] = mapped_column(String(2000))
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]


class VictimCost(Base):
    """A cost a victim incurred because of the fraud (bank fees, …), paid with compensation."""

    __tablename__ = "victim_costs"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_links.id"))
    """The victim's account (the link the fraudulent top-ups came through)."""
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen (> 0) the victim paid and the operator refunds."""
    description: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]


class CompensationStatus(StrEnum):
    """Where the compensation of a confirmed case stands."""

    RUNNING = "running"
    """Planned; some payments are not yet confirmed by the bank."""
    COMPLETED = "completed"
    """Every payment posted and the clawed-back funds offset against the cost."""


class Compensation(Base):
    """The compensation of one confirmed-fraud case (at most one per case)."""

    __tablename__ = "compensations"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed')", name="status_valid"),
        CheckConstraint("clawed_back >= 0", name="clawed_back_non_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), unique=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    status: Mapped[str] = mapped_column(String(16), default=CompensationStatus.RUNNING.value)
    clawed_back: Mapped[int] = mapped_column(BigInteger, default=0)
    """Yen (≥ 0) taken from the fraud wallet into the fraud suspense account."""
    clawback_entry_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("journal_entries.id"))
    offset_entry_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("journal_entries.id"))
    """Suspense → compensation account: the recovered funds offset what victims were paid."""
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class PaymentPurpose(StrEnum):
    """What a compensation payment pays."""

    REFUND = "refund"
    """The unauthorised top-ups taken from the victim's account."""
    COST = "cost"
    """A cost the victim incurred (a :class:`VictimCost`)."""


class CompensationPayment(Base):
    """One credit to a victim's account, held in the ledger before the bank is called.

    Like a bank movement (ADR 0011): ``pending`` (held, the call may or may not have happened),
    ``unknown`` (called, answer lost), ``posted`` (the bank credited; the hold became an entry)
    or ``voided`` (refused; the hold was released and a later run retries with a new attempt).
    """

    __tablename__ = "compensation_payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("purpose IN ('refund', 'cost')", name="purpose_valid"),
        CheckConstraint(
            "status IN ('pending', 'unknown', 'posted', 'voided')", name="status_valid"
        ),
        UniqueConstraint("compensation_id", "slot", "attempt"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    compensation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("compensations.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(8))
    slot: Mapped[str] = mapped_column(String(64))
    """What is paid: ``refund:<link id>`` or ``cost:<cost id>`` (paid once across attempts)."""
    attempt: Mapped[int] = mapped_column(default=1)
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_links.id"))
    bank_code: Mapped[str] = mapped_column(String(4))
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen (> 0) credited to the victim's account."""
    bank_key: Mapped[str] = mapped_column(String(64), unique=True)
    """Idempotency key sent to the bank (derived from this row's id; stable on retries)."""
    hold_id: Mapped[int] = mapped_column(BigId, ForeignKey("holds.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    bank_transfer_id: Mapped[uuid.UUID | None]
    failure: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
