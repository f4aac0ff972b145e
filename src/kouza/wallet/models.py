"""Wallets, merchants and the business records of money movements.

Each wallet and merchant owns one ledger account; the ledger holds the money, these tables hold
the business facts (who paid which merchant, in which category, from which QR) and point at the
journal entry that moved the money. Amounts here are copies for reporting and limits; the ledger
is the source of truth and ``kouza ledger verify`` checks it.
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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kouza.kit.db import Base, BigId


class WalletStatus(StrEnum):
    """Whether a wallet may move money."""

    ACTIVE = "active"
    """Normal."""
    LOCKED = "locked"
    """Frozen by the operator (suspected fraud): no spending or withdrawal; balance kept."""
    CLOSED = "closed"
    """Closed; nothing moves."""


class MerchantCategory(StrEnum):
    """Merchant categories that limits and risk rules key on."""

    CONVENIENCE_STORE = "convenience_store"
    """Convenience stores (konbini)."""
    SUPERMARKET = "supermarket"
    """Groceries."""
    RESTAURANT = "restaurant"
    """Restaurants and cafés."""
    TRANSPORT = "transport"
    """Rail, taxi, bus."""
    ELECTRONICS = "electronics"
    """Electronics stores (resellable goods: tablets, phones)."""
    TOBACCO = "tobacco"
    """Tobacco, including heated tobacco (resellable)."""
    GIFT_CARDS = "gift_cards"
    """Gift cards and prepaid cards (resellable)."""
    DRUGSTORE = "drugstore"
    """Pharmacies and drugstores."""
    ONLINE = "online"
    """Online shops."""
    OTHER = "other"
    """Anything else."""


class MovementKind(StrEnum):
    """Business movements that limits apply to."""

    TOPUP = "topup"
    """Money into the wallet."""
    PAYMENT = "payment"
    """Wallet to a merchant."""
    TRANSFER = "transfer"
    """Wallet to another wallet."""
    WITHDRAWAL = "withdrawal"
    """Wallet to a bank account."""
    INCOMING_TRANSFER = "incoming_transfer"
    """Another wallet's transfer arriving (checked against the recipient's balance cap)."""


class Wallet(Base):
    """A customer's wallet (one per user)."""

    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'locked', 'closed')", name="status_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), unique=True)
    ledger_account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("ledger_accounts.id"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), default=WalletStatus.ACTIVE.value)
    created_at: Mapped[datetime]


class Merchant(Base):
    """A shop that accepts QR payments."""

    __tablename__ = "merchants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    ledger_account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("ledger_accounts.id"), unique=True
    )
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class TopUp(Base):
    """An operator's credit into a wallet from the operator float (``kouza wallets credit``).

    Money charged from a customer's bank account is not a TopUp: it is a
    :class:`kouza.linking.models.BankMovement` (direction ``debit``) and its ledger entry.
    """

    __tablename__ = "topups"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    """``operator_float`` (the only source today)."""
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen credited (> 0)."""
    entry_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("journal_entries.id"))
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]


class Payment(Base):
    """A wallet paying a merchant from a merchant-presented QR code."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= amount", name="refund_le_amount"
        ),
        UniqueConstraint("merchant_id", "order_ref"),
        Index("ix_payments_wallet_created", "wallet_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen paid (> 0)."""
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    """Yen refunded so far (0 ≤ refunded ≤ amount)."""
    order_ref: Mapped[str | None] = mapped_column(String(64))
    """The dynamic QR's order reference (unique per merchant: a QR is paid once)."""
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime]


class Refund(Base):
    """Money back from a merchant for (part of) a payment."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen returned to the wallet (> 0)."""
    reason: Mapped[str] = mapped_column(String(500), default="")
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime]


class Transfer(Base):
    """Wallet to wallet."""

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("source_wallet_id <> destination_wallet_id", name="distinct_wallets"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"), index=True)
    destination_wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen moved (> 0)."""
    message: Mapped[str] = mapped_column(String(200), default="")
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime]


class WalletLock(Base):
    """One lock of a wallet, from the lock to its lifting (the wallet row holds the state).

    At most one lock per wallet is open (``unlocked_at`` NULL): locking a locked wallet returns
    the open lock, so everything keyed on the lock (the bank notices) happens once.
    """

    __tablename__ = "wallet_locks"
    __table_args__ = (
        Index(
            "uq_wallet_locks_open",
            "wallet_id",
            unique=True,
            sqlite_where=text("unlocked_at IS NULL"),
            postgresql_where=text("unlocked_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500))
    locked_at: Mapped[datetime]
    unlocked_at: Mapped[datetime | None]
    unlocked_by: Mapped[str | None] = mapped_column(String(120))
    unlock_reason: Mapped[str | None] = mapped_column(String(500))
