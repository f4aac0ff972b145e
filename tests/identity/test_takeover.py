"""Account takeover with a reused password (ADR 0021), through the HTTP API.

The attacker knows the customer's e-mail and password, comes from a new network and invents a
device id. Before, a payment of half the balance and a transfer of the rest to the attacker's
wallet both went through and the customer heard nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kouza.api.app import create_app
from kouza.identity.devices import SensitiveAction
from kouza.identity.models import AccessToken
from kouza.identity.service import identity
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.ledger.models import JournalEntry
from kouza.runtime import Runtime
from kouza.wallet.models import Merchant, Payment, Transfer, WalletStatus
from kouza.wallet.service import wallets
from tests.factories import (
    PASSWORD,
    Customer,
    balance_of,
    customer,
    merchant,
    signed,
    signed_body,
)

HOME = "192.0.2.10"
ATTACKER = "198.51.100.77"
CODE = re.compile(r"\b(\d{6})\b")


@dataclass
class World:
    rt: Runtime
    mailbox: MemoryMailbox
    home: TestClient
    away: TestClient
    victim: Customer
    mule: Customer
    shop: Merchant

    def login(
        self, client: TestClient, password: str = PASSWORD, email: str | None = None
    ) -> httpx.Response:
        return client.post(
            "/v1/auth/login", json={"email": email or self.victim.email, "password": password}
        )

    def bearer(self, client: TestClient) -> dict[str, str]:
        response = self.login(client)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def qr(self, amount: int) -> str:
        with self.rt.db.unit_of_work() as session:
            return wallets.merchant_qr(session, merchant_id=self.shop.id, amount=amount)

    def pay(
        self, client: TestClient, auth: dict[str, str], amount: int, key: str, **extra: Any
    ) -> httpx.Response:
        return client.post(
            f"/v1/wallets/{self.victim.wallet.id}/payments",
            json={"qr": self.qr(amount)} | extra,
            headers=auth | {"Idempotency-Key": key},
        )

    def send(
        self, client: TestClient, auth: dict[str, str], amount: int, key: str, **extra: Any
    ) -> httpx.Response:
        return client.post(
            f"/v1/wallets/{self.victim.wallet.id}/transfers",
            json={"to_wallet_id": str(self.mule.wallet.id), "amount": amount} | extra,
            headers=auth | {"Idempotency-Key": key},
        )

    def moved(self) -> tuple[int, int, int, int, int]:
        with self.rt.db.session() as session:

            def rows(model: Any) -> int:
                return int(session.scalar(select(func.count()).select_from(model)) or 0)

            return (
                balance_of(self.rt, self.victim.wallet),
                balance_of(self.rt, self.mule.wallet),
                rows(Payment),
                rows(Transfer),
                rows(JournalEntry),
            )

    def step_up(self, client: TestClient, auth: dict[str, str], purpose: str) -> None:
        started = client.post("/v1/step-up", json={"purpose": purpose}, headers=auth)
        assert started.status_code == 202, started.text
        code = CODE.search(self.mailbox.last_to(self.victim.phone).body)
        assert code is not None
        confirmed = client.post(
            f"/v1/step-up/{started.json()['challenge_id']}/confirm",
            json={"code": code.group(1)},
            headers=auth,
        )
        assert confirmed.status_code == 200, confirmed.text


@pytest.fixture
def world(rt: Runtime, mailbox: MemoryMailbox) -> Iterator[World]:
    victim = customer(rt, mailbox, balance=100_000, email="hanako@example.jp")
    mule = customer(rt, mailbox, email="mule@example.net")
    app = create_app(rt)
    with (
        TestClient(app, client=(HOME, 50000)) as home,
        TestClient(app, client=(ATTACKER, 50000)) as away,
    ):
        world = World(rt, mailbox, home, away, victim, mule, merchant(rt))
        world.bearer(home)  # the customer's own app signed in from home once
        yield world


def _to(mailbox: MemoryMailbox, recipient: str) -> list[str]:
    return [m.body for m in mailbox.messages if m.recipient == recipient]


class TestTheAttackerRepro:
    def test_payment_and_transfer_refused_nothing_moved_customer_told(self, world: World) -> None:
        before = world.moved()
        auth = world.bearer(world.away)  # password reused elsewhere, new network
        invented = {"X-Device-Id": str(uuid.uuid4())}
        paid = world.pay(world.away, auth | invented, 50_000, "steal-1")
        sent = world.send(world.away, auth | invented, 50_000, "steal-2")
        for refused, action in ((paid, "payment"), (sent, "transfer")):
            assert refused.status_code == 403, refused.text
            body = refused.json()
            assert body["error"] == "step_up_required"
            assert body["details"]["purpose"] == action
            assert body["details"]["methods"] == ["device_signature", "sms_otp"]
        assert world.moved() == before
        # an invented device id in the body is no proof either: no such device
        forged = world.send(
            world.away,
            auth,
            50_000,
            "steal-3",
            device_id=str(uuid.uuid4()),
            nonce="x" * 43,
            signature="a.b.c",
        )
        assert forged.status_code == 404 and forged.json()["error"] == "unknown_device"
        assert world.moved() == before
        # the customer was told of the login on both verified contacts, with a "not me" way
        mail = _to(world.mailbox, world.victim.email)[-1]
        assert "198.51.100.0/24" in mail and "POST /v1/auth/not-me" in mail
        assert PASSWORD not in mail
        sms = _to(world.mailbox, world.victim.phone)[-1]
        assert "new sign-in" in sms and "198.51.100.0/24" in sms

    def test_the_refused_key_is_not_stuck(self, world: World) -> None:
        auth = world.bearer(world.home)
        assert world.send(world.home, auth, 1_000, "k1").status_code == 403
        proof = signed_body(world.rt, world.victim, SensitiveAction.TRANSFER)
        again = world.send(world.home, auth, 1_000, "k1", **proof)
        assert again.status_code == 201, again.text
        replay = world.send(world.home, auth, 1_000, "k1")  # the proof is not in the hash
        assert replay.status_code == 201 and replay.json()["id"] == again.json()["id"]
        assert balance_of(world.rt, world.mule.wallet) == 1_000


class TestProofs:
    def test_a_proven_device_pays_and_sends(self, world: World) -> None:
        auth = world.bearer(world.home)
        paid = world.pay(
            world.home,
            auth,
            50_000,
            "p1",
            **signed_body(world.rt, world.victim, SensitiveAction.PAY),
        )
        sent = world.send(
            world.home,
            auth,
            20_000,
            "t1",
            **signed_body(world.rt, world.victim, SensitiveAction.TRANSFER),
        )
        assert (paid.status_code, sent.status_code) == (201, 201), (paid.text, sent.text)
        assert balance_of(world.rt, world.victim.wallet) == 30_000

    def test_a_signature_for_another_action_is_refused(self, world: World) -> None:
        auth = world.bearer(world.home)
        wrong = world.send(
            world.home,
            auth,
            20_000,
            "t1",
            **signed_body(world.rt, world.victim, SensitiveAction.PAY),
        )
        assert wrong.status_code == 403 and wrong.json()["error"] == "device_challenge_invalid"
        assert balance_of(world.rt, world.victim.wallet) == 100_000

    def test_sms_step_up_then_transfer(self, world: World) -> None:
        auth = world.bearer(world.away)
        assert world.send(world.away, auth, 10_000, "t1").status_code == 403
        world.step_up(world.away, auth, "transfer")
        sent = world.send(world.away, auth, 10_000, "t1")
        assert sent.status_code == 201, sent.text
        # the step-up was spent on that transfer
        assert world.send(world.away, auth, 10_000, "t2").status_code == 403
        assert balance_of(world.rt, world.mule.wallet) == 10_000

    def test_small_payments_need_no_proof(self, world: World) -> None:
        auth = world.bearer(world.home)
        assert world.pay(world.home, auth, 3_000, "p1").status_code == 201
        assert world.pay(world.home, auth, 3_001, "p2").status_code == 403
        assert balance_of(world.rt, world.victim.wallet) == 97_000

    def test_the_header_no_longer_exists(self, world: World) -> None:
        spec = world.home.get("/openapi.json").json()
        parameters = spec["paths"]["/v1/wallets/{wallet_id}/payments"]["post"]["parameters"]
        assert "X-Device-Id" not in {p["name"] for p in parameters}


class TestRecentPasswordChange:
    NEW = "a brand new passphrase 2026"

    def change(self, world: World, auth: dict[str, str], **extra: Any) -> httpx.Response:
        return world.home.post(
            "/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": self.NEW} | extra,
            headers=auth,
        )

    def test_forces_proof_even_for_small_payments(self, world: World, clock: ManualClock) -> None:
        auth = world.bearer(world.home)
        unsigned = self.change(world, auth)
        assert unsigned.status_code == 403 and unsigned.json()["error"] == "step_up_required"
        changed = self.change(
            world, auth, **signed_body(world.rt, world.victim, SensitiveAction.CHANGE_PASSWORD)
        )
        assert changed.status_code == 200, changed.text
        assert "password was changed" in _to(world.mailbox, world.victim.email)[-1]
        assert world.home.get("/v1/me", headers=auth).status_code == 401  # signed out
        fresh = world.login(world.home, self.NEW).json()
        auth = {"Authorization": f"Bearer {fresh['access_token']}"}
        small = world.pay(world.home, auth, 500, "p1")
        assert small.status_code == 403
        assert small.json()["details"]["recent_changes"] == ["password"]
        signed = world.pay(
            world.home, auth, 500, "p1", **signed_body(world.rt, world.victim, SensitiveAction.PAY)
        )
        assert signed.status_code == 201
        clock.advance(hours=49)  # after the cool-off the free amount applies again
        fresh = world.login(world.home, self.NEW).json()
        auth = {"Authorization": f"Bearer {fresh['access_token']}"}
        assert world.pay(world.home, auth, 500, "p2").status_code == 201
        assert balance_of(world.rt, world.victim.wallet) == 99_000

    def test_a_partial_proof_is_a_documented_400_and_changes_nothing(self, world: World) -> None:
        """Found by schemathesis: a nonce without a signature was an undocumented 400, and a
        device_id alone was silently ignored."""
        auth = world.bearer(world.home)
        proof = signed_body(world.rt, world.victim, SensitiveAction.CHANGE_PASSWORD)
        for partial in (
            {"device_id": proof["device_id"]},
            {"nonce": proof["nonce"]},
            {"device_id": proof["device_id"], "nonce": proof["nonce"]},
        ):
            answer = self.change(world, auth, **partial)
            assert (answer.status_code, answer.json()["error"]) == (400, "proof_incomplete")
        documented = world.home.get("/openapi.json").json()
        assert "400" in documented["paths"]["/v1/auth/password"]["post"]["responses"]
        assert world.login(world.home).status_code == 200

    def test_weak_new_password_is_422_and_changes_nothing(self, world: World) -> None:
        auth = world.bearer(world.home)
        weak = world.home.post(
            "/v1/auth/password",
            headers=auth,
            json={
                "current_password": PASSWORD,
                "new_password": "password1234",
                **signed_body(world.rt, world.victim, SensitiveAction.CHANGE_PASSWORD),
            },
        )
        assert weak.status_code == 422 and weak.json()["error"] == "weak_password"
        assert world.login(world.home).status_code == 200


class TestLoginThrottling:
    def test_five_failures_per_account_then_429_with_retry_after(
        self, world: World, clock: ManualClock
    ) -> None:
        for _ in range(5):
            assert world.login(world.away, "wrong password 123").status_code == 401
        blocked = world.login(world.away)  # even the right password now
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["Retry-After"]) <= 900
        assert blocked.json()["details"]["scope"] == "account"
        clock.advance(minutes=16)
        assert world.login(world.away).status_code == 200

    def test_unknown_accounts_are_throttled_the_same(self, world: World) -> None:
        ghost = "nobody@example.jp"
        answers = [world.login(world.away, "guess 12345678", email=ghost) for _ in range(6)]
        assert [a.status_code for a in answers] == [401] * 5 + [429]
        assert answers[0].json() == world.login(world.home, "guess 1").json()

    def test_per_ip_failures_across_accounts(self, world: World, rt: Runtime) -> None:
        for n in range(20):
            world.login(world.away, "leaked elsewhere", email=f"user{n}@example.jp")
        assert world.login(world.away).status_code == 429
        assert world.login(world.home).status_code == 200  # another network is not affected


class TestNotMe:
    def test_revokes_sessions_and_locks_the_wallet(self, world: World) -> None:
        auth = world.bearer(world.away)
        mail = _to(world.mailbox, world.victim.email)[-1]
        token = re.search(r"token ([0-9a-f-]{36}\.\d+\.[0-9a-f]{64})", mail)
        assert token is not None
        answer = world.home.post("/v1/auth/not-me", json={"token": token.group(1)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["wallets_locked"] == 1 and answer.json()["sessions_revoked"] >= 2
        assert world.home.get("/v1/me", headers=auth).status_code == 401
        with world.rt.db.session() as session:
            assert (
                wallets.get_wallet(session, world.victim.wallet.id).status
                == WalletStatus.LOCKED.value
            )
            live = session.scalar(
                select(func.count())
                .select_from(AccessToken)
                .where(AccessToken.revoked_at.is_(None))
            )
        assert live == 0
        real = token.group(1)
        flipped = "1" if real[-1] == "0" else "0"  # always a different MAC (was 1 in 16 equal)
        forged = world.home.post("/v1/auth/not-me", json={"token": real[:-1] + flipped})
        assert forged.status_code == 400 and forged.json()["error"] == "invalid_not_me_token"

    def test_a_known_network_is_not_announced(self, world: World) -> None:
        before = len(world.mailbox.messages)
        world.bearer(world.home)
        assert len(world.mailbox.messages) == before


class TestRecentPhoneChange:
    def test_only_the_device_counts_while_the_phone_is_new(self, world: World) -> None:
        proof = signed(world.rt, world.victim, SensitiveAction.CHANGE_PHONE)
        assert proof is not None
        with world.rt.db.unit_of_work() as session:
            change = identity.start_phone_change(
                session,
                world.victim.user,
                phone="070-8999-0001",
                device_id=proof.device_id,
                nonce=proof.nonce,
                signature=proof.signature,
            )
        code = CODE.search(world.mailbox.last_to("+817089990001").body)
        assert code is not None
        with world.rt.db.unit_of_work() as session:
            identity.confirm_phone_change(session, world.victim.user, change.id, code.group(1))
        world.victim.phone = "+817089990001"
        auth = world.bearer(world.home)
        world.step_up(world.home, auth, "payment")  # whoever holds the new number can do this
        refused = world.pay(world.home, auth, 500, "p1")
        assert refused.status_code == 403, refused.text
        assert refused.json()["details"]["methods"] == ["device_signature"]
        assert refused.json()["details"]["recent_changes"] == ["phone"]
        signed_pay = world.pay(
            world.home, auth, 500, "p1", **signed_body(world.rt, world.victim, SensitiveAction.PAY)
        )
        assert signed_pay.status_code == 201
        assert balance_of(world.rt, world.victim.wallet) == 99_500
