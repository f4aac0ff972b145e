"""Request and response bodies of the bank-linking API (pydantic). Amounts are integer yen.

The PIN and account number appear only in :class:`BankLinkCreate`; no response carries them
(a link shows the last three digits of the number).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kouza.kit.money import PositiveYen

Digits4 = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
Digits3 = Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")]
Digits7 = Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")]


class DeviceSigned(BaseModel):
    """The device-key signature over a server challenge (see ``/v1/devices``)."""

    device_id: uuid.UUID | None = None
    nonce: str | None = Field(default=None, min_length=1, max_length=200)
    signature: str | None = Field(default=None, min_length=1, max_length=4000)


class BankLinkCreate(DeviceSigned):
    """Link an account through its bank's legacy form (account, PIN, name)."""

    model_config = ConfigDict(extra="forbid")

    bank_code: Digits4
    branch: Digits3
    account_type: str = Field(default="ordinary", pattern=r"^(ordinary|checking|savings)$")
    account_number: Digits7
    pin: Digits4
    birth_date: date | None = None
    holder_name: str | None = Field(default=None, min_length=1, max_length=100)
    """Used only when kouza's name match is off; otherwise the verified kana name is sent."""


class BankLinkRead(BaseModel):
    """A linked account (never its number; the last three digits only)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    wallet_id: uuid.UUID
    bank_code: str
    branch: str
    account_type: str
    account_last3: str
    status: str
    status_reason: str
    max_per_debit: int
    max_30_days: int
    mandate_expires_at: datetime
    created_at: datetime


class BankMovementCreate(DeviceSigned):
    """A top-up from, or withdrawal to, a linked account."""

    model_config = ConfigDict(extra="forbid")

    link_id: uuid.UUID
    amount: PositiveYen


class BankMovementRead(BaseModel):
    """A top-up or withdrawal and where it stands."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    wallet_id: uuid.UUID
    link_id: uuid.UUID
    direction: str
    amount: int
    status: str
    failure: str
    created_at: datetime
    resolved_at: datetime | None


class WebhookAccepted(BaseModel):
    """The receiver's answer to a verified bank event."""

    event: str
    applied: bool
