"""Request and response bodies of the operator endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from kouza.kit.money import MAX_AMOUNT_YEN, PositiveYen
from kouza.ledger.models import EntryKind
from kouza.ops.models import CaseStatus, SwitchScope
from kouza.wallet.models import MerchantCategory

MAX_BATCH = 10_000


class LegCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(min_length=1, max_length=100,
                         description="Ledger account code, e.g. wallet:<uuid>, operator_float")
    amount: StrictInt = Field(ge=-MAX_AMOUNT_YEN, le=MAX_AMOUNT_YEN,
                              description="Yen; + into the account, − out of it; not 0")


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: EntryKind
    legs: list[LegCreate] = Field(min_length=2, max_length=50)
    description: str = Field(default="", max_length=500)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    reference: dict[str, Any] | None = None


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)
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
    name: str = Field(min_length=1, max_length=200)
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
    reason: str = Field(min_length=1, max_length=500)


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
    reason: str = Field(min_length=1, max_length=500)


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
    target: str = Field(default="", max_length=64,
                        description="bank code or merchant id (empty for all_links)")
    active: bool
    reason: str = Field(min_length=1, max_length=500)


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
    reason: str = Field(min_length=1, max_length=500)


class WalletStatusRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    status: str


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wallet_id: uuid.UUID
    summary: str = Field(min_length=1, max_length=500)


class CaseMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: CaseStatus
    note: str = Field(min_length=1, max_length=2000)


class CaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    wallet_id: uuid.UUID
    status: str
    source: str
    summary: str
    created_at: datetime
    updated_at: datetime
