"""Request and response bodies of the wallet endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kouza.identity.schemas import DeviceSigned
from kouza.kit.money import PositiveYen
from kouza.kit.text import Text


class WalletRead(BaseModel):
    id: uuid.UUID
    status: str
    balance: int = Field(description="Yen in the wallet")
    available: int = Field(description="Yen spendable now (balance less held funds)")
    held: int = Field(description="Yen reserved by pending holds")
    created_at: datetime


class StatementLine(BaseModel):
    posting_id: int
    entry_id: int
    kind: str
    description: str
    amount: int = Field(description="Yen; + into the wallet, − out of it")
    balance_after: int
    reference: dict[str, Any] | None
    created_at: datetime


class StatementRead(BaseModel):
    wallet_id: uuid.UUID
    balance: int
    lines: list[StatementLine]
    next_before: int | None = Field(description="Pass as ?before= for the next page")


class PaymentCreate(DeviceSigned):
    model_config = ConfigDict(extra="forbid")
    qr: Text = Field(min_length=1, max_length=2048, description="The merchant's QR payload")
    amount: PositiveYen | None = Field(
        default=None, description="Yen; required for a static QR, must match a dynamic QR"
    )


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    wallet_id: uuid.UUID
    merchant_id: uuid.UUID
    category: str
    amount: int
    refunded_amount: int
    order_ref: str | None
    entry_id: int
    created_at: datetime


class TransferCreate(DeviceSigned):
    model_config = ConfigDict(extra="forbid")
    to_wallet_id: uuid.UUID
    amount: PositiveYen
    message: Text = Field(default="", max_length=200)


class TransferRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    source_wallet_id: uuid.UUID
    destination_wallet_id: uuid.UUID
    amount: int
    message: str
    entry_id: int
    created_at: datetime
