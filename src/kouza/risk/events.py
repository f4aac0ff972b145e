"""Security-relevant events, the input of the risk engine.

Every sensitive action (sign-up, verification, device, login, eKYC, link attempts, links,
top-ups, payments, transfers, withdrawals, contact changes) becomes one :class:`RiskEvent`. An
event never carries a raw bank account number: :func:`account_fingerprint` turns bank code,
branch and number into a keyed hash, so the risk store can count "distinct accounts tried from
this device" without holding account numbers.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """What happened."""

    SIGNUP = "signup"
    """A user signed up."""
    EMAIL_VERIFIED = "email_verified"
    """The e-mail address was verified."""
    PHONE_VERIFIED = "phone_verified"
    """A phone number was verified by SMS OTP."""
    DEVICE_ADDED = "device_added"
    """A device key was registered."""
    LOGIN = "login"
    """A login (successful or not, see outcome)."""
    EKYC_RESULT = "ekyc_result"
    """An eKYC attempt finished."""
    LINK_ATTEMPT = "link_attempt"
    """An attempt to link a bank account (outcome: ok or the refusal reason)."""
    LINK_CREATED = "link_created"
    """A bank account was linked."""
    LINK_REVOKED = "link_revoked"
    """A link was revoked (by the holder, the bank or the operator)."""
    TOPUP = "topup"
    """Money charged into the wallet from a bank account."""
    PAYMENT = "payment"
    """A payment to a merchant."""
    TRANSFER = "transfer"
    """A transfer to another wallet."""
    WITHDRAWAL = "withdrawal"
    """Money out to a bank account."""
    CONTACT_CHANGE = "contact_change"
    """Phone, e-mail or device changed."""


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """One security-relevant action, as the risk engine sees it."""

    type: EventType
    at: datetime
    wallet: str = ""
    user: str = ""
    device: str = ""
    ip: str = ""
    email_domain: str = ""
    bank: str = ""
    account: str = ""
    """Keyed fingerprint of the bank account (never the number itself)."""
    holder_name: str = ""
    """Normalised (Zengin) holder name attempted, for distinct-name counts."""
    merchant: str = ""
    category: str = ""
    amount: int = 0
    outcome: str = "ok"
    """``ok`` or a refusal reason (``wrong_pin``, ``name_mismatch``, ``insufficient_funds``, …)."""
    attributes: dict[str, Any] = field(default_factory=dict)

    def value_of(self, name: str) -> Any:
        """An event field by name (``type`` as its string value); ``attributes`` as fallback."""
        if name == "type":
            return self.type.value
        if name in _FIELDS:
            return getattr(self, name)
        return self.attributes.get(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (time in ISO 8601); empty fields are left out."""
        record: dict[str, Any] = {"type": self.type.value, "at": self.at.isoformat()}
        for name in _FIELDS - {"at"}:
            value = getattr(self, name)
            if value not in ("", 0) or name == "outcome":
                record[name] = value
        if self.attributes:
            record["attributes"] = self.attributes
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> RiskEvent:
        """The inverse of :meth:`to_json`; raises ValueError on a malformed record."""
        try:
            at = datetime.fromisoformat(record["at"])
            kind = EventType(record["type"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"event needs a valid 'type' and ISO 'at': {exc}") from None
        if at.tzinfo is None:
            raise ValueError("event time must carry a timezone")
        unknown = set(record) - _FIELDS - {"type", "attributes", "label"}
        if unknown:
            raise ValueError(f"unknown event fields: {sorted(unknown)}")
        fields = {name: record[name] for name in _FIELDS - {"at"} if name in record}
        if not isinstance(fields.get("amount", 0), int):
            raise ValueError("amount is whole yen")
        return cls(type=kind, at=at, attributes=dict(record.get("attributes") or {}), **fields)


_FIELDS = frozenset(
    {
        "at",
        "wallet",
        "user",
        "device",
        "ip",
        "email_domain",
        "bank",
        "account",
        "holder_name",
        "merchant",
        "category",
        "amount",
        "outcome",
    }
)


def account_fingerprint(secret: bytes, *, bank: str, branch: str, number: str) -> str:
    """A keyed, non-reversible identifier of one bank account (HMAC-SHA256, 32 hex chars)."""
    message = f"{bank}:{branch}:{number}".encode()
    return hmac.new(secret, b"risk-account\x00" + message, hashlib.sha256).hexdigest()[:32]


def ip_prefix(ip: str) -> str:
    """The /24 of an IPv4 address (the /48 of an IPv6 one): many attackers rotate within one."""
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + "::/48"
    parts = ip.split(".")
    return ".".join(parts[:3]) + ".0/24" if len(parts) == 4 else ip
