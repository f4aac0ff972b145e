"""Sender-constrained OAuth links and ``private_key_jwt`` on the bank API (ADR 0022).

A link made through the OAuth flow answers only its DPoP-bound token with a fresh proof of the
bound key: the client secret, the token as a bearer, a proof by another key and a replayed
proof are each refused with 401 ``WWW-Authenticate: DPoP error="invalid_token"`` (or the proof
error) and nothing moves. The API's client authentication is ``private_key_jwt``; the secret
is a fallback for the legacy form and legacy links only.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey
from sqlalchemy import func, select

from kouza.bank.core import core
from kouza.bank.models import AuthProfile, Link, OperatorClient, Transfer
from kouza.bank.runtime import BankRuntime
from kouza.kit.security import keyed_hash, random_token
from tests.bank import test_oauth
from tests.bank.helpers import make_bank, make_holder
from tests.bank.test_oauth import (
    BASE_URL,
    CLIENT_ID,
    IbHolder,
    Wallet,
    authorize,
    balance,
    exchange,
)

# the OAuth tests' fixtures: the bank API, the wallet's client key, the wallet and a holder
api = test_oauth.api
client_key = test_oauth.client_key
wallet = test_oauth.wallet
holder = test_oauth.holder

OPERATIONS = {
    "debit": ("POST", "debits"),
    "credit": ("POST", "credits"),
    "revoke": ("POST", "revoke"),
    "status": ("GET", ""),
}


def transfer_count(rt: BankRuntime) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Transfer)) or 0)


def link_status(rt: BankRuntime, link_id: str) -> str:
    with rt.db.session() as session:
        return session.get_one(Link, uuid.UUID(link_id)).status


def secret_of(rt: BankRuntime) -> str:
    """A new client secret for the registered client (the legacy fallback it still has)."""
    secret = "bcs_" + random_token()
    with rt.db.unit_of_work() as session:
        client = session.scalars(
            select(OperatorClient).where(OperatorClient.client_id == CLIENT_ID)
        ).one()
        client.secret_hash = keyed_hash(rt.secret, secret, purpose="bank-client")
        assert core.client(session, CLIENT_ID).id == client.id
    return secret


def basic(secret: str) -> str:
    return "Basic " + base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()


@pytest.fixture
def token(wallet: Wallet, holder: IbHolder) -> dict[str, Any]:
    """An OAuth link with one ¥1,000 debit made properly (the wallet learnt the nonce)."""
    token = exchange(wallet, authorize(wallet, holder))
    first = wallet.debit(token["access_token"], token["link_id"], 1_000, key="warm-up")
    assert first.status_code == 201, first.text
    return token


def call(
    wallet: Wallet, operation: str, link_id: str, headers: dict[str, str], key: str
) -> httpx.Response:
    method, tail = OPERATIONS[operation]
    path = f"/v1/links/{link_id}" + (f"/{tail}" if tail else "")
    body: dict[str, Any] = (
        {"reason": "user unlinked"} if operation == "revoke" else {"amount": 5_000}
    )
    if method == "GET":
        return wallet.api.get(BASE_URL + path, headers=headers)
    return wallet.api.post(BASE_URL + path, json=body, headers={**headers, "Idempotency-Key": key})


def dpop(
    wallet: Wallet, operation: str, link_id: str, access: str, **kwargs: Any
) -> dict[str, str]:
    method, tail = OPERATIONS[operation]
    url = f"{BASE_URL}/v1/links/{link_id}" + (f"/{tail}" if tail else "")
    return {
        "Authorization": f"DPoP {access}",
        "DPoP": wallet.proof(method, url, access_token=access, **kwargs),
    }


class TestOnlyTheBoundKeyOpensAnOauthLink:
    @pytest.mark.parametrize("operation", ["debit", "credit", "revoke", "status"])
    @pytest.mark.parametrize(
        "attempt", ["client_secret", "bearer_token", "other_key", "client_assertion"]
    )
    def test_refused_and_nothing_moved(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        token: dict[str, Any],
        operation: str,
        attempt: str,
    ) -> None:
        access, link_id = token["access_token"], token["link_id"]
        headers = {
            "client_secret": lambda: {"Authorization": basic(secret_of(bank_rt))},
            "bearer_token": lambda: {"Authorization": f"Bearer {access}"},
            "other_key": lambda: dpop(
                wallet, operation, link_id, access, key=ECKey.generate_key("P-256")
            ),
            "client_assertion": lambda: {
                "Authorization": f"Bearer {wallet.assertion(aud=BASE_URL)}"
            },
        }[attempt]()

        response = call(wallet, operation, link_id, headers, f"{operation}-{attempt}")

        assert response.status_code == 401, response.text
        expected = "invalid_dpop_proof" if attempt == "other_key" else "invalid_token"
        assert response.json()["error"] == expected
        assert response.headers["WWW-Authenticate"].startswith(f'DPoP error="{expected}"')
        assert balance(bank_rt, holder.account_ids[0]) == 399_000
        assert transfer_count(bank_rt) == 1
        assert link_status(bank_rt, link_id) == "active"

    @pytest.mark.parametrize(
        ("operation", "after_first"), [("debit", 394_000), ("credit", 404_000), ("status", 399_000)]
    )
    def test_a_replayed_proof_is_refused(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        token: dict[str, Any],
        operation: str,
        after_first: int,
    ) -> None:
        headers = dpop(wallet, operation, token["link_id"], token["access_token"])
        first = call(wallet, operation, token["link_id"], headers, "first")
        assert first.status_code in (200, 201), first.text
        moved = transfer_count(bank_rt)

        replay = call(wallet, operation, token["link_id"], headers, "second")

        assert (replay.status_code, replay.json()["error"]) == (401, "invalid_dpop_proof")
        assert replay.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')
        assert balance(bank_rt, holder.account_ids[0]) == after_first
        assert transfer_count(bank_rt) == moved

    def test_a_refused_debit_still_spends_its_proof(
        self, bank_rt: BankRuntime, wallet: Wallet, holder: IbHolder, token: dict[str, Any]
    ) -> None:
        """The debit and its authentication are one transaction (ADR 0028): a refusal undoes
        the debit, not the proof's jti, so the proof cannot be replayed for another debit."""
        link_id = token["link_id"]
        headers = dpop(wallet, "debit", link_id, token["access_token"])
        refused = wallet.api.post(
            f"{BASE_URL}/v1/links/{link_id}/debits",
            json={"amount": 900_000},
            headers={**headers, "Idempotency-Key": "too-much"},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "mandate_exceeded"

        replay = call(wallet, "debit", link_id, headers, "within-the-mandate")

        assert (replay.status_code, replay.json()["error"]) == (401, "invalid_dpop_proof")
        assert balance(bank_rt, holder.account_ids[0]) == 399_000
        assert transfer_count(bank_rt) == 1

    @pytest.mark.parametrize("operation", ["debit", "credit", "revoke", "status"])
    def test_the_bound_key_works(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        token: dict[str, Any],
        operation: str,
    ) -> None:
        access, link_id = token["access_token"], token["link_id"]

        response = call(
            wallet, operation, link_id, dpop(wallet, operation, link_id, access), "fine"
        )

        assert response.status_code in (200, 201), response.text
        expected = {"debit": 394_000, "credit": 404_000}.get(operation, 399_000)
        assert balance(bank_rt, holder.account_ids[0]) == expected
        assert link_status(bank_rt, link_id) == ("revoked" if operation == "revoke" else "active")

    def test_a_compensation_credit_takes_private_key_jwt_but_not_the_secret(
        self,
        bank_rt: BankRuntime,
        wallet: Wallet,
        holder: IbHolder,
        token: dict[str, Any],
    ) -> None:
        link_id = token["link_id"]
        revoked = wallet.api.post(
            f"/v1/counter/links/{link_id}/revoke",
            json={"reason": "holder: not me"},
            headers={"Authorization": "Bearer staff-test-token"},
        )
        assert revoked.status_code == 200
        url = f"{BASE_URL}/v1/links/{link_id}/refunds"

        by_secret = wallet.api.post(
            url,
            json={"amount": 1_000},
            headers={"Authorization": basic(secret_of(bank_rt)), "Idempotency-Key": "r1"},
        )
        assert (by_secret.status_code, by_secret.json()["error"]) == (401, "invalid_token")
        assert balance(bank_rt, holder.account_ids[0]) == 399_000

        by_key = wallet.api.post(
            url,
            json={"amount": 1_000},
            headers={
                "Authorization": f"Bearer {wallet.assertion(aud=BASE_URL)}",
                "Idempotency-Key": "r2",
            },
        )
        assert by_key.status_code == 201, by_key.text
        assert balance(bank_rt, holder.account_ids[0]) == 400_000


class TestPrivateKeyJwtOnTheApi:
    @pytest.fixture
    def legacy_link(self, bank_rt: BankRuntime, wallet: Wallet) -> str:
        make_bank(bank_rt, "0125", profile=AuthProfile.LEGACY_PIN)
        person = make_holder(bank_rt)
        response = wallet.api.post(
            f"{BASE_URL}/v1/banks/0125/legacy-links",
            json={
                "branch_code": person.branch_code,
                "account_type": "ordinary",
                "account_number": person.number,
                "holder_kana": person.name_kana,
                "pin": person.pin,
                "wallet_reference": "w-1",
            },
            headers={"Authorization": f"Bearer {wallet.assertion(aud=BASE_URL)}"},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def _debit(self, wallet: Wallet, link_id: str, assertion: str, key: str) -> httpx.Response:
        return wallet.api.post(
            f"{BASE_URL}/v1/links/{link_id}/debits",
            json={"amount": 2_000},
            headers={"Authorization": f"Bearer {assertion}", "Idempotency-Key": key},
        )

    def test_a_signed_assertion_debits_a_legacy_link(
        self, bank_rt: BankRuntime, wallet: Wallet, legacy_link: str
    ) -> None:
        response = self._debit(wallet, legacy_link, wallet.assertion(aud=BASE_URL), "d1")

        assert response.status_code == 201, response.text
        assert transfer_count(bank_rt) == 1

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda w: w.assertion(), id="aud-is-a-bank-authorization-server"),
            pytest.param(lambda w: w.assertion(aud=BASE_URL, exp=w.now() - 1), id="expired"),
            pytest.param(
                lambda w: w.assertion(aud=BASE_URL, exp=w.now() + 3600), id="lives-too-long"
            ),
            pytest.param(lambda w: w.assertion(aud=BASE_URL, iss="someone-else"), id="wrong-iss"),
            pytest.param(
                lambda w: Wallet(
                    w.api, w.clock, ECKey.generate_key("P-256", auto_kid=True)
                ).assertion(aud=BASE_URL),
                id="unregistered-key",
            ),
        ],
    )
    def test_bad_assertions_are_refused(
        self, bank_rt: BankRuntime, wallet: Wallet, legacy_link: str, make: Callable[[Wallet], str]
    ) -> None:
        response = self._debit(wallet, legacy_link, make(wallet), "d1")

        assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
        assert transfer_count(bank_rt) == 0

    def test_an_assertion_is_single_use(
        self, bank_rt: BankRuntime, wallet: Wallet, legacy_link: str
    ) -> None:
        assertion = wallet.assertion(aud=BASE_URL)
        assert self._debit(wallet, legacy_link, assertion, "d1").status_code == 201

        replay = self._debit(wallet, legacy_link, assertion, "d2")

        assert (replay.status_code, replay.json()["error"]) == (401, "invalid_client")
        assert transfer_count(bank_rt) == 1

    def test_transfer_lookups_take_an_assertion(self, wallet: Wallet, legacy_link: str) -> None:
        assert (
            self._debit(wallet, legacy_link, wallet.assertion(aud=BASE_URL), "d1").status_code
            == 201
        )

        found = wallet.api.get(
            f"{BASE_URL}/v1/transfers",
            params={"idempotency_key": "d1"},
            headers={"Authorization": f"Bearer {wallet.assertion(aud=BASE_URL)}"},
        )

        assert found.status_code == 200, found.text
        assert [row["amount"] for row in found.json()] == [2_000]


class TestTheOauthEndpointsTakeNoSecret:
    def test_basic_beside_a_valid_assertion_is_refused(
        self, bank_rt: BankRuntime, wallet: Wallet
    ) -> None:
        response = wallet.api.post(
            f"{BASE_URL}/v1/banks/0129/oauth/par",
            data=wallet.par_fields(),
            headers={"Authorization": basic(secret_of(bank_rt))},
        )

        assert (response.status_code, response.json()["error"]) == (401, "invalid_client")

    def test_a_client_secret_field_is_refused(self, bank_rt: BankRuntime, wallet: Wallet) -> None:
        response = wallet.api.post(
            f"{BASE_URL}/v1/banks/0129/oauth/par",
            data=wallet.par_fields(client_secret=secret_of(bank_rt)),
        )

        assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
