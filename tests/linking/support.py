"""Builders for linking tests: customers at each level, device signatures, policies, balances.

``verified_customer`` reaches ``phone`` through the real services (SMS code, device key) and then
records an eKYC result directly (the eKYC protocols have their own tests in
``tests/identity/ekyc``): a verification row, the verified identity with its kana name, and the
level the facts allow.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from kouza.bank.core import core
from kouza.identity.devices import SignedChallenge
from kouza.identity.levels import promote
from kouza.identity.models import Device, EkycVerification, User, VerifiedIdentity
from kouza.identity.service import identity
from kouza.ledger.service import Balance, ledger
from kouza.linking.models import BankLink, BankMovement
from kouza.risk.service import risk
from kouza.wallet.models import Wallet
from kouza.wallet.service import wallets
from tests.bank.helpers import Holder
from tests.factories import PASSWORD, customer
from tests.identity.support import DeviceKey, phone_user
from tests.linking.conftest import LEGACY_BANK, World

EMPTY_RULES = "version: empty\nrules: []\n"


@dataclass
class Person:
    """A wallet customer as a test drives them."""

    user: User
    wallet: Wallet
    device: Device | None = None
    key: DeviceKey | None = None

    @property
    def device_id(self) -> uuid.UUID | None:
        return self.device.id if self.device else None


def email_customer(world: World, email: str | None = None) -> Person:
    """An e-mail-only customer with a wallet (the 2019 sign-up)."""
    made = customer(world.rt, world.mailbox, email=email)
    return Person(made.user, made.wallet)


def verified_customer(
    world: World, *, name: str, birth_date: date, kana: str, phone: str, e164: str
) -> Person:
    """A customer at level ``verified`` with a device key and a wallet: ``name`` and
    ``birth_date`` are what their card said, ``kana`` the reading they declared."""
    someone = phone_user(world.rt, world.mailbox, phone=phone, e164=e164)
    record_ekyc(world, someone.user.id, name=name, kana=kana, birth_date=birth_date)
    with world.rt.db.unit_of_work() as session:
        user = session.get_one(User, someone.user.id)
        wallet = wallets.open_wallet(session, user=user)
    with world.rt.db.unit_of_work() as session:
        user = session.get_one(User, someone.user.id)
    return Person(user, wallet, someone.device, someone.key)


def record_ekyc(
    world: World, user_id: uuid.UUID, *, name: str, kana: str, birth_date: date
) -> None:
    """A passed JPKI check for the user whose card said ``name`` and ``birth_date`` (the eKYC
    protocols have their own tests): the verification, the verified identity, the level."""
    now = world.rt.now()
    with world.rt.db.unit_of_work() as session:
        user = session.get_one(User, user_id)
        check = EkycVerification(
            user_id=user.id,
            method="jpki",
            ok=True,
            failure=None,
            message="ok",
            certificate_der=b"test",
            signature=b"test",
            nonce=uuid.uuid4().hex,
            declared_kana=kana,
            checked_at=now,
        )
        session.add(check)
        session.flush()
        session.add(
            VerifiedIdentity(
                user_id=user.id,
                verification_id=check.id,
                name=name,
                kana_name=kana,
                address="東京都千代田区1-1",
                birth_date=birth_date,
                verified_at=now,
            )
        )
        session.flush()
        promote(session, user)


def signed(world: World, person: Person, action: str) -> dict[str, Any]:
    """Body members carrying the person's device signature over a fresh challenge."""
    assert person.device is not None and person.key is not None
    with world.rt.db.unit_of_work() as session:
        nonce = identity.issue_device_challenge(session, person.user, person.device.id, action)
    signature = person.key.sign_challenge(
        nonce=nonce, action=action, device_id=person.device.id, user_id=person.user.id
    )
    return {"device_id": str(person.device.id), "nonce": nonce, "signature": signature}


def signed_challenge(world: World, person: Person, action: str) -> SignedChallenge:
    """:func:`signed` as the service-level proof money out takes."""
    body = signed(world, person, action)
    return SignedChallenge(uuid.UUID(body["device_id"]), body["nonce"], body["signature"])


def link_body(holder: Holder, **changes: Any) -> dict[str, Any]:
    """The legacy form as an attacker with leaked details fills it in."""
    body: dict[str, Any] = {
        "bank_code": holder.bank_code,
        "branch": holder.branch_code,
        "account_type": "ordinary",
        "account_number": holder.number,
        "pin": holder.pin,
        "holder_name": holder.name_kana,
    }
    body.update(changes)
    return body


def login(world: World, person: Person) -> dict[str, str]:
    with world.rt.db.unit_of_work() as session:
        token = identity.login(session, email=person.user.email, password=PASSWORD)
    return {"Authorization": f"Bearer {token}"}


def policy_2019(world: World) -> None:
    """The 2019 policy: e-mail level, typed name, weak bank accepted, no device, no rules,
    no proof for money out."""
    settings = world.rt.settings
    settings.link_min_level = "email"
    settings.link_name_match = False
    settings.accepted_legacy_banks = [LEGACY_BANK]
    settings.require_device_signature = False
    settings.money_out_proof = False
    no_rules(world)


def no_rules(world: World) -> None:
    risk.load_rules(world.rt, EMPTY_RULES, source="empty.yaml")


def bank_balance(world: World, holder: Holder) -> int:
    """The holder's balance as the bank keeps it (the operator API never shows it)."""
    with world.bank_rt.db.unit_of_work() as session:
        return core.account(
            session,
            bank_code=holder.bank_code,
            branch_code=holder.branch_code,
            number=holder.number,
        ).balance


def wallet_balance(world: World, person: Person) -> Balance:
    with world.rt.db.unit_of_work() as session:
        return ledger.balance(session, person.wallet.ledger_account_id)


def movements(world: World) -> list[BankMovement]:
    with world.rt.db.unit_of_work() as session:
        return list(session.scalars(select(BankMovement).order_by(BankMovement.created_at)))


def links(world: World) -> list[BankLink]:
    with world.rt.db.unit_of_work() as session:
        return list(session.scalars(select(BankLink).order_by(BankLink.created_at)))


def ledger_ok(world: World) -> bool:
    with world.rt.db.unit_of_work() as session:
        return ledger.verify(session).ok


@dataclass
class Linked:
    """A customer whose wallet is linked to the victim's account under the 2019 policy."""

    person: Person
    headers: dict[str, str]
    link_id: str


def linked_under_2019(world: World) -> Linked:
    """Link the victim's account to an e-mail-only wallet (the replay policy, no rules)."""
    policy_2019(world)
    person = email_customer(world)
    headers = login(world, person)
    answer = world.wallet.post(
        f"/v1/wallets/{person.wallet.id}/bank-links", json=link_body(world.victim), headers=headers
    )
    assert answer.status_code == 201, answer.text
    return Linked(person, headers, answer.json()["id"])


def charge(world: World, linked: Linked, amount: int, key: str) -> Any:
    """POST a top-up; returns the response."""
    return world.wallet.post(
        f"/v1/wallets/{linked.person.wallet.id}/topups",
        json={"link_id": linked.link_id, "amount": amount},
        headers=linked.headers | {"Idempotency-Key": key},
    )


def bank_transfer_count(world: World) -> int:
    from sqlalchemy import func

    from kouza.bank.models import Transfer

    with world.bank_rt.db.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(Transfer)) or 0)
