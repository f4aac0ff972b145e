"""How the wallet authenticates to the bank API: ``private_key_jwt`` by default (ADR 0022).

With its client key registered at the bank, the wallet links, charges and reconciles without
any client secret: every call carries a fresh client assertion signed by that key. The secret
stays only as the explicitly configured legacy fallback.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from joserfc import jwt

from kouza.linking.client import BankClient, bank_client_of
from kouza.linking.errors import BankRefused
from kouza.linking.keys import Signer, client_key
from tests.linking.conftest import BANK_URL, World
from tests.linking.oauth_support import register_wallet_at_bank
from tests.linking.support import bank_balance, charge, linked_under_2019


def keyed_client(world: World) -> BankClient:
    """The wallet's bank client with no client secret at all, signing with its client key."""
    return BankClient(
        httpx.Client(base_url=BANK_URL, transport=world.transport),
        client_id=world.rt.settings.bank_client_id,
        signer=Signer(world.rt),
    )


def test_the_default_client_signs_with_the_client_key(world: World) -> None:
    world.rt.bank_client = None

    assert bank_client_of(world.rt).signer is not None


def test_the_secret_is_used_only_when_configured(world: World) -> None:
    world.rt.bank_client = None
    world.rt.settings.bank_client_auth = "client_secret"

    assert bank_client_of(world.rt).signer is None


def test_link_charge_and_report_without_a_secret(world: World) -> None:
    register_wallet_at_bank(world)
    world.rt.bank_client = keyed_client(world)
    before = bank_balance(world, world.victim)

    linked = linked_under_2019(world)
    charged = charge(world, linked, 30_000, "top-up-1")
    now = world.clock.now()
    report = bank_client_of(world.rt).transfer_report(
        since=now - timedelta(hours=1), until=now + timedelta(hours=1)
    )

    assert charged.status_code == 201, charged.text
    assert bank_balance(world, world.victim) == before - 30_000
    assert [t.amount for t in report] == [30_000]
    calls = [r for r in world.transport.requests if r.url.path.startswith("/v1/")]
    assert calls and all(r.headers["Authorization"].startswith("Bearer ey") for r in calls)
    claims = jwt.decode(calls[-1].headers["Authorization"].split()[1], client_key(world.rt)).claims
    assert claims["aud"] == world.rt.settings.bank_issuer
    assert claims["iss"] == claims["sub"] == world.rt.settings.bank_client_id
    assert claims["exp"] - claims["iat"] == 60
    assert len({r.headers["Authorization"] for r in calls}) == len(calls)  # one jti each


def test_an_unregistered_key_is_refused(world: World) -> None:
    now = world.clock.now()
    with pytest.raises(BankRefused) as refused:
        keyed_client(world).transfer_report(since=now - timedelta(hours=1), until=now)

    assert refused.value.details["bank_status"] == 401
