"""Builders for test data that go through the real services."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from kouza.identity.models import User, VerificationLevel
from kouza.identity.service import identity
from kouza.kit.notify import MemoryMailbox
from kouza.kit.runtime import Runtime
from kouza.wallet.models import Merchant, MerchantCategory, Wallet
from kouza.wallet.service import wallets

PASSWORD = "correct horse battery staple"


@dataclass
class Customer:
    user: User
    wallet: Wallet
    email: str


def verified_user(rt: Runtime, mailbox: MemoryMailbox, email: str | None = None) -> User:
    """A user who signed up and verified the e-mail code, through the real service."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.jp"
    with rt.db.unit_of_work() as session:
        identity.signup(session, email=email, password=PASSWORD)
    match = re.search(r"\b(\d{6})\b", mailbox.last_to(email).body)
    assert match is not None
    with rt.db.unit_of_work() as session:
        user = identity.verify_email(session, email=email, code=match.group(1))
    assert user.level == VerificationLevel.EMAIL.value
    return user


def customer(rt: Runtime, mailbox: MemoryMailbox, *, balance: int = 0,
             email: str | None = None) -> Customer:
    """A verified user with an open wallet credited with ``balance`` from the float."""
    user = verified_user(rt, mailbox, email)
    with rt.db.unit_of_work() as session:
        wallet = wallets.open_wallet(session, user=user)
        if balance:
            wallets.credit_from_float(session, wallet_id=wallet.id, amount=balance,
                                      reason="test")
    return Customer(user=user, wallet=wallet, email=user.email)


def merchant(rt: Runtime, name: str = "Lawson Shibuya",
             category: MerchantCategory = MerchantCategory.CONVENIENCE_STORE) -> Merchant:
    with rt.db.unit_of_work() as session:
        return wallets.create_merchant(session, name=name, category=category)


def balance_of(rt: Runtime, wallet: Wallet) -> int:
    with rt.db.unit_of_work() as session:
        return wallets.balance(session, wallet).balance
