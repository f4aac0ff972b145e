"""Operator API: batch posting, verification, credits, refunds; customers are refused."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from kouza.api.app import create_app
from kouza.controls.models import AuditEvent, OperatorRole
from kouza.controls.service import controls
from kouza.identity.devices import SensitiveAction
from kouza.kit.notify import MemoryMailbox
from kouza.ledger.models import AccountKind
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from tests.factories import PASSWORD, balance_of, customer, signed_body


def _operator(rt: Runtime, name: str, role: OperatorRole) -> dict[str, str]:
    with rt.db.unit_of_work() as session:
        _, token = controls.create_operator(session, name=name, role=role, actor="test")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(rt: Runtime) -> TestClient:
    return TestClient(create_app(rt))


def _entry(source: str, destination: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "transfer",
        "legs": [
            {"account": source, "amount": -amount},
            {"account": destination, "amount": amount},
        ],
        **extra,
    }


def _audit_count(rt: Runtime) -> int:
    with rt.db.unit_of_work() as session:
        return session.query(AuditEvent).count()


class TestBatchPosting:
    def test_posts_all_entries_atomically(
        self, rt: Runtime, mailbox: MemoryMailbox, client: TestClient
    ) -> None:
        admin = _operator(rt, "admin", OperatorRole.ADMIN)
        alice = customer(rt, mailbox, balance=10_000)
        bob = customer(rt, mailbox)
        a, b = f"wallet:{alice.wallet.id}", f"wallet:{bob.wallet.id}"
        # bob spends in the same batch money he receives in it: batches net per account
        entries = [_entry(a, b, 1_000) for _ in range(10)] + [_entry(b, a, 500) for _ in range(4)]
        audits = _audit_count(rt)
        response = client.post(
            "/v1/ops/ledger/batches",
            json={"reason": "settlement", "entries": entries},
            headers=admin | {"Idempotency-Key": "batch-1"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["count"] == 14
        assert (balance_of(rt, alice.wallet), balance_of(rt, bob.wallet)) == (2_000, 8_000)
        assert _audit_count(rt) == audits + 1
        with rt.db.unit_of_work() as session:
            assert ledger.verify(session).ok

    def test_batch_is_all_or_nothing(
        self, rt: Runtime, mailbox: MemoryMailbox, client: TestClient
    ) -> None:
        admin = _operator(rt, "admin", OperatorRole.ADMIN)
        alice = customer(rt, mailbox, balance=3_000)
        bob = customer(rt, mailbox)
        a, b = f"wallet:{alice.wallet.id}", f"wallet:{bob.wallet.id}"
        body = {"reason": "settlement", "entries": [_entry(a, b, 1_000) for _ in range(4)]}
        audits = _audit_count(rt)
        response = client.post(
            "/v1/ops/ledger/batches", json=body, headers=admin | {"Idempotency-Key": "batch-2"}
        )
        assert response.status_code == 422
        assert response.json()["error"] == "insufficient_funds"
        assert (balance_of(rt, alice.wallet), balance_of(rt, bob.wallet)) == (3_000, 0)
        assert _audit_count(rt) == audits

    def test_replay_and_conflict(
        self, rt: Runtime, mailbox: MemoryMailbox, client: TestClient
    ) -> None:
        admin = _operator(rt, "admin", OperatorRole.ADMIN)
        alice = customer(rt, mailbox, balance=3_000)
        bob = customer(rt, mailbox)
        a, b = f"wallet:{alice.wallet.id}", f"wallet:{bob.wallet.id}"
        body = {"reason": "settlement", "entries": [_entry(a, b, 1_000)]}
        headers = admin | {"Idempotency-Key": "batch-3"}
        first = client.post("/v1/ops/ledger/batches", json=body, headers=headers)
        again = client.post("/v1/ops/ledger/batches", json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201)
        assert first.json() == again.json()
        body["entries"] = [_entry(a, b, 999)]
        conflict = client.post("/v1/ops/ledger/batches", json=body, headers=headers)
        assert (conflict.status_code, conflict.json()["error"]) == (409, "idempotency_conflict")
        assert (balance_of(rt, alice.wallet), balance_of(rt, bob.wallet)) == (2_000, 1_000)

    @pytest.mark.parametrize(
        "entry",
        [
            {
                "kind": "transfer",
                "legs": [
                    {"account": "operator_float", "amount": -5},
                    {"account": "nowhere", "amount": 5},
                ],
            },
            {
                "kind": "transfer",
                "legs": [
                    {"account": "operator_float", "amount": -5},
                    {"account": "fees", "amount": 4},
                ],
            },
            {
                "kind": "transfer",
                "legs": [
                    {"account": "operator_float", "amount": 0},
                    {"account": "fees", "amount": 0},
                ],
            },
            {
                "kind": "teleport",
                "legs": [
                    {"account": "operator_float", "amount": -5},
                    {"account": "fees", "amount": 5},
                ],
            },
            {
                "kind": "transfer",
                "legs": [
                    {"account": "operator_float", "amount": 1.5},
                    {"account": "fees", "amount": -1.5},
                ],
            },
        ],
    )
    def test_bad_entries_refused(
        self, rt: Runtime, client: TestClient, entry: dict[str, Any]
    ) -> None:
        admin = _operator(rt, "admin", OperatorRole.ADMIN)
        with rt.db.unit_of_work() as session:
            ledger.system_account(session, AccountKind.OPERATOR_FLOAT)
            ledger.system_account(session, AccountKind.FEES)
        response = client.post(
            "/v1/ops/ledger/batches",
            json={"reason": "x", "entries": [entry]},
            headers=admin | {"Idempotency-Key": "bad"},
        )
        assert 400 <= response.status_code < 500
        assert response.json()["message"]
        with rt.db.unit_of_work() as session:
            assert ledger.verify(session).entries == 0
        assert _audit_count(rt) == 1  # only the operator's creation


class TestAccessControl:
    def test_customer_token_refused(
        self, rt: Runtime, mailbox: MemoryMailbox, client: TestClient
    ) -> None:
        alice = customer(rt, mailbox)
        token = client.post(
            "/v1/auth/login", json={"email": alice.email, "password": PASSWORD}
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        response = client.get("/v1/ops/ledger/verify", headers=headers)
        assert (response.status_code, response.json()["error"]) == (401, "invalid_operator_token")

    def test_analyst_reads_but_cannot_move_money(
        self, rt: Runtime, mailbox: MemoryMailbox, client: TestClient
    ) -> None:
        analyst = _operator(rt, "ana", OperatorRole.ANALYST)
        alice = customer(rt, mailbox)
        assert client.get("/v1/ops/ledger/verify", headers=analyst).json()["ok"] is True
        response = client.post(
            f"/v1/ops/wallets/{alice.wallet.id}/credits",
            json={"amount": 100, "reason": "x"},
            headers=analyst | {"Idempotency-Key": "c1"},
        )
        assert (response.status_code, response.json()["error"]) == (403, "operator_role_required")
        assert balance_of(rt, alice.wallet) == 0

    def test_no_token(self, client: TestClient) -> None:
        assert client.get("/v1/ops/ledger/verify").status_code == 401


CALL_CENTRE_LOOKUP = {"bank_code": "0005", "branch": "001", "account_number": "1234567"}


class TestCallCentreTokens:
    """A call-centre token opens the call-centre endpoints and nothing else."""

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("get", "/v1/ops/ledger/verify", None),
            ("get", "/v1/ops/cases", None),
            ("get", "/v1/ops/switches", None),
            ("get", "/v1/ops/enquiries", None),
            ("get", "/v1/ops/settings", None),
            ("get", "/v1/ops/reports/regulator?from=2026-12-01&to=2026-12-02", None),
            ("get", "/v1/ops/risk/shadow?since=2026-12-01T00:00:00Z", None),
            ("get", "/v1/ops/risk/decisions/1", None),
            ("get", "/v1/ops/bank-reviews", None),
            ("post", "/v1/ops/risk/assess", {"type": "signup", "at": "2026-12-01T00:00:00Z"}),
            (
                "post",
                "/v1/ops/cases",
                {"wallet_id": "00000000-0000-0000-0000-000000000000", "summary": "x"},
            ),
        ],
    )
    def test_refused_everywhere_else(
        self, rt: Runtime, client: TestClient, method: str, path: str, body: Any
    ) -> None:
        caller = _operator(rt, "cc", OperatorRole.CALL_CENTRE)
        before = _audit_count(rt)
        response = client.request(method.upper(), path, json=body, headers=caller)
        assert (response.status_code, response.json()["error"]) == (403, "operator_role_required")
        assert _audit_count(rt) == before

    def test_the_call_centre_endpoints_answer(
        self, rt: Runtime, mailbox: MemoryMailbox, client: TestClient
    ) -> None:
        caller = _operator(rt, "cc", OperatorRole.CALL_CENTRE)
        alice = customer(rt, mailbox)
        lookup = client.post("/v1/ops/accounts/lookup", json=CALL_CENTRE_LOOKUP, headers=caller)
        assert (lookup.status_code, lookup.json()["linked"]) == (200, False)
        taken = client.post(
            "/v1/ops/enquiries",
            json={
                "caller_name": "山田",
                "notes": "is my account linked?",
                "account": CALL_CENTRE_LOOKUP,
            },
            headers=caller,
        )
        assert taken.status_code == 201, taken.text
        trace = client.get(f"/v1/ops/wallets/{alice.wallet.id}/spend-trace", headers=caller)
        assert (trace.status_code, trace.json()) == (200, [])

    def test_analysts_still_read_everything(self, rt: Runtime, client: TestClient) -> None:
        analyst = _operator(rt, "ana", OperatorRole.ANALYST)
        for path in (
            "/v1/ops/cases",
            "/v1/ops/enquiries",
            "/v1/ops/settings",
            "/v1/ops/bank-reviews",
        ):
            assert client.get(path, headers=analyst).status_code == 200, path


class TestCreditAndRefund:
    def test_credit_pay_refund_audited(
        self, rt: Runtime, mailbox: MemoryMailbox, client: TestClient
    ) -> None:
        admin = _operator(rt, "admin", OperatorRole.ADMIN)
        alice = customer(rt, mailbox)
        shop = client.post(
            "/v1/ops/merchants",
            json={"name": "Bic Camera", "category": "electronics"},
            headers=admin,
        )
        assert shop.status_code == 201
        credit = client.post(
            f"/v1/ops/wallets/{alice.wallet.id}/credits",
            json={"amount": 20_000, "reason": "goodwill"},
            headers=admin | {"Idempotency-Key": "c1"},
        )
        assert credit.status_code == 201
        qr = client.get(
            f"/v1/ops/merchants/{shop.json()['id']}/qr", params={"amount": 12_000}, headers=admin
        ).json()["qr"]
        token = client.post(
            "/v1/auth/login", json={"email": alice.email, "password": PASSWORD}
        ).json()
        paid = client.post(
            f"/v1/wallets/{alice.wallet.id}/payments",
            json={"qr": qr} | signed_body(rt, alice, SensitiveAction.PAY),
            headers={"Authorization": f"Bearer {token['access_token']}", "Idempotency-Key": "p1"},
        )
        assert paid.status_code == 201
        refund = client.post(
            f"/v1/ops/payments/{paid.json()['id']}/refunds",
            json={"amount": 2_000, "reason": "returned cable"},
            headers=admin | {"Idempotency-Key": "r1"},
        )
        assert refund.status_code == 201
        assert balance_of(rt, alice.wallet) == 20_000 - 12_000 + 2_000
        with rt.db.unit_of_work() as session:
            actions = [e.action for e in controls.audit_trail(session)]
        assert actions[:3] == ["payment.refund", "wallet.credit", "merchant.create"]


class TestIncidentEndpoints:
    def test_switch_lock_case_over_http(
        self, rt: Runtime, mailbox: MemoryMailbox, client: TestClient
    ) -> None:
        admin = _operator(rt, "admin", OperatorRole.ADMIN)
        analyst = _operator(rt, "ana", OperatorRole.ANALYST)
        suspect = customer(rt, mailbox, balance=30_000)
        switch = client.put(
            "/v1/ops/switches",
            headers=admin,
            json={"scope": "bank_links", "target": "0125", "active": True, "reason": "incident"},
        )
        assert (switch.status_code, switch.json()["active"]) == (200, True)
        assert (
            client.put(
                "/v1/ops/switches",
                headers=analyst,
                json={"scope": "all_links", "active": True, "reason": "x"},
            ).status_code
            == 403
        )
        assert [s["target"] for s in client.get("/v1/ops/switches", headers=analyst).json()] == [
            "0125"
        ]
        bad = client.put(
            "/v1/ops/switches",
            headers=admin,
            json={"scope": "everything", "active": True, "reason": "x"},
        )
        assert bad.status_code == 422
        # a kill switch is switched by a JSON boolean: 0 was read as false (found by schemathesis)
        numeric = client.put(
            "/v1/ops/switches",
            headers=admin,
            json={"scope": "bank_links", "target": "0125", "active": 0, "reason": "x"},
        )
        assert (numeric.status_code, numeric.json()["errors"][0]["field"]) == (422, "body.active")
        assert [
            s["target"] for s in client.get("/v1/ops/switches", headers=admin).json() if s["active"]
        ] == ["0125"]
        locked = client.post(
            f"/v1/ops/wallets/{suspect.wallet.id}/lock", headers=admin, json={"reason": "pattern"}
        )
        assert (locked.status_code, locked.json()["status"]) == (200, "locked")
        assert balance_of(rt, suspect.wallet) == 30_000
        case = client.post(
            "/v1/ops/cases",
            headers=analyst,
            json={"wallet_id": str(suspect.wallet.id), "summary": "alert"},
        )
        assert case.status_code == 201
        moved = client.post(
            f"/v1/ops/cases/{case.json()['id']}/status",
            headers=analyst,
            json={"status": "cleared", "note": "holder confirmed it was her"},
        )
        assert moved.json()["status"] == "cleared"
        wrong = client.post(
            f"/v1/ops/cases/{case.json()['id']}/status",
            headers=analyst,
            json={"status": "confirmed_fraud", "note": "x"},
        )
        assert (wrong.status_code, wrong.json()["error"]) == (409, "invalid_case_transition")
        unlocked = client.post(
            f"/v1/ops/wallets/{suspect.wallet.id}/unlock", headers=admin, json={"reason": "cleared"}
        )
        assert unlocked.json()["status"] == "active"
