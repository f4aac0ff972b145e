"""Builders for test data that go through the real services."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from itertools import count

from joserfc import jws
from joserfc.jwk import ECKey

from kouza.identity.devices import SensitiveAction, SignedChallenge, signing_payload
from kouza.identity.models import User, VerificationLevel
from kouza.identity.service import identity
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from kouza.wallet.models import Merchant, MerchantCategory, Wallet
from kouza.wallet.service import wallets

PASSWORD = "correct horse battery staple"
_PHONES = count(1)


@dataclass
class Customer:
    user: User
    wallet: Wallet
    email: str
    device_id: uuid.UUID | None = None
    """The customer's registered device key (phone verified with it), if any."""
    key: ECKey | None = None
    phone: str = ""
    """The verified phone (E.164), if any."""


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


def customer(
    rt: Runtime,
    mailbox: MemoryMailbox,
    *,
    balance: int = 0,
    email: str | None = None,
    device: bool = True,
) -> Customer:
    """A verified user with an open wallet credited with ``balance`` from the float; with
    ``device`` (the default) also a verified phone and a registered device key, as the app
    sets up at onboarding, so that money out can be signed (:func:`signed`)."""
    user = verified_user(rt, mailbox, email)
    with rt.db.unit_of_work() as session:
        wallet = wallets.open_wallet(session, user=user)
        if balance:
            wallets.credit_from_float(session, wallet_id=wallet.id, amount=balance, reason="test")
    who = Customer(user=user, wallet=wallet, email=user.email)
    if device:
        add_device(rt, mailbox, who)
    return who


def add_device(rt: Runtime, mailbox: MemoryMailbox, who: Customer) -> None:
    """Verify a fresh phone number for ``who`` and register a new ES256 device key with it."""
    number = next(_PHONES)
    national = f"0708{number % 10_000_000:07d}"
    e164 = "+81" + national[1:]
    key = ECKey.generate_key("P-256")
    with rt.db.unit_of_work() as session:
        challenge = identity.start_phone_verification(session, who.user, phone=national)
    match = re.search(r"\b(\d{6})\b", mailbox.last_to(e164).body)
    assert match is not None
    with rt.db.unit_of_work() as session:
        device = identity.complete_phone_verification(
            session,
            who.user,
            challenge_id=challenge.id,
            code=match.group(1),
            device_jwk=dict(key.as_dict(private=False)),
            device_name="phone",
        )
        who.user = identity.get_user(session, who.user.id)
    who.device_id, who.key, who.phone = device.id, key, e164


def signed(rt: Runtime, who: Customer, action: SensitiveAction | str) -> SignedChallenge | None:
    """The customer's device signature over a fresh challenge for ``action`` (None for a
    customer without a device, who can only bring an SMS step-up or nothing)."""
    if who.device_id is None or who.key is None:
        return None
    chosen = SensitiveAction(action)
    with rt.db.unit_of_work() as session:
        nonce = identity.issue_device_challenge(session, who.user, who.device_id, chosen.value)
    payload = signing_payload(
        nonce=nonce, action=chosen.value, device_id=who.device_id, user_id=who.user.id
    )
    signature = jws.serialize_compact(
        {"alg": "ES256"}, json.dumps(payload).encode(), who.key, algorithms=["ES256"]
    )
    return SignedChallenge(who.device_id, nonce, signature)


def signed_body(rt: Runtime, who: Customer, action: SensitiveAction | str) -> dict[str, str]:
    """:func:`signed` as the JSON members of a request body."""
    proof = signed(rt, who, action)
    assert proof is not None, "the customer has no device"
    return {"device_id": str(proof.device_id), "nonce": proof.nonce, "signature": proof.signature}


def merchant(
    rt: Runtime,
    name: str = "Lawson Shibuya",
    category: MerchantCategory = MerchantCategory.CONVENIENCE_STORE,
) -> Merchant:
    with rt.db.unit_of_work() as session:
        return wallets.create_merchant(session, name=name, category=category)


def balance_of(rt: Runtime, wallet: Wallet) -> int:
    with rt.db.unit_of_work() as session:
        return wallets.balance(session, wallet).balance
