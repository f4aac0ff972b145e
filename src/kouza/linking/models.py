"""Bank links and bank movements: the wallet's records of what it asked the bank to do.

A :class:`BankLink` is the wallet's copy of a debit mandate at a bank. The account number is
never stored: only a keyed fingerprint (:func:`kouza.risk.events.account_fingerprint` under the
server secret), which is what the risk engine counts, plus the last three digits for display.
One bank account links to one wallet: the fingerprint is unique among links that are not
revoked (a partial unique index, on both dialects).

A :class:`BankMovement` is one top-up (bank debit) or withdrawal (bank credit). It is written and
committed *before* the bank is called, together with the ledger hold that reserves the money, so
a crash or a lost response between the two systems always leaves evidence that reconciliation
can resolve against the bank's transfer report: ``pending`` (the call may or may not have
happened), ``unknown`` (the call was made and its answer was lost), ``posted`` (the bank moved
the money; the hold became a journal entry — unless the movement is held for review, below) or
``voided`` (the bank refused or never received it; the hold was released).

A movement stores no customer key of its own. The customer's ``Idempotency-Key`` lives in
``idempotency_keys`` (:mod:`kouza.kit.idempotency`), whose row points at the movement it
recorded (``resource`` = ``bank_movement:<id>``, written in the movement's own unit of work);
every other key derives from the movement's id: the ledger hold's ``bank-movement:<id>`` and the
bank's ``bank_key`` ``kouza-mv-<id>``. A refund of a rejected review is made by the wallet, not
asked for with a key, so no record points at it.

Links made through a bank's OAuth flow (ADR 0013) add two tables: :class:`BankOAuthFlow`, one
started authorization (its ``state`` kept only as an HMAC, its PKCE verifier and DPoP key only
sealed), and :class:`BankLinkToken`, the DPoP-bound access token of a link, sealed too.
:class:`BankMovementReview` marks a top-up the risk engine sent to review: the bank moved the
money (the movement is ``posted``) but the ledger hold stays pending, not spendable, until an
operator releases it (hold posted) or rejects it (the money goes back to the bank account).
A top-up through a restricted link on probation is held the same way, with a ``release_at``
instead of an operator (ADR 0032).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kouza.kit.db import Base, BigId


class BankLinkStatus(StrEnum):
    """Whether the wallet may use a linked account."""

    ACTIVE = "active"
    """Top-ups and withdrawals allowed within the mandate."""
    SUSPENDED = "suspended"
    """The bank suspended debits (holder or branch); withdrawals still allowed."""
    REVOKED = "revoked"
    """Ended for good (by the holder at the bank, the bank or the operator)."""


class MovementDirection(StrEnum):
    """Which way money goes between the bank account and the wallet."""

    DEBIT = "debit"
    """Bank account → wallet (top-up, 即時振替)."""
    CREDIT = "credit"
    """Wallet → bank account (withdrawal)."""


class MovementStatus(StrEnum):
    """Where a bank movement stands."""

    PENDING = "pending"
    """Recorded and held; the bank call has not (knowingly) finished."""
    UNKNOWN = "unknown"
    """The bank was called but its answer was lost (timeout, connection error)."""
    POSTED = "posted"
    """The bank moved the money; the ledger hold was posted."""
    VOIDED = "voided"
    """The bank refused it or never received it; the ledger hold was released."""


UNRESOLVED = (MovementStatus.PENDING.value, MovementStatus.UNKNOWN.value)


class BankLink(Base):
    """A wallet's link to one bank account (the wallet's copy of the bank's mandate)."""

    __tablename__ = "bank_links"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'revoked')", name="status_valid"),
        CheckConstraint(
            "max_per_debit > 0 AND max_30_days >= max_per_debit", name="mandate_positive"
        ),
        Index("ix_bank_links_wallet", "wallet_id", "status"),
        Index(
            "uq_bank_links_account_live",
            "account_fingerprint",
            unique=True,
            sqlite_where=text("status <> 'revoked'"),
            postgresql_where=text("status <> 'revoked'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    bank_code: Mapped[str] = mapped_column(String(4))
    branch: Mapped[str] = mapped_column(String(3))
    account_type: Mapped[str] = mapped_column(String(16))
    account_fingerprint: Mapped[str] = mapped_column(String(64))
    """Keyed HMAC of bank + branch + number (never the number itself)."""
    account_last3: Mapped[str] = mapped_column(String(3))
    """The last three digits, for display only."""
    bank_link_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    """The link's id at the bank (webhooks and transfers name it)."""
    max_per_debit: Mapped[int] = mapped_column(BigInteger)
    """Yen, > 0: the mandate's largest single debit."""
    max_30_days: Mapped[int] = mapped_column(BigInteger)
    """Yen, > 0: the mandate's rolling 30-day maximum."""
    mandate_expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=BankLinkStatus.ACTIVE.value)
    status_reason: Mapped[str] = mapped_column(String(200), default="")
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id"))
    """The device that signed the link (None only under a policy without device keys)."""
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]
    status_changed_at: Mapped[datetime | None]
    restricted: Mapped[bool] = mapped_column(default=False, server_default=false())
    """A restricted link to a legacy-form bank (ADR 0032): a lower mandate, and its top-ups
    during probation are credited as held funds released automatically later."""


class BankMovement(Base):
    """One top-up or withdrawal between a linked account and the wallet."""

    __tablename__ = "bank_movements"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("direction IN ('debit', 'credit')", name="direction_valid"),
        CheckConstraint(
            "status IN ('pending', 'unknown', 'posted', 'voided')", name="status_valid"
        ),
        Index("ix_bank_movements_status_created", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_links.id"), index=True)
    bank_code: Mapped[str] = mapped_column(String(4))
    direction: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen moved (> 0), in the direction given by ``direction``."""
    bank_key: Mapped[str] = mapped_column(String(64), unique=True)
    """The idempotency key sent to the bank, ``kouza-mv-<id>``: derived from this row's id, so
    stable on every retry of the request that recorded it."""
    hold_id: Mapped[int] = mapped_column(BigId, ForeignKey("holds.id"))
    status: Mapped[str] = mapped_column(String(16), default=MovementStatus.PENDING.value)
    bank_transfer_id: Mapped[uuid.UUID | None]
    failure: Mapped[str] = mapped_column(String(300), default="")
    """Why the bank refused (its error code and message), when voided."""
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id"))
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class BankWebhookEvent(Base):
    """A bank event already processed (durable replay protection across processes)."""

    __tablename__ = "bank_webhook_events"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    bank_link_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]


class OAuthFlowStatus(StrEnum):
    """Where a started OAuth link stands."""

    PENDING = "pending"
    """Pushed to the bank; waiting for the holder to come back through the callback."""
    COMPLETED = "completed"
    """The code was exchanged and the link created."""
    FAILED = "failed"
    """The callback came and was refused (the state is spent either way)."""


class BankOAuthFlow(Base):
    """One OAuth link in progress, bound to the wallet, user and device that started it."""

    __tablename__ = "bank_oauth_flows"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'completed', 'failed')", name="status_valid"),
        Index("ix_bank_oauth_flows_wallet", "wallet_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """HMAC-SHA256 of the ``state`` under the server secret (the state itself is not kept)."""
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id"))
    bank_code: Mapped[str] = mapped_column(String(4))
    issuer: Mapped[str] = mapped_column(String(300))
    """The bank's issuer from its metadata: the callback's ``iss`` must equal it (RFC 9207)."""
    token_endpoint: Mapped[str] = mapped_column(String(300))
    sealed: Mapped[str] = mapped_column(Text)
    """Fernet token of the PKCE verifier and the link's DPoP private key (never plain)."""
    status: Mapped[str] = mapped_column(String(16), default=OAuthFlowStatus.PENDING.value)
    failure: Mapped[str] = mapped_column(String(200), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    link_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bank_links.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class BankLinkToken(Base):
    """The DPoP-bound access token of a link made through a bank's OAuth flow."""

    __tablename__ = "bank_link_tokens"

    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_links.id"), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300))
    token_endpoint: Mapped[str] = mapped_column(String(300))
    sealed: Mapped[str] = mapped_column(Text)
    """Fernet token of the access token (and refresh token, if any) and the DPoP private key."""
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    refreshed_at: Mapped[datetime | None]


class ReviewStatus(StrEnum):
    """What an operator decided about a top-up held for review."""

    HELD = "held"
    """Waiting for an operator; the money is pending in the wallet, not spendable."""
    RELEASED = "released"
    """An operator released it: the hold was posted."""
    REJECTED = "rejected"
    """An operator rejected it: the money goes back to the bank account (refund movement)."""
    CANCELLED = "cancelled"
    """The bank never moved the money (refused or not received): nothing to decide."""


class BankMovementReview(Base):
    """A top-up the risk engine sent to review (credited and held, not refused)."""

    __tablename__ = "bank_movement_reviews"
    __table_args__ = (
        CheckConstraint(
            "status IN ('held', 'released', 'rejected', 'cancelled')", name="status_valid"
        ),
        Index("ix_bank_movement_reviews_status", "status", "created_at"),
    )

    movement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bank_movements.id"), primary_key=True
    )
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.HELD.value)
    rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The risk rules that asked for the review."""
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str] = mapped_column(String(120), default="")
    """``operator:<name>`` of the person who released or rejected it."""
    decision_reason: Mapped[str] = mapped_column(String(500), default="")
    refund_movement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bank_movements.id"))
    """The credit that sent a rejected top-up back to the bank account."""
    release_at: Mapped[datetime | None]
    """A restricted link's probation hold (ADR 0032): when the release job
    (:func:`kouza.linking.probation.release_due`) makes the money spendable if the link is
    still in good standing. None: a risk review, decided by an operator."""


class BankLockNotice(Base):
    """The signed notice to a bank that a wallet linked to one of its accounts was locked.

    One per (lock, link); its id is the event id (``jti``) the bank deduplicates on. Delivery
    state is the outbox row's (``delivered_at``, ``attempts``, ``last_error``).
    """

    __tablename__ = "bank_lock_notices"
    __table_args__ = (UniqueConstraint("lock_id", "link_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    lock_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallet_locks.id"))
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_links.id"), index=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"), index=True)
    bank_code: Mapped[str] = mapped_column(String(4))
    outbox_message_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbox_messages.id"))
    created_at: Mapped[datetime]
