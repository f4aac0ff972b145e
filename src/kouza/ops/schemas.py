"""Request and response bodies of the operator endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from kouza.controls.models import CaseStatus, SwitchScope
from kouza.kit.money import MAX_AMOUNT_YEN, PositiveYen
from kouza.kit.text import JsonObject, Note, Text
from kouza.ledger.models import EntryKind
from kouza.wallet.models import MerchantCategory

MAX_BATCH = 10_000


class LegCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: Text = Field(
        min_length=1,
        max_length=100,
        description="Ledger account code, e.g. wallet:<uuid>, operator_float",
    )
    amount: StrictInt = Field(
        ge=-MAX_AMOUNT_YEN,
        le=MAX_AMOUNT_YEN,
        description="Yen; + into the account, − out of it; not 0",
    )


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: EntryKind
    legs: list[LegCreate] = Field(min_length=2, max_length=50)
    description: Text = Field(default="", max_length=500)
    idempotency_key: Text | None = Field(default=None, min_length=1, max_length=200)
    reference: JsonObject | None = None


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=500)
    entries: list[EntryCreate] = Field(min_length=1, max_length=MAX_BATCH)


class PostedRead(BaseModel):
    id: int
    kind: str
    replayed: bool


class BatchRead(BaseModel):
    count: int
    entries: list[PostedRead]


class VerifyRead(BaseModel):
    ok: bool
    accounts: int
    entries: int
    postings: int
    total_balance: int
    problems: list[str]


class AccountRead(BaseModel):
    code: str
    kind: str
    balance: int
    available: int
    pending_out: int
    pending_in: int


class MerchantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=200)
    category: MerchantCategory


class MerchantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    category: str
    active: bool
    created_at: datetime


class QrRead(BaseModel):
    qr: str


class CreditCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: PositiveYen
    reason: Text = Field(min_length=1, max_length=500)


class TopUpRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    wallet_id: uuid.UUID
    amount: int
    entry_id: int | None
    created_at: datetime


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: PositiveYen
    reason: Text = Field(min_length=1, max_length=500)


class RefundRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    payment_id: uuid.UUID
    amount: int
    entry_id: int
    created_at: datetime


class SwitchChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: SwitchScope
    target: Text = Field(
        default="", max_length=64, description="bank code or merchant id (empty for all_links)"
    )
    active: StrictBool
    reason: Text = Field(min_length=1, max_length=500)


class SwitchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    scope: str
    target: str
    active: bool
    actor: str
    reason: str
    changed_at: datetime


class ReasonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=500)


class WalletStatusRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    status: str


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wallet_id: uuid.UUID
    summary: Text = Field(min_length=1, max_length=500)


class CaseMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: CaseStatus
    note: Note = Field(min_length=1, max_length=2000)


class CaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    wallet_id: uuid.UUID
    status: str
    source: str
    summary: str
    created_at: datetime
    updated_at: datetime


class CostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    link_id: uuid.UUID = Field(description="The victim's account: a link the fraud came through")
    amount: PositiveYen
    description: Text = Field(min_length=1, max_length=500)


class CostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    case_id: uuid.UUID
    link_id: uuid.UUID
    amount: int
    description: str
    created_at: datetime


class VictimRead(BaseModel):
    link_id: uuid.UUID
    bank_code: str
    account_last3: str
    debited: int
    credited_back: int
    owed: int


class CompensationPaymentRead(BaseModel):
    id: uuid.UUID
    purpose: str
    bank_code: str
    link_id: uuid.UUID
    amount: int
    status: str
    attempt: int
    failure: str
    resolved_at: datetime | None


class CompensationRead(BaseModel):
    compensation_id: uuid.UUID
    case_id: uuid.UUID
    wallet_id: uuid.UUID
    status: str
    clawed_back: int
    refunded: int
    costs_paid: int
    outstanding: int
    net_cost: int
    payments: list[CompensationPaymentRead]


class AccountQuery(BaseModel):
    """A bank account as a caller names it (sent in the body, never in a URL)."""

    model_config = ConfigDict(extra="forbid")
    bank_code: str = Field(pattern=r"^[0-9]{4}$")
    branch: str = Field(pattern=r"^[0-9]{3}$")
    account_number: str = Field(pattern=r"^[0-9]{7}$")


class EnquiryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    caller_name: Text = Field(min_length=1, max_length=200)
    caller_contact: Text = Field(default="", max_length=200)
    account: AccountQuery | None = None
    notes: Note = Field(min_length=1, max_length=2000)
    open_case: StrictBool = Field(
        default=False, description="Open (or join) a case on the linked wallet"
    )


class EnquiryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    caller_name: str
    caller_contact: str
    bank_code: str | None
    wallet_id: uuid.UUID | None
    case_id: uuid.UUID | None
    notes: str
    actor: str
    created_at: datetime


class TopUpLine(BaseModel):
    at: datetime
    amount: int
    movement_id: str


class SpendLineRead(BaseModel):
    at: datetime
    payment_id: str
    merchant_id: str
    merchant: str
    category: str
    amount: int
    refunded: int


class LinkViewRead(BaseModel):
    link_id: str
    wallet_id: str
    wallet_status: str
    wallet_created_at: datetime
    bank_code: str
    account_last3: str
    status: str
    status_reason: str
    linked_at: datetime
    status_changed_at: datetime | None
    topups: list[TopUpLine]
    topped_up: int
    spent: int
    transferred_out: int
    withdrawn: int
    locks: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    bank_notices: int
    spend: list[SpendLineRead]


class AccountLookupRead(BaseModel):
    bank_code: str
    bank_name: str = Field(default="", description="The bank's name in the Zengin list")
    linked: bool
    links: list[LinkViewRead]


class EnquiryTaken(BaseModel):
    enquiry: EnquiryRead
    lookup: AccountLookupRead | None


class BankNoticeRead(BaseModel):
    id: uuid.UUID
    lock_id: uuid.UUID
    link_id: uuid.UUID
    bank_code: str
    created_at: datetime
    delivered_at: datetime | None
    attempts: int
    last_error: str | None


class DeliveryRead(BaseModel):
    delivered: int
    pending: int


SettingValue = StrictInt | Text | list[Text] | dict[Text, StrictInt]
"""What a run-time setting holds: yen and counts, a choice, bank codes, caps per category."""


class SettingChange(BaseModel):
    """A run-time override (``PUT /v1/ops/settings/{key}``)."""

    model_config = ConfigDict(extra="forbid")
    value: SettingValue = Field(
        description='validated like the environment variable: e.g. 300000, "refuse", '
        '["0125"], {"electronics": 300000}'
    )
    reason: Text = Field(min_length=1, max_length=500)


class SettingRead(BaseModel):
    """A run-time setting: the environment's value, the override if any, the effective one."""

    key: str
    env_var: str
    environment: Any
    override: Any | None
    effective: Any
    overridden: bool
    actor: str | None
    reason: str | None
    changed_at: datetime | None
