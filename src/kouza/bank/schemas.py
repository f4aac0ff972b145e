"""Bank API request and response bodies (pydantic). Amounts are integer yen."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from kouza.bank.models import AccountType, LinkStatus, TransferKind
from kouza.kit.text import Text

BranchCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")]

# Path segments checked by the service (``core.require_format``: 400 invalid_bank_data, or
# OAuth's invalid_request on the OAuth routes); the pattern only documents what it accepts.
BankCodePath = Annotated[
    str, Path(description="Four-digit bank code", json_schema_extra={"pattern": r"^[0-9]{4}$"})
]
BranchCodePath = Annotated[
    str, Path(description="Three-digit branch code", json_schema_extra={"pattern": r"^[0-9]{3}$"})
]
AccountNumberPath = Annotated[
    str,
    Path(description="Seven-digit account number", json_schema_extra={"pattern": r"^[0-9]{7}$"}),
]
AccountNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")]
Pin = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
Yen = Annotated[int, Field(gt=0, le=10**12, strict=True)]


class LegacyLinkCreate(BaseModel):
    """The legacy Web口振受付 form, filled in by the operator for its user."""

    model_config = ConfigDict(extra="forbid")

    branch_code: BranchCode
    account_type: AccountType
    account_number: AccountNumber
    holder_kana: Text = Field(min_length=1, max_length=100)
    pin: Pin
    birth_date: date | None = None
    holder_name: Text | None = Field(default=None, min_length=1, max_length=100)
    """The kanji name the operator verified from its user's ID card (with its birth date)."""
    wallet_reference: Text = Field(min_length=1, max_length=200)
    end_user_source: Text | None = Field(default=None, min_length=1, max_length=150)
    """The end user's IP address or device id as the operator saw it (for monitoring)."""
    max_per_debit: Yen | None = None
    max_30_days: Yen | None = None
    probation_days: int | None = Field(default=None, gt=0, le=365)
    """A restricted link: for this many days the operator holds each top-up ``hold_hours``
    (the holder's notices say so, and that "not me" brings held money back)."""
    hold_hours: int | None = Field(default=None, gt=0, le=24 * 30)


class LinkRead(BaseModel):
    """A link and its mandate (what the operator may know of it)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    wallet_reference: str
    status: LinkStatus
    max_per_debit: int
    max_30_days: int
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None


class CounterLinkRead(LinkRead):
    """A link as the branch counter sees it (with the operator and the notice reference)."""

    operator_client_id: str
    operator_name: str
    notice_reference: str
    revoked_reason: str | None


class TransferCreate(BaseModel):
    """A debit or credit under a link."""

    model_config = ConfigDict(extra="forbid")

    amount: Yen
    description: Text = Field(default="", max_length=100)
    """Passbook text (e.g. ``ﾄﾞｺﾓｺｳｻﾞ``); the operator's name when empty."""
    reverses: uuid.UUID | None = None
    """Credits only: the id of an earlier debit of the same link this credit returns (at most
    its amount, once); the one credit a revoked link accepts."""


class TransferRead(BaseModel):
    """A completed debit or credit (never the account's balance: that is the holder's)."""

    id: uuid.UUID
    link_id: uuid.UUID
    kind: TransferKind
    amount: int
    description: str
    idempotency_key: str
    replayed: bool = False
    created_at: datetime


class BankRead(BaseModel):
    """A bank of this deployment and its public configuration."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    name_kana: str
    auth_profile: str
    notice_channel: str


class ReasonBody(BaseModel):
    """Why a counter action is taken (kept with the link and sent in the webhook)."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=200)


class OverdraftOptIn(BaseModel):
    """The holder's choice on debits drawing the secured overdraft."""

    model_config = ConfigDict(extra="forbid")

    debit_may_use_overdraft: StrictBool


class AccountSettingsRead(BaseModel):
    """An account's debit settings."""

    account_type: AccountType
    debit_may_use_overdraft: bool
    overdraft_limit: int


class NotMe(BaseModel):
    """The reference printed on a holder notice."""

    model_config = ConfigDict(extra="forbid")

    reference: Text = Field(min_length=4, max_length=20)
