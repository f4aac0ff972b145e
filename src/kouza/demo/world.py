"""What a person needs to look at the demo: URLs, logins, holders, the attack's traces.

Kept in ``demo.json`` (mode 0600) beside the databases, so that ``kouza demo`` without
``--reset`` prints the same world it serves. It holds passwords and TOTP seeds in clear: a
development demo's made-up secrets, printed anyway (ADR 0036); the demo refuses production.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

FORMAT = 1
"""Version of ``demo.json``; another version is rebuilt (``--reset``)."""


class WalletLogin(BaseModel):
    """A wallet customer: what to type at ``/app``."""

    label: str
    email: str
    password: str
    level: str
    wallet_id: str
    balance: int = Field(description="Yen when the demo was built")
    phone: str = ""
    linked: str = ""


class OperatorLogin(BaseModel):
    """An operator with console credentials."""

    name: str
    role: str
    password: str
    totp_seed: str


class Holder(BaseModel):
    """An account holder at the bank: internet banking (portal, OAuth pages) and the PIN."""

    label: str
    bank_code: str
    bank_name: str
    branch: str
    account_number: str
    name_kanji: str
    name_kana: str
    birth_date: str
    pin: str
    ib_password: str = ""
    totp_seed: str = ""
    balance: int = Field(description="Yen at the bank when the demo was built")


class Merchant(BaseModel):
    name: str
    merchant_id: str
    category: str
    qr: str = Field(description="A static QR payload (pay any amount)")


class Card(BaseModel):
    """A development My Number card for eKYC at ``/app``."""

    label: str
    name: str
    birth_date: str
    kana: str
    certificate_file: str
    key_file: str
    passphrase: str


class Attack(BaseModel):
    """The attack in progress and what it left."""

    victim: str = Field(description="Label of the robbed holder")
    stolen: int
    fraud_email: str
    fraud_wallet_id: str
    notice_reference: str
    notice_url: str
    refused_attempts: int
    locked_wallets: list[str]
    open_cases: list[str]


class DemoWorld(BaseModel):
    """Everything ``kouza demo`` prints."""

    format: int = FORMAT
    folder: str
    wallet_url: str
    bank_url: str
    built_at: str
    customers: list[WalletLogin]
    operators: list[OperatorLogin]
    holders: list[Holder]
    merchants: list[Merchant]
    cards: list[Card]
    attack: Attack

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(self.model_dump_json(indent=2))
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> DemoWorld | None:
        """The world saved at ``path``; None if there is none or it is of another format."""
        if not path.exists():
            return None
        world = cls.model_validate_json(path.read_text(encoding="utf-8"))
        return world if world.format == FORMAT else None

    def operator(self, name: str) -> OperatorLogin:
        return next(op for op in self.operators if op.name == name)

    def holder(self, label: str) -> Holder:
        return next(holder for holder in self.holders if holder.label == label)
