"""Builders for the incident-tooling tests: an attacked wallet, operators, the bank's view."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from kouza.bank.core import core
from kouza.bank.models import Alert, BankOutboxMessage, OAuthClientRegistration
from kouza.bank.oauth.clients import oauth_clients
from kouza.controls.models import OperatorRole
from kouza.controls.service import controls
from kouza.ledger.models import AccountKind
from kouza.ledger.service import ledger
from kouza.linking.keys import client_jwks
from kouza.wallet.models import MerchantCategory, Payment
from kouza.wallet.service import wallets
from tests.linking.conftest import World
from tests.linking.support import Linked, charge, linked_under_2019

FRAUD_TOPUPS = (100_000, 90_000, 90_000, 20_000)
SPENT = 120_000


def register_operator_keys(world: World) -> None:
    """The bank trusts the wallet's OAuth client keys (as ``private_key_jwt`` needs)."""
    with world.bank_rt.db.unit_of_work() as session:
        client = core.client(session, world.rt.settings.bank_client_id)
        registered = session.scalars(
            select(OAuthClientRegistration).where(OAuthClientRegistration.client_pk == client.id)
        ).one_or_none()
        if registered is None:
            oauth_clients.register(
                session,
                client,
                jwks=client_jwks(world.rt),
                redirect_uris=["https://wallet.kouza.test/bank-callback"],
            )


def operator(world: World, name: str, role: OperatorRole) -> dict[str, str]:
    with world.rt.db.unit_of_work() as session:
        _, token = controls.create_operator(session, name=name, role=role, actor="test")
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Attack:
    """The 2020 pattern: a victim's account linked to an attacker's wallet, charged, spent."""

    linked: Linked
    payment: Payment


def attack(world: World) -> Attack:
    """Link under the 2019 policy, charge ¥300,000 in four debits, spend ¥120,000."""
    linked = linked_under_2019(world)
    for number, amount in enumerate(FRAUD_TOPUPS):
        answer = charge(world, linked, amount, f"fraud-{number}")
        assert answer.status_code == 201, answer.text
        world.clock.advance(seconds=15)
    with world.rt.db.unit_of_work() as session:
        shop = wallets.create_merchant(
            session, name="家電量販店 秋葉原", category=MerchantCategory.ELECTRONICS
        )
        qr = wallets.merchant_qr(session, merchant_id=shop.id, amount=SPENT)
        payment = wallets.pay(
            session, user=linked.person.user, wallet_id=linked.person.wallet.id, qr=qr
        )
    return Attack(linked, payment)


def system_balance(world: World, kind: AccountKind, suffix: str = "") -> int:
    with world.rt.db.unit_of_work() as session:
        return ledger.balance(session, ledger.system_account(session, kind, suffix)).balance


def bank_alerts(world: World) -> list[Alert]:
    with world.bank_rt.db.unit_of_work() as session:
        return list(session.scalars(select(Alert).where(Alert.kind == "wallet_locked")))


def bank_notices_to_holders(world: World) -> int:
    with world.bank_rt.db.unit_of_work() as session:
        return len(session.scalars(select(BankOutboxMessage.id)).all())
