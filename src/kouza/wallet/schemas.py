"""Request and response bodies of the wallet endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kouza.identity.devices import SignedChallenge
from kouza.kit.money import PositiveYen
from kouza.kit.text import Text
from kouza.wallet.errors import ProofIncomplete


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


class DeviceSigned(BaseModel):
    """The proof money out needs (ADR 0021): a registered device's signature over a challenge
    issued for the action (``POST /v1/devices/{id}/challenges``), or none when an SMS step-up
    for the action was passed (``POST /v1/step-up``). Not part of the idempotent request: a
    retry with the same key may carry a fresh proof."""

    device_id: uuid.UUID | None = None
    nonce: Text | None = Field(default=None, min_length=1, max_length=200)
    signature: Text | None = Field(default=None, min_length=1, max_length=4000)

    def signed_challenge(self) -> SignedChallenge | None:
        """The proof, if all three members are there (else :class:`ProofIncomplete`)."""
        present = [self.device_id is not None, self.nonce is not None,
                   self.signature is not None]
        if not any(present):
            return None
        if self.device_id is None or self.nonce is None or self.signature is None:
            raise ProofIncomplete("a device proof needs device_id, nonce and signature together")
        return SignedChallenge(self.device_id, self.nonce, self.signature)

    def request_fields(self) -> dict[str, Any]:
        """The body without the proof (what the idempotency key is bound to)."""
        return self.model_dump(mode="json", exclude={"device_id", "nonce", "signature"})


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
