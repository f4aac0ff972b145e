"""The ledger's tables, and the invariants the database itself enforces.

Sign convention (ADR 0002): a posting's ``amount`` is the change to its account's balance —
positive when money arrives, negative when it leaves. Every journal entry's postings sum to zero,
so the balances of all accounts together always sum to zero. A customer wallet holding ¥1,000
has balance +1000; the operator float that issued it stands at −1000.

Enforced by the database, not only by the service:

* ``postings.amount <> 0`` (CHECK) and the zero sum of each entry (on PostgreSQL, set-based
  triggers after each statement that writes entries or postings queue every entry the statement
  may have unbalanced, and a deferred trigger checks those at commit — ADR 0017; the service
  checks it on every dialect before writing).
* every posting names an existing entry and account (set-based triggers per statement instead of
  per-row foreign keys, ADR 0017); ledger accounts are never deleted nor renumbered.
* customer wallet and merchant accounts never below zero, counting held funds (CHECK on
  ``balance - pending_out``), so no concurrency can overdraw them.
* entries and postings are immutable (UPDATE/DELETE triggers on both dialects); a correction is
  a reversing entry that points at what it reverses, and an entry can be reversed only once
  (UNIQUE ``reverses_id``).
* a hold never posts more than it held (CHECK) and moves through ``pending`` to exactly one of
  ``posted``, ``voided`` or ``expired``.

``ledger_accounts.balance`` / ``pending_out`` / ``pending_in`` are caches updated in the same
transaction as the postings and holds they summarise; ``kouza ledger verify`` recomputes them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from kouza.kit.db import Base, BigId


class AccountKind(StrEnum):
    """What a ledger account stands for."""

    CUSTOMER_WALLET = "customer_wallet"
    """A customer's e-money balance (a liability of the operator); never negative."""
    MERCHANT = "merchant"
    """What the operator owes a merchant for payments received; never negative."""
    BANK_CLEARING = "bank_clearing"
    """Money in transit with one partner bank (one account per bank code)."""
    OPERATOR_FLOAT = "operator_float"
    """The operator's own funds used to issue balance for testing and promotions."""
    FEES = "fees"
    """Fee income."""
    COMPENSATION_EXPENSE = "compensation_expense"
    """What the operator pays victims of unauthorised transactions."""
    FRAUD_SUSPENSE = "fraud_suspense"
    """Funds clawed back from fraudulent wallets, held until the case is settled."""


NON_NEGATIVE_KINDS = (AccountKind.CUSTOMER_WALLET, AccountKind.MERCHANT)


class EntryKind(StrEnum):
    """Why an entry was written."""

    TOPUP = "topup"
    """Money into a wallet (from a bank or the operator float)."""
    PAYMENT = "payment"
    """Wallet to merchant."""
    REFUND = "refund"
    """Merchant back to wallet."""
    TRANSFER = "transfer"
    """Wallet to wallet."""
    WITHDRAWAL = "withdrawal"
    """Wallet to a bank account."""
    COMPENSATION = "compensation"
    """Operator pays a victim."""
    CLAWBACK = "clawback"
    """Funds taken from a fraudulent wallet."""
    ADJUSTMENT = "adjustment"
    """An operator correction (always with a reason)."""
    REVERSAL = "reversal"
    """Undoes exactly one earlier entry."""


class HoldStatus(StrEnum):
    """Life of a hold."""

    PENDING = "pending"
    """Funds reserved; counted against the source's available balance."""
    POSTED = "posted"
    """Turned into a journal entry (for all or part of the amount)."""
    VOIDED = "voided"
    """Released without moving money."""
    EXPIRED = "expired"
    """Released because it outlived ``expires_at``."""


def _in(values: tuple[StrEnum, ...]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class LedgerAccount(Base):
    """One account of the ledger."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            f"kind NOT IN {_in(NON_NEGATIVE_KINDS)} OR balance - pending_out >= 0",
            name="non_negative",
        ),
        CheckConstraint("pending_out >= 0 AND pending_in >= 0", name="pending_non_negative"),
        CheckConstraint(f"kind IN {_in(tuple(AccountKind))}", name="kind_valid"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    """Stable name, e.g. ``wallet:<uuid>``, ``bank_clearing:0125``, ``operator_float``."""
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    """Yen; sum of this account's postings (cache). Positive means money held here."""
    pending_out: Mapped[int] = mapped_column(BigInteger, default=0)
    """Yen reserved by pending holds leaving this account (≥ 0)."""
    pending_in: Mapped[int] = mapped_column(BigInteger, default=0)
    """Yen of pending holds arriving at this account (≥ 0); not spendable."""
    created_at: Mapped[datetime]


class JournalEntry(Base):
    """An immutable, balanced set of postings."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(tuple(EntryKind))}", name="kind_valid"),
        CheckConstraint(
            "(kind = 'reversal') = (reverses_id IS NOT NULL)", name="reversal_points_back"
        ),
        Index("ix_journal_entries_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(500), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    reverses_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("journal_entries.id"), unique=True
    )
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Business references (payment id, merchant, bank code, …) for statements and audits."""
    created_at: Mapped[datetime]


class Posting(Base):
    """One leg of a journal entry: ``amount`` yen into (+) or out of (−) one account."""

    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_non_zero"),
        Index("ix_postings_account_created", "account_id", "created_at"),
        Index("ix_postings_entry", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # references checked by triggers, once per statement, not by per-row foreign keys (ADR 0017)
    entry_id: Mapped[int] = mapped_column(BigId)
    account_id: Mapped[int] = mapped_column(BigId)
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen; + into the account, − out of it; never 0."""
    created_at: Mapped[datetime]
    """Copy of the entry's time, so rolling-window sums need no join."""


class Hold(Base):
    """Funds reserved from one account for another, pending a post, void or expiry."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("posted_amount >= 0 AND posted_amount <= amount", name="posted_le_held"),
        CheckConstraint(f"status IN {_in(tuple(HoldStatus))}", name="status_valid"),
        CheckConstraint("(status = 'posted') = (entry_id IS NOT NULL)", name="posted_has_entry"),
        CheckConstraint("source_account_id <> destination_account_id", name="distinct_accounts"),
        Index("ix_holds_source_status", "source_account_id", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"))
    destination_account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen reserved (> 0)."""
    posted_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    """Yen actually moved when posted (0 ≤ posted ≤ amount)."""
    kind: Mapped[str] = mapped_column(String(32))
    """The entry kind the hold posts as."""
    status: Mapped[str] = mapped_column(String(16), default=HoldStatus.PENDING.value)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    entry_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class BalanceCheck(Base):
    """An entry whose zero sum is checked at commit (PostgreSQL; unused on SQLite).

    The triggers after each statement that writes postings or entries queue here every entry
    given postings that do not net to zero over at least two legs, and every entry written
    without postings (one built over several statements); a deferred constraint trigger checks
    each row's entry whole at commit and deletes the row (ADR 0017).
    """

    __tablename__ = "ledger_balance_checks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(BigId)
