"""The load test's customers for locust (started by ``benchmarks/load.py``; not alone).

One locust user is one seeded customer (``KOUZA_LOAD_SEED``, written by
``benchmarks/load_seed.py``, with a session already open): it runs the mix below at
``KOUZA_LOAD_RATE / customers`` operations per second, Poisson arrivals (closed loop: a server
that falls behind shows as an achieved rate below the offered one). Every request is
checked for the status the API documents for success; anything else is a failure.

| operation | weight | requests |
|---|---:|---|
| statement (last 20 lines) | 18 | GET /v1/wallets/{id}/statement |
| balance | 14 | GET /v1/wallets/{id} |
| QR payment ¥100–¥2,000 (no proof under ¥3,000) | 22 | POST …/payments |
| QR payment ¥3,100–¥6,000 (device-signed) | 3 | POST /v1/devices/{id}/challenges, POST …/payments |
| transfer ¥100–¥1,000 to another customer (device-signed) | 10 | challenge, POST …/transfers |
| top-up ¥1,000–¥3,000 from the linked bank (device-signed) | 10 | challenge, POST …/topups |
| risk assessment (operator API) | 20 | POST /v1/ops/risk/assess |
| login | 2 | POST /v1/auth/login (argon2id, production parameters) |

Money-moving calls carry an ``Idempotency-Key``; a transport error or a 5xx is retried twice
with the same key (a fresh device signature each time: a proof is single-use), as a phone app
would — the crash run relies on it, the other runs should never need it. Every request is
recorded (start time, name, milliseconds, ok, error) and written to ``KOUZA_LOAD_RECORD`` as JSON
when locust quits; ``benchmarks/load.py`` computes the figures from that file.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from joserfc import jws
from joserfc.jwk import ECKey
from locust import FastHttpUser, events, task

SEED = json.loads(Path(os.environ["KOUZA_LOAD_SEED"]).read_text())
CUSTOMERS: list[dict[str, Any]] = SEED["customers"]
MERCHANTS: list[dict[str, str]] = SEED["merchants"]
RATE = float(os.environ["KOUZA_LOAD_RATE"])
"""Operations per second offered by all users together."""
OPERATOR_TOKEN = os.environ["KOUZA_LOAD_OPERATOR_TOKEN"]
RECORD = Path(os.environ["KOUZA_LOAD_RECORD"])
RETRIES = 2
AUX = "(aux) "
"""Prefix of a request that is part of an operation but not the operation itself."""

_next_customer = itertools.count()
_records: list[tuple[float, str, float, bool, str]] = []


@events.request.add_listener  # type: ignore[untyped-decorator]
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    error = "" if exception is None else f"{type(exception).__name__}: {exception}"[:300]
    _records.append((start_time or time.time(), name, response_time, exception is None, error))


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _dump(**_: Any) -> None:
    RECORD.write_text(json.dumps(_records))


class Refused(Exception):
    """An answer other than the documented success."""


class Customer(FastHttpUser):
    """A seeded customer with a linked bank account and a device key."""

    per_user_rate = RATE / len(CUSTOMERS)

    def wait_time(self) -> float:
        """Poisson arrivals at ``per_user_rate`` (together: Poisson at ``RATE``), each user
        starting at a random phase; a user whose operations take longer than the gaps falls
        behind (closed loop), and the achieved rate shows it. (``constant_throughput`` kept
        every user in the phase it was spawned in: bursts of all users at once.)"""
        self.due += random.expovariate(self.per_user_rate)
        return max(0.0, self.due - time.monotonic())

    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.me = CUSTOMERS[next(_next_customer) % len(CUSTOMERS)]
        self.wallet = self.me["wallet_id"]
        self.device_id = self.me["device_id"]
        self.key = ECKey.import_key(self.me["device_jwk"])
        self.due = time.monotonic()
        gevent.sleep(random.expovariate(self.per_user_rate))
        self.due = time.monotonic()
        self.token: str = self.me["token"]
        """Issued by the seeding (the app is signed in already); the ``login`` task renews it."""

    # --- plumbing ---------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _call(
        self,
        method: str,
        path: str,
        name: str,
        expect: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """One request; a failure is recorded (and None returned) unless the status matches."""
        with self.client.request(
            method,
            path,
            name=name,
            json=body,
            headers={**self._auth(), **(headers or {})},
            catch_response=True,
        ) as response:
            if response.status_code != expect:
                detail = (response.text or "")[:200]
                response.failure(Refused(f"{response.status_code} {detail}"))
                return None
            response.success()
            result: dict[str, Any] = response.json() if response.text else {}
            return result

    def _signed(self, action: str) -> dict[str, str] | None:
        """A device signature over a fresh challenge for ``action`` (ADR 0021)."""
        challenge = self._call(
            "POST",
            f"/v1/devices/{self.device_id}/challenges",
            AUX + "device challenge",
            201,
            {"action": action},
        )
        if challenge is None:
            return None
        payload = {key: challenge[key] for key in ("nonce", "action", "device_id", "user_id")}
        signature = jws.serialize_compact(
            {"alg": "ES256"}, json.dumps(payload).encode(), self.key, algorithms=["ES256"]
        )
        return {"device_id": self.device_id, "nonce": challenge["nonce"], "signature": signature}

    def _money(self, name: str, path: str, body: dict[str, Any], action: str | None) -> None:
        """A money-moving call with its Idempotency-Key, retried with the same key after a
        transport error or a 5xx (a fresh proof each time)."""
        key = str(uuid.uuid4())
        for attempt in range(RETRIES + 1):
            proof: dict[str, str] = {}
            if action is not None:
                signed = self._signed(action)
                if signed is None:
                    return
                proof = signed
            label = name if attempt == 0 else f"(retry) {name}"
            with self.client.post(
                path,
                name=label,
                json={**body, **proof},
                headers={**self._auth(), "Idempotency-Key": key},
                catch_response=True,
            ) as response:
                status = response.status_code
                if status == 201:
                    answer = response.json()
                    if answer.get("review"):
                        response.failure(Refused(f"held for review: {answer['review']}"))
                    else:
                        response.success()
                    return
                response.failure(Refused(f"{status} {(response.text or '')[:200]}"))
                if status and status < 500:
                    return
            time.sleep(1.0)

    # --- the mix ----------------------------------------------------------------------------

    def login(self) -> None:
        with self.client.post(
            "/v1/auth/login",
            name="login",
            json={"email": self.me["email"], "password": self.me["password"]},
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(Refused(f"{response.status_code} {(response.text or '')[:200]}"))
                return
            self.token = response.json()["access_token"]
            response.success()

    @task(2)
    def login_again(self) -> None:
        self.login()

    @task(18)
    def statement(self) -> None:
        self._call("GET", f"/v1/wallets/{self.wallet}/statement?limit=20", "statement", 200)

    @task(14)
    def balance(self) -> None:
        self._call("GET", f"/v1/wallets/{self.wallet}", "balance", 200)

    @task(22)
    def pay_small(self) -> None:
        merchant = random.choice(MERCHANTS)
        body = {"qr": merchant["qr"], "amount": random.randrange(100, 2_001, 10)}
        self._money("payment", f"/v1/wallets/{self.wallet}/payments", body, None)

    @task(3)
    def pay_signed(self) -> None:
        merchant = random.choice(MERCHANTS)
        body = {"qr": merchant["qr"], "amount": random.randrange(3_100, 6_001, 100)}
        self._money("payment (signed)", f"/v1/wallets/{self.wallet}/payments", body, "payment")

    @task(10)
    def transfer(self) -> None:
        other = random.choice(CUSTOMERS)
        if other["wallet_id"] == self.wallet:
            return
        body = {
            "to_wallet_id": other["wallet_id"],
            "amount": random.randrange(100, 1_001, 10),
            "message": "load",
        }
        self._money("transfer", f"/v1/wallets/{self.wallet}/transfers", body, "transfer")

    @task(10)
    def top_up(self) -> None:
        body = {"link_id": self.me["link_id"], "amount": random.randrange(1_000, 3_001, 1_000)}
        self._money("top-up", f"/v1/wallets/{self.wallet}/topups", body, "charge")

    @task(20)
    def assess(self) -> None:
        merchant = random.choice(MERCHANTS)
        event = {
            "type": "payment",
            "at": datetime.now(UTC).isoformat(),
            "wallet": self.wallet,
            "device": self.device_id,
            "ip": "127.0.0.1",
            "merchant": merchant["id"],
            "category": merchant["category"],
            "amount": random.randrange(100, 5_001, 10),
        }
        with self.client.post(
            "/v1/ops/risk/assess",
            name="risk assess",
            json=event,
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(Refused(f"{response.status_code} {(response.text or '')[:200]}"))
            else:
                response.success()
