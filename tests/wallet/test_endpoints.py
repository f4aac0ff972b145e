"""Wallet API (/v1/wallets…): bad input gets a clear 4xx and moves nothing.

Every refusal is checked the same way: the status, the JSON ``error`` code, and a snapshot of
balances, business rows, journal entries and idempotency keys that must not have changed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kouza.api.app import create_app
from kouza.identity.devices import SensitiveAction
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.idempotency import IdempotencyRecord
from kouza.kit.notify import MemoryMailbox
from kouza.ledger.models import JournalEntry
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from kouza.wallet import qr as qr_codes
from kouza.wallet.models import Merchant, Payment, Transfer, Wallet, WalletStatus
from kouza.wallet.service import wallets
from tests.factories import (
    PASSWORD,
    Customer,
    balance_of,
    customer,
    merchant,
    signed_body,
    verified_user,
)
from tests.problems import problem


def login(rt: Runtime, email: str) -> dict[str, str]:
    with rt.db.unit_of_work() as session:
        token = identity.login(session, email=email, password=PASSWORD)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    rt: Runtime
    client: TestClient
    alice: Customer
    bob: Customer
    shop: Merchant
    as_alice: dict[str, str]
    as_bob: dict[str, str]

    def qr(self, amount: int | None = None) -> str:
        with self.rt.db.unit_of_work() as session:
            return wallets.merchant_qr(session, merchant_id=self.shop.id, amount=amount)

    def signed(
        self, body: Any, action: SensitiveAction, headers: dict[str, str] | None, sign: bool
    ) -> Any:
        """``body`` with the caller's device signature for ``action`` (what the app sends)."""
        if not sign or not isinstance(body, dict):
            return body
        who = self.bob if headers is self.as_bob else self.alice
        return body | signed_body(self.rt, who, action)

    def pay(
        self,
        body: Any,
        *,
        key: str | None = "pay-1",
        wallet_id: object = None,
        headers: dict[str, str] | None = None,
        sign: bool = True,
    ) -> httpx.Response:
        extra = {"Idempotency-Key": key} if key is not None else {}
        body = self.signed(body, SensitiveAction.PAY, headers, sign)
        return self.client.post(
            f"/v1/wallets/{wallet_id or self.alice.wallet.id}/payments",
            json=body,
            headers=(self.as_alice if headers is None else headers) | extra,
        )

    def send(
        self,
        body: Any,
        *,
        key: str | None = "send-1",
        wallet_id: object = None,
        headers: dict[str, str] | None = None,
        sign: bool = True,
    ) -> httpx.Response:
        extra = {"Idempotency-Key": key} if key is not None else {}
        body = self.signed(body, SensitiveAction.TRANSFER, headers, sign)
        return self.client.post(
            f"/v1/wallets/{wallet_id or self.alice.wallet.id}/transfers",
            json=body,
            headers=(self.as_alice if headers is None else headers) | extra,
        )

    def state(self) -> dict[str, Any]:
        """Everything a refused request must leave alone."""
        with self.rt.db.session() as session:

            def rows(model: Any) -> int:
                return int(session.scalar(select(func.count()).select_from(model)) or 0)

            def balance(account_id: int) -> int:
                return ledger.balance(session, account_id).balance

            report = ledger.verify(session)
            return {
                "alice": balance(self.alice.wallet.ledger_account_id),
                "bob": balance(self.bob.wallet.ledger_account_id),
                "shop": balance(self.shop.ledger_account_id),
                "payments": rows(Payment),
                "transfers": rows(Transfer),
                "entries": rows(JournalEntry),
                "keys": rows(IdempotencyRecord),
                "ledger_ok": report.ok,
            }


@pytest.fixture
def world(rt: Runtime, mailbox: MemoryMailbox) -> Iterator[World]:
    alice = customer(rt, mailbox, balance=10_000, email="alice@example.jp")
    bob = customer(rt, mailbox, email="bob@example.jp")
    with TestClient(create_app(rt)) as client:
        yield World(
            rt, client, alice, bob, merchant(rt), login(rt, alice.email), login(rt, bob.email)
        )


def forged_qr(world: World, clock: ManualClock) -> str:
    return qr_codes.sign(
        b"some-other-operator",
        merchant_id=world.shop.id,
        now=clock.now(),
        amount=500,
        order_ref="forged",
        ttl=timedelta(minutes=15),
    )


def flip_payload_char(value: str) -> str:
    header, payload, signature = value.split(".")
    middle = len(payload) // 2
    replacement = "B" if payload[middle] != "B" else "C"
    return f"{header}.{payload[:middle]}{replacement}{payload[middle + 1 :]}.{signature}"


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text


# --- wallets ------------------------------------------------------------------------------


class TestOpenWallet:
    def test_opens_once(self, world: World, mailbox: MemoryMailbox, clock: ManualClock) -> None:
        carol = verified_user(world.rt, mailbox, "carol@example.jp")
        as_carol = login(world.rt, carol.email)
        response = world.client.post("/v1/wallets", headers=as_carol)
        assert response.status_code == 201
        body = response.json()
        assert (body["status"], body["balance"], body["available"], body["held"]) == (
            "active",
            0,
            0,
            0,
        )
        again = world.client.post("/v1/wallets", headers=as_carol)
        assert_error(again, 409, "wallet_exists")
        with world.rt.db.session() as session:
            assert [w.id for w in wallets.wallets_of(session, user=carol)] == [
                uuid.UUID(body["id"])
            ]

    def test_needs_a_verified_email(self, world: World) -> None:
        with world.rt.db.unit_of_work() as session:
            identity.signup(session, email="dave@example.jp", password=PASSWORD)
        response = world.client.post("/v1/wallets", headers=login(world.rt, "dave@example.jp"))
        assert_error(response, 403, "verification_level_required")
        assert response.json()["details"] == {"required": "email", "current": "none"}
        with world.rt.db.session() as session:
            assert session.scalar(select(func.count()).select_from(Wallet)) == 2


class TestGetWallet:
    def test_own_wallet_and_list(self, world: World) -> None:
        response = world.client.get(f"/v1/wallets/{world.alice.wallet.id}", headers=world.as_alice)
        assert response.status_code == 200
        assert response.json()["balance"] == 10_000
        assert response.json()["available"] == 10_000
        listed = world.client.get("/v1/wallets", headers=world.as_alice)
        assert [w["id"] for w in listed.json()] == [str(world.alice.wallet.id)]

    def test_another_users_wallet_looks_unknown(self, world: World) -> None:
        unknown = uuid.uuid4()
        theirs = world.client.get(f"/v1/wallets/{world.bob.wallet.id}", headers=world.as_alice)
        nowhere = world.client.get(f"/v1/wallets/{unknown}", headers=world.as_alice)
        assert_error(theirs, 404, "unknown_wallet")
        assert_error(nowhere, 404, "unknown_wallet")
        assert theirs.json() == problem(
            404, "unknown_wallet", "no such wallet", wallet_id=str(world.bob.wallet.id)
        )
        assert nowhere.json() == problem(
            404, "unknown_wallet", "no such wallet", wallet_id=str(unknown)
        )

    def test_malformed_id(self, world: World) -> None:
        response = world.client.get("/v1/wallets/not-a-uuid", headers=world.as_alice)
        assert_error(response, 422, "validation_error")
        assert response.json()["details"]["problems"][0]["field"] == "path.wallet_id"

    def test_needs_a_token(self, world: World) -> None:
        response = world.client.get(f"/v1/wallets/{world.alice.wallet.id}")
        assert_error(response, 401, "invalid_token")
        assert response.headers["WWW-Authenticate"] == "Bearer"


class TestStatement:
    def test_lines_and_paging(self, world: World) -> None:
        assert world.pay({"qr": world.qr(3_200)}).status_code == 201
        assert (
            world.send({"to_wallet_id": str(world.bob.wallet.id), "amount": 800}).status_code == 201
        )
        url = f"/v1/wallets/{world.alice.wallet.id}/statement"
        full = world.client.get(url, headers=world.as_alice).json()
        assert full["balance"] == 6_000
        assert full["next_before"] is None
        assert [(x["kind"], x["amount"], x["balance_after"]) for x in full["lines"]] == [
            ("transfer", -800, 6_000),
            ("payment", -3_200, 6_800),
            ("topup", 10_000, 10_000),
        ]
        page = world.client.get(url, params={"limit": 2}, headers=world.as_alice).json()
        assert len(page["lines"]) == 2
        assert page["next_before"] == page["lines"][-1]["posting_id"]
        rest = world.client.get(
            url, params={"limit": 2, "before": page["next_before"]}, headers=world.as_alice
        ).json()
        assert [x["kind"] for x in rest["lines"]] == ["topup"]
        assert rest["next_before"] is None

    def test_bad_paging(self, world: World) -> None:
        for params in [
            {"limit": 0},
            {"limit": 501},
            {"limit": "ten"},
            {"before": 0},
            {"before": -1},
            {"limit": 1.5},
        ]:
            response = world.client.get(
                f"/v1/wallets/{world.alice.wallet.id}/statement",
                params=params,
                headers=world.as_alice,
            )
            assert_error(response, 422, "validation_error")

    def test_another_users_statement_looks_unknown(self, world: World) -> None:
        response = world.client.get(
            f"/v1/wallets/{world.bob.wallet.id}/statement", headers=world.as_alice
        )
        assert_error(response, 404, "unknown_wallet")


# --- payments -----------------------------------------------------------------------------


class TestPay:
    def test_pays_a_dynamic_qr(self, world: World, clock: ManualClock) -> None:
        response = world.pay({"qr": world.qr(3_200)})
        assert response.status_code == 201
        body = response.json()
        assert (
            body["wallet_id"],
            body["merchant_id"],
            body["amount"],
            body["refunded_amount"],
            body["category"],
        ) == (str(world.alice.wallet.id), str(world.shop.id), 3_200, 0, "convenience_store")
        state = world.state()
        assert (state["alice"], state["shop"], state["payments"], state["keys"]) == (
            6_800,
            3_200,
            1,
            1,
        )
        assert state["ledger_ok"]

    def test_pays_a_static_qr_with_the_typed_amount(self, world: World) -> None:
        response = world.pay({"qr": world.qr(), "amount": 480})
        assert response.status_code == 201
        assert response.json()["amount"] == 480
        assert response.json()["order_ref"] is None
        assert world.state()["alice"] == 9_520

    BAD_BODIES: tuple[tuple[str, Any], ...] = (
        ("amount-as-string", {"amount": "100"}),
        ("amount-as-float", {"amount": 100.5}),
        ("amount-as-whole-float", {"amount": 100.0}),
        ("amount-as-bool", {"amount": True}),
        ("amount-negative", {"amount": -100}),
        ("amount-zero", {"amount": 0}),
        ("amount-huge", {"amount": 10**13}),
        ("amount-as-list", {"amount": [100]}),
        ("qr-null", {"qr": None, "amount": 100}),
        ("qr-missing", {"amount": 100, "qr": ...}),
        ("qr-as-number", {"qr": 12345, "amount": 100}),
        ("qr-empty", {"qr": "", "amount": 100}),
        ("qr-too-long", {"qr": "x" * 2049, "amount": 100}),
        ("extra-field", {"amount": 100, "tip": 50}),
        ("extra-wallet-field", {"amount": 100, "wallet_id": "x"}),
    )

    def test_malformed_bodies_are_422_and_move_nothing(self, world: World) -> None:
        static = world.qr()
        before = world.state()
        for case, changes in self.BAD_BODIES:
            body = {"qr": static} | changes
            body = {k: v for k, v in body.items() if v is not ...}
            response = world.pay(body, key=f"bad-{case}")
            assert response.status_code == 422, (case, response.text)
            assert response.json()["error"] == "validation_error", case
            assert response.json()["details"]["problems"], case
            assert world.state() == before, case
        for case, raw in [
            ("not-json", b"amount=100"),
            ("json-list", b"[1, 2]"),
            ("json-string", b'"qr"'),
            ("empty", b""),
        ]:
            response = world.client.post(
                f"/v1/wallets/{world.alice.wallet.id}/payments",
                content=raw,
                headers=world.as_alice
                | {"Idempotency-Key": case, "Content-Type": "application/json"},
            )
            assert response.status_code == 422, (case, response.text)
            assert response.json()["error"] == "validation_error", case
        assert world.state() == before

    def test_idempotency_key_is_required_and_bounded(self, world: World) -> None:
        before = world.state()
        missing = world.pay({"qr": world.qr(3_200)}, key=None)
        assert_error(missing, 422, "validation_error")
        assert missing.json()["details"]["problems"][0]["field"] == "header.Idempotency-Key"
        for key in ["", "k" * 256]:
            assert_error(world.pay({"qr": world.qr(3_200)}, key=key), 422, "validation_error")
        assert world.state() == before
        assert world.pay({"qr": world.qr(3_200)}, key="k" * 255).status_code == 201

    def test_business_refusals_move_nothing_and_release_the_key(
        self, world: World, clock: ManualClock
    ) -> None:
        dynamic = world.qr(3_200)
        cases: list[tuple[str, dict[str, Any], dict[str, Any], int, str]] = [
            ("unknown-wallet", {"qr": dynamic}, {"wallet_id": uuid.uuid4()}, 404, "unknown_wallet"),
            (
                "another-users-wallet",
                {"qr": dynamic},
                {"wallet_id": world.bob.wallet.id},
                404,
                "unknown_wallet",
            ),
            (
                "malformed-wallet-id",
                {"qr": dynamic},
                {"wallet_id": "12345"},
                422,
                "validation_error",
            ),
            ("forged-qr", {"qr": forged_qr(world, clock)}, {}, 400, "invalid_qr"),
            ("altered-qr", {"qr": flip_payload_char(dynamic)}, {}, 400, "invalid_qr"),
            ("not-a-qr", {"qr": "hello", "amount": 100}, {}, 400, "invalid_qr"),
            ("amount-mismatch", {"qr": dynamic, "amount": 3_000}, {}, 400, "amount_mismatch"),
            ("static-without-amount", {"qr": world.qr()}, {}, 400, "amount_mismatch"),
            ("insufficient-funds", {"qr": world.qr(10_001)}, {}, 422, "insufficient_funds"),
            ("over-the-limit", {"qr": world.qr(500_001)}, {}, 422, "limit_exceeded"),
        ]
        before = world.state()
        for case, body, options, status, error in cases:
            response = world.pay(body, key="same-key-for-all", **options)
            assert response.status_code == status, (case, response.text)
            assert response.json()["error"] == error, case
            assert world.state() == before, case
        # every refusal released the key: a corrected request with the same key runs
        assert world.pay({"qr": dynamic}, key="same-key-for-all").status_code == 201
        assert world.state()["alice"] == 6_800

    def test_another_users_wallet_answers_like_an_unknown_one(self, world: World) -> None:
        unknown = uuid.uuid4()
        theirs = world.pay({"qr": world.qr(100)}, wallet_id=world.bob.wallet.id)
        nowhere = world.pay({"qr": world.qr(100)}, wallet_id=unknown)
        assert theirs.status_code == nowhere.status_code == 404
        assert theirs.json() | {"details": None} == nowhere.json() | {"details": None}
        assert theirs.json()["details"] == {"wallet_id": str(world.bob.wallet.id)}

    def test_expired_qr(self, world: World, clock: ManualClock) -> None:
        dynamic = world.qr(3_200)
        clock.advance(seconds=world.rt.settings.qr_ttl_seconds + 1)
        before = world.state()
        assert_error(world.pay({"qr": dynamic}), 400, "invalid_qr")
        assert world.state() == before

    def test_locked_wallet(self, world: World) -> None:
        with world.rt.db.unit_of_work() as session:
            wallets.set_status(session, wallet_id=world.alice.wallet.id, status=WalletStatus.LOCKED)
        before = world.state()
        assert_error(world.pay({"qr": world.qr(100)}), 403, "wallet_not_active")
        assert world.state() == before

    def test_qr_paid_twice_with_two_keys(self, world: World) -> None:
        dynamic = world.qr(3_200)
        assert world.pay({"qr": dynamic}, key="first").status_code == 201
        before = world.state()
        assert_error(world.pay({"qr": dynamic}, key="second"), 409, "qr_already_paid")
        assert world.state() == before

    def test_replay_with_the_same_key_and_body(self, world: World) -> None:
        body = {"qr": world.qr(3_200)}
        first = world.pay(body, key="order-42")
        second = world.pay(body, key="order-42")
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        state = world.state()
        assert (state["alice"], state["shop"], state["payments"], state["keys"]) == (
            6_800,
            3_200,
            1,
            1,
        )
        with world.rt.db.session() as session:
            kinds = session.scalars(select(JournalEntry.kind)).all()
        assert sorted(kinds) == ["payment", "topup"]

    def test_same_key_with_another_body_conflicts(self, world: World) -> None:
        static = world.qr()
        assert world.pay({"qr": static, "amount": 100}, key="order-42").status_code == 201
        before = world.state()
        response = world.pay({"qr": static, "amount": 200}, key="order-42")
        assert_error(response, 409, "idempotency_conflict")
        assert response.json()["details"] == {"key": "order-42"}
        other_wallet = world.pay(
            {"qr": static, "amount": 100}, key="order-42", wallet_id=uuid.uuid4()
        )
        assert_error(other_wallet, 409, "idempotency_conflict")
        assert world.state() == before

    def test_keys_belong_to_their_user(self, world: World, rt: Runtime) -> None:
        with rt.db.unit_of_work() as session:
            wallets.credit_from_float(
                session, wallet_id=world.bob.wallet.id, amount=1_000, reason="test"
            )
        static = world.qr()
        assert world.pay({"qr": static, "amount": 100}, key="k").status_code == 201
        response = world.pay(
            {"qr": static, "amount": 100},
            key="k",
            wallet_id=world.bob.wallet.id,
            headers=world.as_bob,
        )
        assert response.status_code == 201
        assert response.json()["wallet_id"] == str(world.bob.wallet.id)
        state = world.state()
        assert (state["alice"], state["bob"], state["payments"]) == (9_900, 900, 2)

    def test_needs_a_valid_token(self, world: World) -> None:
        before = world.state()
        for headers in [
            {},
            {"Authorization": "Bearer forged-token"},
            {"Authorization": "Basic YTpi"},
            {"Authorization": "Bearer "},
        ]:
            response = world.pay({"qr": world.qr(100)}, headers=headers)
            assert_error(response, 401, "invalid_token")
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert world.state() == before

    def test_logged_out_token_cannot_pay(self, world: World) -> None:
        assert world.client.post("/v1/auth/logout", headers=world.as_alice).status_code == 204
        before = world.state()
        assert_error(world.pay({"qr": world.qr(100)}), 401, "invalid_token")
        assert world.state() == before


# --- transfers ----------------------------------------------------------------------------


class TestTransfer:
    def test_sends_money(self, world: World) -> None:
        response = world.send(
            {"to_wallet_id": str(world.bob.wallet.id), "amount": 2_500, "message": "lunch"}
        )
        assert response.status_code == 201
        body = response.json()
        assert (
            body["source_wallet_id"],
            body["destination_wallet_id"],
            body["amount"],
            body["message"],
        ) == (str(world.alice.wallet.id), str(world.bob.wallet.id), 2_500, "lunch")
        state = world.state()
        assert (state["alice"], state["bob"], state["transfers"]) == (7_500, 2_500, 1)
        assert state["ledger_ok"]

    def test_malformed_bodies_are_422_and_move_nothing(self, world: World) -> None:
        bob = str(world.bob.wallet.id)
        cases: list[tuple[str, dict[str, Any]]] = [
            ("amount-as-string", {"to_wallet_id": bob, "amount": "100"}),
            ("amount-as-float", {"to_wallet_id": bob, "amount": 100.5}),
            ("amount-as-bool", {"to_wallet_id": bob, "amount": True}),
            ("amount-null", {"to_wallet_id": bob, "amount": None}),
            ("amount-missing", {"to_wallet_id": bob}),
            ("amount-negative", {"to_wallet_id": bob, "amount": -1}),
            ("amount-zero", {"to_wallet_id": bob, "amount": 0}),
            ("amount-huge", {"to_wallet_id": bob, "amount": 10**13}),
            ("recipient-null", {"to_wallet_id": None, "amount": 100}),
            ("recipient-missing", {"amount": 100}),
            ("recipient-not-a-uuid", {"to_wallet_id": "bob", "amount": 100}),
            ("message-too-long", {"to_wallet_id": bob, "amount": 100, "message": "x" * 201}),
            ("extra-field", {"to_wallet_id": bob, "amount": 100, "fee": 0}),
        ]
        before = world.state()
        for case, body in cases:
            response = world.send(body, key=f"bad-{case}")
            assert response.status_code == 422, (case, response.text)
            assert response.json()["error"] == "validation_error", case
            assert world.state() == before, case

    def test_business_refusals_move_nothing(self, world: World, mailbox: MemoryMailbox) -> None:
        carol = customer(world.rt, mailbox, email="carol@example.jp")
        with world.rt.db.unit_of_work() as session:
            wallets.set_status(session, wallet_id=carol.wallet.id, status=WalletStatus.LOCKED)
        alice, bob = str(world.alice.wallet.id), str(world.bob.wallet.id)
        cases: list[tuple[str, dict[str, Any], dict[str, Any], int, str]] = [
            ("to-self", {"to_wallet_id": alice, "amount": 100}, {}, 400, "self_transfer"),
            (
                "unknown-recipient",
                {"to_wallet_id": str(uuid.uuid4()), "amount": 100},
                {},
                404,
                "unknown_wallet",
            ),
            (
                "from-another-users-wallet",
                {"to_wallet_id": alice, "amount": 100},
                {"wallet_id": bob},
                404,
                "unknown_wallet",
            ),
            (
                "from-unknown-wallet",
                {"to_wallet_id": bob, "amount": 100},
                {"wallet_id": uuid.uuid4()},
                404,
                "unknown_wallet",
            ),
            (
                "malformed-source",
                {"to_wallet_id": bob, "amount": 100},
                {"wallet_id": "x"},
                422,
                "validation_error",
            ),
            (
                "insufficient-funds",
                {"to_wallet_id": bob, "amount": 10_001},
                {},
                422,
                "insufficient_funds",
            ),
            (
                "type-2-ceiling",
                {"to_wallet_id": bob, "amount": 1_000_001},
                {},
                422,
                "limit_exceeded",
            ),
            (
                "locked-recipient",
                {"to_wallet_id": str(carol.wallet.id), "amount": 100},
                {},
                403,
                "wallet_not_active",
            ),
        ]
        before = world.state()
        for case, body, options, status, error in cases:
            response = world.send(body, key="same-key-for-all", **options)
            assert response.status_code == status, (case, response.text)
            assert response.json()["error"] == error, case
            assert world.state() == before, case
        assert balance_of(world.rt, carol.wallet) == 0

    def test_replay_and_conflict(self, world: World) -> None:
        body = {"to_wallet_id": str(world.bob.wallet.id), "amount": 1_000}
        first, second = world.send(body, key="t-1"), world.send(body, key="t-1")
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        conflict = world.send(body | {"amount": 1_001}, key="t-1")
        assert_error(conflict, 409, "idempotency_conflict")
        state = world.state()
        assert (state["alice"], state["bob"], state["transfers"]) == (9_000, 1_000, 1)


# --- concurrency (PostgreSQL: SQLite serialises writers) ----------------------------------


def run_together(count: int, call: Any) -> list[httpx.Response]:
    """Run ``call(i)`` in ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call(index)
        except Exception as exc:  # reported by the assertion below
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(r, httpx.Response) for r in results), results
    return results


class TestConcurrency:
    def test_one_dynamic_qr_paid_from_many_requests(self, world: World) -> None:
        if world.rt.db.dialect != "postgresql":
            pytest.skip("row-lock concurrency is proven on PostgreSQL")
        dynamic = world.qr(1_000)
        app = world.client.app

        def attempt(index: int) -> httpx.Response:
            with TestClient(app) as client:
                return client.post(
                    f"/v1/wallets/{world.alice.wallet.id}/payments",
                    json={"qr": dynamic},
                    headers=world.as_alice | {"Idempotency-Key": f"k{index}"},
                )

        responses = run_together(8, attempt)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 7, [r.text for r in responses]
        assert {r.json()["error"] for r in responses if r.status_code == 409} == {"qr_already_paid"}
        state = world.state()
        assert (state["alice"], state["shop"], state["payments"]) == (9_000, 1_000, 1)
        assert state["ledger_ok"]

    def test_parallel_payments_cannot_overdraw(self, world: World) -> None:
        if world.rt.db.dialect != "postgresql":
            pytest.skip("row-lock concurrency is proven on PostgreSQL")
        static = world.qr()
        app = world.client.app

        def attempt(index: int) -> httpx.Response:
            with TestClient(app) as client:
                return client.post(
                    f"/v1/wallets/{world.alice.wallet.id}/payments",
                    json={"qr": static, "amount": 3_000},
                    headers=world.as_alice | {"Idempotency-Key": f"k{index}"},
                )

        responses = run_together(8, attempt)
        assert sorted(r.status_code for r in responses) == [201] * 3 + [422] * 5
        assert {r.json()["error"] for r in responses if r.status_code == 422} == {
            "insufficient_funds"
        }
        state = world.state()
        assert (state["alice"], state["shop"], state["payments"]) == (1_000, 9_000, 3)
        assert state["ledger_ok"]
