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
from kouza.kit.text import Text

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
    holder_name: Text | None = Field(default=None, min_length=1, max_length=100)
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
    review: str | None = None
    """For a top-up the risk engine held for review: ``held``, ``released``, ``rejected`` or
    ``cancelled``; None otherwise."""
    hold: str | None = None
    """Why a top-up was held: ``review`` (the risk engine; an operator decides) or
    ``probation`` (a restricted link's first days: released automatically, ADR 0032)."""
    available_at: datetime | None = None
    """A top-up held for probation: when it becomes spendable (if the holder does not say
    "not me" at the bank meanwhile)."""
    message: str | None = None
    """What to tell the customer about a held top-up."""


class WebhookAccepted(BaseModel):
    """The receiver's answer to a verified bank event."""

    event: str
    applied: bool


class OAuthLinkStart(DeviceSigned):
    """Start linking an account through its bank's OAuth flow (nothing typed but the bank)."""

    model_config = ConfigDict(extra="forbid")

    bank_code: Digits4


class OAuthLinkStarted(BaseModel):
    """Where the user's browser goes next, and until when the link may be completed."""

    flow_id: uuid.UUID
    authorization_url: str
    expires_at: datetime


class OAuthLinkCallback(BaseModel):
    """The bank's redirect to ``redirect_uri``, relayed by the app that started the link."""

    model_config = ConfigDict(extra="forbid")

    device_id: uuid.UUID | None = None
    """The device that started the link (the flow is bound to it)."""
    state: Text = Field(min_length=1, max_length=500)
    code: Text | None = Field(default=None, min_length=1, max_length=500)
    iss: Text | None = Field(default=None, max_length=500)
    """The bank's issuer (RFC 9207); required: a response without it is refused."""
    error: Text | None = Field(default=None, max_length=100)
    error_description: Text | None = Field(default=None, max_length=500)


class ReviewDecision(BaseModel):
    """An operator's release or rejection of a held top-up."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=500)


class BankReviewRead(BaseModel):
    """A top-up held for review and what became of it."""

    movement_id: uuid.UUID
    wallet_id: uuid.UUID
    link_id: uuid.UUID
    amount: int
    """Yen debited from the bank account and held in the wallet."""
    status: str
    movement_status: str
    rules: list[str]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str
    decision_reason: str
    refund_movement_id: uuid.UUID | None
    refund_status: str | None
    """The refund credit's movement status after a rejection (``voided``: the bank refused)."""
