"""The bank's own tables, on their own ``MetaData`` (never the wallet's).

A bank database holds any number of banks. Money is integer yen. What the database enforces,
whatever code writes to it:

* ``accounts.balance >= -overdraft_limit`` (CHECK): a balance may go negative only into the
  overdraft secured on fixed deposits (総合口座の自動貸越), and only that far;
* every movement and transfer amount is ``> 0`` (CHECK); the direction is the ``kind``;
* ``movements`` (the bank-side journal) are immutable: UPDATE and DELETE raise (triggers on both
  dialects, migration 0001);
* one live link per (account, operator client): a partial UNIQUE index ignores revoked links;
* one transfer per (operator client, idempotency key): UNIQUE, with the request hash stored.

Secrets are never stored readable: PINs and internet-banking passwords are argon2id hashes,
TOTP seeds are Fernet-encrypted under a key derived from the bank secret, operator client
secrets are HMAC-SHA256 under the bank secret, outbox payloads are encrypted until delivered.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kouza.kit.db import NAMING_CONVENTION, BigId, UtcDateTime


class BankBase(DeclarativeBase):
    """Declarative base of every bank table (a metadata separate from the wallet's)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        uuid.UUID: Uuid(),
        date: Date(),
    }


class AuthProfile(StrEnum):
    """How a bank authenticates its holder when an operator links an account."""

    LEGACY_PIN = "legacy_pin"
    """The 2020 Web口振受付 form: account + kana holder name + 4-digit cash-card PIN."""
    LEGACY_PIN_DOB = "legacy_pin_dob"
    """The same form with the holder's birth date added."""
    OAUTH = "oauth"
    """Authorization code flow (PAR, PKCE, DPoP); the legacy form is refused."""


class NoticeChannel(StrEnum):
    """Where the bank sends holder notices (new link, every debit)."""

    EMAIL = "email"
    """To the e-mail address on file."""
    SMS = "sms"
    """To the phone number on file."""
    POST = "post"
    """A letter to the postal address on file."""


class AccountType(StrEnum):
    """Deposit account types (Zengin 預金種目)."""

    ORDINARY = "ordinary"
    """普通預金 (Zengin code 1)."""
    CHECKING = "checking"
    """当座預金 (Zengin code 2)."""
    SAVINGS = "savings"
    """貯蓄預金 (Zengin code 4)."""


class LinkStatus(StrEnum):
    """Life of a wallet link (and its debit mandate)."""

    ACTIVE = "active"
    """Debits and credits allowed within the mandate."""
    SUSPENDED = "suspended"
    """Debits refused until resumed by the holder or the branch; credits still allowed."""
    REVOKED = "revoked"
    """Ended for good; the operator was told by a signed webhook."""


class AttemptOutcome(StrEnum):
    """The true result of a legacy-form attempt, kept by the bank (never told to the caller)."""

    LINKED = "linked"
    """Every check passed; a link was created."""
    UNKNOWN_ACCOUNT = "unknown_account"
    """No such branch, account type or number."""
    NAME_MISMATCH = "name_mismatch"
    """The kana holder name differs from the account's."""
    WRONG_PIN = "wrong_pin"
    """The PIN is wrong (counts towards the account's lockout)."""
    BIRTH_DATE_MISMATCH = "birth_date_mismatch"
    """The birth date differs (``legacy_pin_dob`` banks)."""
    ACCOUNT_LOCKED = "account_locked"
    """The account's PIN is locked after three wrong tries."""
    SOURCE_BLOCKED = "source_blocked"
    """The source is blocked by failed-link monitoring."""
    ALREADY_LINKED = "already_linked"
    """Credentials were right, but the account is already linked to this operator."""


class TransferKind(StrEnum):
    """Direction of money between the bank account and the operator."""

    DEBIT = "debit"
    """Money out of the holder's account to the operator (wallet top-up, 即時振替)."""
    CREDIT = "credit"
    """Money from the operator into the holder's account (wallet withdrawal)."""


class OutboxKind(StrEnum):
    """What a bank outbox row delivers."""

    NOTICE = "notice"
    """A message to a holder on the bank's notice channel."""
    WEBHOOK = "webhook"
    """A signed event POSTed to an operator client's webhook URL."""


def _in(values: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{member.value}'" for member in values) + ")"


class Bank(BankBase):
    """One bank served by this deployment, with its linking and monitoring configuration."""

    __tablename__ = "banks"
    __table_args__ = (
        CheckConstraint("length(code) = 4", name="code_length"),
        CheckConstraint(f"auth_profile IN {_in(AuthProfile)}", name="auth_profile_valid"),
        CheckConstraint(f"notice_channel IN {_in(NoticeChannel)}", name="notice_channel_valid"),
        CheckConstraint(
            "monitor_max_failures > 0 AND monitor_min_accounts > 0 AND "
            "monitor_window_seconds > 0 AND monitor_block_seconds > 0",
            name="monitor_positive",
        ),
        CheckConstraint(
            "mandate_max_per_debit > 0 AND mandate_max_30_days >= mandate_max_per_debit "
            "AND mandate_days > 0",
            name="mandate_positive",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(4), unique=True)
    """Zengin bank code, four digits (``0125`` 七十七銀行)."""
    name: Mapped[str] = mapped_column(String(100))
    name_kana: Mapped[str] = mapped_column(String(100))
    auth_profile: Mapped[str] = mapped_column(String(20))
    monitor_failed_links: Mapped[bool] = mapped_column(default=False)
    monitor_max_failures: Mapped[int] = mapped_column(default=10)
    """Failed attempts from one source within the window that trigger a block…"""
    monitor_min_accounts: Mapped[int] = mapped_column(default=5)
    """…provided they touched at least this many distinct account numbers."""
    monitor_window_seconds: Mapped[int] = mapped_column(default=3600)
    monitor_block_seconds: Mapped[int] = mapped_column(default=86400)
    notice_channel: Mapped[str] = mapped_column(String(10), default=NoticeChannel.EMAIL.value)
    mandate_max_per_debit: Mapped[int] = mapped_column(BigInteger, default=300_000)
    """Yen, > 0: the largest single debit a new mandate allows."""
    mandate_max_30_days: Mapped[int] = mapped_column(BigInteger, default=300_000)
    """Yen, > 0: the most a new mandate allows in any rolling 30 days."""
    mandate_days: Mapped[int] = mapped_column(default=365)
    created_at: Mapped[datetime]


class Branch(BankBase):
    """A branch (3-digit Zengin branch code)."""

    __tablename__ = "branches"
    __table_args__ = (UniqueConstraint("bank_id", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"))
    code: Mapped[str] = mapped_column(String(3))
    name: Mapped[str] = mapped_column(String(100))


class Customer(BankBase):
    """A holder as the bank knows them (KYC done at account opening)."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"), index=True)
    name_kanji: Mapped[str] = mapped_column(String(100))
    name_kana: Mapped[str] = mapped_column(String(100))
    """Zengin half-width katakana (``ﾔﾏﾀﾞ ﾀﾛｳ``)."""
    birth_date: Mapped[date]
    address: Mapped[str] = mapped_column(String(300))
    phone: Mapped[str] = mapped_column(String(30))
    email: Mapped[str] = mapped_column(String(320))
    internet_banking_password_hash: Mapped[str | None] = mapped_column(String(200))
    """argon2id; NULL if the customer never registered for internet banking."""
    created_at: Mapped[datetime]


class Account(BankBase):
    """A deposit account; its balance may go negative only into the secured overdraft."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("branch_id", "number"),
        CheckConstraint("balance >= -overdraft_limit", name="within_overdraft"),
        CheckConstraint("overdraft_limit >= 0", name="overdraft_non_negative"),
        CheckConstraint("pin_failures >= 0", name="pin_failures_non_negative"),
        CheckConstraint("length(number) = 7", name="number_length"),
        CheckConstraint(f"account_type IN {_in(AccountType)}", name="account_type_valid"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"), index=True)
    branch_id: Mapped[int] = mapped_column(BigId, ForeignKey("branches.id"))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    account_type: Mapped[str] = mapped_column(String(10))
    number: Mapped[str] = mapped_column(String(7))
    """Seven digits, unique per branch (the Zengin address is bank + branch + number)."""
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    """Yen; negative only while the secured overdraft is drawn."""
    overdraft_limit: Mapped[int] = mapped_column(BigInteger, default=0)
    """Yen, ≥ 0: the automatic overdraft secured on fixed deposits (自動貸越)."""
    debit_may_use_overdraft: Mapped[bool] = mapped_column(default=False)
    """Whether operator debits may draw the overdraft (the holder's opt-in; off by default)."""
    pin_hash: Mapped[str] = mapped_column(String(200))
    """argon2id of the 4-digit cash-card PIN."""
    pin_failures: Mapped[int] = mapped_column(default=0)
    pin_locked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class OtpDevice(BankBase):
    """A holder's TOTP device (hardware token or app)."""

    __tablename__ = "otp_devices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    """Fernet token of the base32 TOTP seed, key derived from the bank secret and bank code."""
    created_at: Mapped[datetime]


class OperatorClient(BankBase):
    """A wallet operator registered with this deployment (a client of every bank in it)."""

    __tablename__ = "operator_clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """HMAC-SHA256 of the client secret under the bank secret."""
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]


class Link(BankBase):
    """A wallet link of an account to one operator, with its debit mandate."""

    __tablename__ = "links"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(LinkStatus)}", name="status_valid"),
        CheckConstraint(
            "max_per_debit > 0 AND max_30_days >= max_per_debit", name="mandate_positive"
        ),
        Index(
            "uq_links_live_account_client",
            "account_id",
            "client_pk",
            unique=True,
            sqlite_where=text("status <> 'revoked'"),
            postgresql_where=text("status <> 'revoked'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"))
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id"), index=True)
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("operator_clients.id"))
    wallet_reference: Mapped[str] = mapped_column(String(200))
    """Opaque reference of the wallet at the operator; echoed in webhooks."""
    status: Mapped[str] = mapped_column(String(12), default=LinkStatus.ACTIVE.value)
    max_per_debit: Mapped[int] = mapped_column(BigInteger)
    """Yen, > 0: the largest single debit."""
    max_30_days: Mapped[int] = mapped_column(BigInteger)
    """Yen, > 0: the most debited in any rolling 30 days."""
    expires_at: Mapped[datetime]
    notice_reference: Mapped[str] = mapped_column(String(20), unique=True)
    """Code printed on holder notices; quoting it to the bank says "this was not me"."""
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(200))
    probation_until: Mapped[datetime | None]
    """A restricted wallet link (ADR 0032): until then the operator holds each top-up for
    ``hold_hours``, and the holder's link and debit notices say so."""
    hold_hours: Mapped[int | None]


class LinkAttempt(BankBase):
    """Every legacy-form attempt with its true outcome (the caller only saw success/failure)."""

    __tablename__ = "link_attempts"
    __table_args__ = (
        CheckConstraint(f"outcome IN {_in(AttemptOutcome)}", name="outcome_valid"),
        Index("ix_link_attempts_source", "bank_id", "source", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"))
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("operator_clients.id"))
    source: Mapped[str] = mapped_column(String(200))
    account_key: Mapped[str] = mapped_column(String(30))
    """What was submitted: ``branch-type-number``, whether or not it exists."""
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id"))
    outcome: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime]


class SourceBlock(BankBase):
    """A source blocked by failed-link monitoring until ``blocked_until``."""

    __tablename__ = "source_blocks"
    __table_args__ = (Index("ix_source_blocks_source", "bank_id", "source", "blocked_until"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"))
    source: Mapped[str] = mapped_column(String(200))
    blocked_at: Mapped[datetime]
    blocked_until: Mapped[datetime]


class Alert(BankBase):
    """Something the bank's fraud team must look at.

    An alert raised by an operator's signed notice (``wallet_locked``) names the account, the
    client and the notice's event id: UNIQUE (client, event id) makes a redelivered notice
    return the first alert instead of warning the holder twice.
    """

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("client_pk", "event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    details: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id"), index=True)
    """The account concerned, when the alert is about one."""
    client_pk: Mapped[int | None] = mapped_column(BigId, ForeignKey("operator_clients.id"))
    """The operator client that raised it (operator notices)."""
    event_id: Mapped[str | None] = mapped_column(String(64))
    """The operator notice's ``jti`` (operator notices)."""
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    """The holder concerned (failed identity checks and failed legacy attempts)."""
    notice_reference: Mapped[str | None] = mapped_column(String(20), unique=True)
    """The "not me" reference printed on the holder notice this alert caused, if any."""


class Movement(BankBase):
    """One immutable line of an account's journal (what the passbook prints)."""

    __tablename__ = "movements"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"kind IN {_in(TransferKind)}", name="kind_valid"),
        Index("ix_movements_account", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen, > 0; ``kind`` says whether it left (debit) or arrived (credit)."""
    balance_after: Mapped[int] = mapped_column(BigInteger)
    """Yen: the account balance right after this movement."""
    description: Mapped[str] = mapped_column(String(100))
    """Passbook text, e.g. ``ﾄﾞｺﾓｺｳｻﾞ``."""
    counterparty: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]


class Transfer(BankBase):
    """A debit or credit requested by an operator client under a link."""

    __tablename__ = "transfers"
    __table_args__ = (
        UniqueConstraint("client_pk", "idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"kind IN {_in(TransferKind)}", name="kind_valid"),
        Index("ix_transfers_link", "link_id", "created_at"),
        Index("ix_transfers_client_time", "client_pk", "created_at"),
        Index("uq_transfers_reverses_id", "reverses_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("operator_clients.id"))
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id"))
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    """Yen, > 0."""
    description: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    movement_id: Mapped[int] = mapped_column(BigId, ForeignKey("movements.id"), unique=True)
    created_at: Mapped[datetime]
    reverses_id: Mapped[uuid.UUID | None]
    """A credit that returns an earlier debit of the same link (at most its amount, once):
    accepted even on a revoked link, so a holder who disowned a link gets back what the
    operator still held (ADR 0032)."""


class BankOutboxMessage(BankBase):
    """A holder notice or operator webhook waiting for (or past) delivery."""

    __tablename__ = "bank_outbox"
    __table_args__ = (CheckConstraint(f"kind IN {_in(OutboxKind)}", name="kind_valid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(10))
    """Notice channel, or ``webhook``."""
    destination: Mapped[str] = mapped_column(String(500))
    """Recipient address, phone, postal address, or webhook URL."""
    payload: Mapped[str | None] = mapped_column(Text)
    """Fernet-encrypted JSON; NULL once delivered."""
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))


class InteractionStage(StrEnum):
    """Where a holder is in the bank's OAuth login and consent pages."""

    LOGIN = "login"
    """Waiting for the internet-banking login (branch, account number, password)."""
    OTP = "otp"
    """Waiting for the one-time password."""
    ACCOUNT = "account"
    """Logged in; choosing which of the holder's accounts to link."""
    CONSENT = "consent"
    """Account chosen; waiting for the holder's approval or refusal."""
    DONE = "done"
    """Finished (code issued, refused, or identity mismatch); the session is spent."""


class OAuthClientRegistration(BankBase):
    """An operator client's OAuth registration: its public keys and redirect URIs."""

    __tablename__ = "oauth_client_registrations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("operator_clients.id"), unique=True)
    jwks: Mapped[Any | None] = mapped_column(JSON)
    """The client's public JWKS (no private members), used to verify ``private_key_jwt``."""
    jwks_uri: Mapped[str | None] = mapped_column(String(500))
    """Where to fetch the JWKS when ``jwks`` is NULL."""
    redirect_uris: Mapped[Any] = mapped_column(JSON)
    """Exact redirect URIs the client may use (a JSON list of strings)."""
    created_at: Mapped[datetime]


class OAuthUsedJti(BankBase):
    """Replay cache: a JWT id already accepted (client assertion or DPoP proof)."""

    __tablename__ = "oauth_used_jtis"
    __table_args__ = (UniqueConstraint("purpose", "jti_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(20))
    jti_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the issuer (client id or DPoP key thumbprint) and the ``jti``."""
    expires_at: Mapped[datetime] = mapped_column(index=True)


class OAuthPushedRequest(BankBase):
    """A pushed authorization request (RFC 9126), usable once before it expires."""

    __tablename__ = "oauth_pushed_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"))
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("operator_clients.id"))
    request_uri_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """HMAC-SHA256 of the ``request_uri`` under the bank secret."""
    parameters_encrypted: Mapped[str] = mapped_column(Text)
    """Fernet token of the validated parameters (they carry the holder's name and birth date)."""
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OAuthInteraction(BankBase):
    """A holder's browser session through login, OTP, account choice and consent."""

    __tablename__ = "oauth_interactions"
    __table_args__ = (CheckConstraint(f"stage IN {_in(InteractionStage)}", name="stage_valid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"))
    pushed_request_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("oauth_pushed_requests.id"), unique=True
    )
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """HMAC of the session cookie."""
    csrf_hash: Mapped[str] = mapped_column(String(64))
    """HMAC of the per-session CSRF token every form must carry."""
    stage: Mapped[str] = mapped_column(String(10), default=InteractionStage.LOGIN.value)
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"))
    """The customer whose login was typed (set before the password is known to be right)."""
    password_matched: Mapped[bool] = mapped_column(default=False)
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class InternetBankingLogin(BankBase):
    """A customer's internet-banking login state: failures, lock, last OTP time step used."""

    __tablename__ = "internet_banking_logins"
    __table_args__ = (CheckConstraint("failures >= 0", name="failures_non_negative"),)

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None]
    last_otp_step: Mapped[int] = mapped_column(BigInteger, default=0)
    """The last TOTP time step accepted (a code is single use per step)."""


class OAuthAuthorizationCode(BankBase):
    """An authorization code: single use, short-lived, bound to client, redirect, PKCE, DPoP."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """HMAC-SHA256 of the code under the bank secret."""
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"))
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("operator_clients.id"))
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id"))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    code_challenge: Mapped[str] = mapped_column(String(128))
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    wallet_reference: Mapped[str] = mapped_column(String(200))
    max_per_debit: Mapped[int] = mapped_column(BigInteger)
    """Yen, > 0: the per-debit maximum the holder approved."""
    max_30_days: Mapped[int] = mapped_column(BigInteger)
    """Yen, > 0: the rolling 30-day maximum the holder approved."""
    mandate_expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    link_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("links.id"))


class OAuthAccessToken(BankBase):
    """A DPoP-bound access token for one link (RFC 9449 ``cnf.jkt``)."""

    __tablename__ = "oauth_access_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """HMAC-SHA256 of the token under the bank secret."""
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("operator_clients.id"))
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id"), index=True)
    code_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("oauth_authorization_codes.id"), index=True
    )
    jkt: Mapped[str] = mapped_column(String(64))
    """RFC 7638 thumbprint of the DPoP key the token is bound to."""
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class PortalStage(StrEnum):
    """Where a holder's portal session is in the sign-in."""

    OTP = "otp"
    """Branch, account number and password typed; waiting for the one-time password."""
    ACTIVE = "active"
    """Signed in with password and one-time password."""
    ENDED = "ended"
    """Signed out, or ended by the bank (the login was locked); never usable again."""


class PortalSession(BankBase):
    """A holder's signed-in session on the holder portal (server-side; the cookie is random
    and only its HMAC is stored, so a database reader cannot use a session)."""

    __tablename__ = "portal_sessions"
    __table_args__ = (CheckConstraint(f"stage IN {_in(PortalStage)}", name="stage_valid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(BigId, ForeignKey("banks.id"))
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """HMAC of the session cookie (a new cookie is issued once the OTP is accepted)."""
    stage: Mapped[str] = mapped_column(String(10), default=PortalStage.OTP.value)
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    """The customer whose login was typed (set before the password is known to be right)."""
    password_matched: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    """Absolute end of the session, whatever the activity."""
    ended_at: Mapped[datetime | None]
