"""Holder and counter functions: link lookup, revoke with a signed webhook, suspend, not me."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kouza.bank.app import create_bank_app
from kouza.bank.core import core
from kouza.bank.legacy_form import legacy_linking
from kouza.bank.models import Account, Alert, BankOutboxMessage, Link
from kouza.bank.runtime import BankRuntime
from kouza.bank.settings import BankSettings
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.protocol.webhooks import (
    MEDIA_TYPE,
    MemoryReplayCache,
    WebhookRejected,
    verify_event,
)
from tests.bank.conftest import STAFF_TOKEN, WebhookReceiver
from tests.bank.helpers import WEBHOOK_URL, Holder, make_bank, make_client, make_holder

STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}
ISSUER = BankSettings().issuer
ACCOUNT = "/v1/counter/banks/0125/branches/100/accounts/1234567"


@pytest.fixture
def api(bank_rt: BankRuntime) -> Iterator[TestClient]:
    with TestClient(create_bank_app(bank_rt)) as client:
        yield client


@pytest.fixture
def setup(bank_rt: BankRuntime) -> tuple[tuple[str, str], Holder, str]:
    make_bank(bank_rt)
    holder = make_holder(bank_rt)
    auth = make_client(bank_rt)
    with bank_rt.db.unit_of_work() as session:
        link = legacy_linking.link(
            session,
            client=core.client(session, auth[0]),
            bank_code="0125",
            form=holder.form(wallet_reference="w-42"),
            source="ip:198.51.100.1",
        )
        link_id = str(link.id)
    return auth, holder, link_id


def debit(api: TestClient, auth: tuple[str, str], link_id: str, amount: int = 1_000) -> Any:
    return api.post(
        f"/v1/links/{link_id}/debits",
        auth=auth,
        json={"amount": amount},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


def verify(
    api: TestClient, token: str, now: Any, cache: MemoryReplayCache, audience: str = "kouza-wallet"
) -> Any:
    return verify_event(
        token,
        api.get("/.well-known/jwks.json").json(),
        now=now,
        replay_cache=cache,
        audience=audience,
        issuer=ISSUER,
    )


class TestLinksOnAnAccount:
    def test_the_counter_lists_every_link_with_operator_and_reference(
        self,
        api: TestClient,
        setup: Any,
    ) -> None:
        _, _, link_id = setup

        response = api.get(ACCOUNT + "/links", headers=STAFF)

        assert response.status_code == 200
        [link] = response.json()
        assert (link["id"], link["status"], link["operator_client_id"]) == (
            link_id,
            "active",
            "kouza-wallet",
        )
        assert link["operator_name"] == "ドコモ口座" and link["notice_reference"].startswith("NM-")

    def test_counter_routes_need_the_staff_token(self, api: TestClient, setup: Any) -> None:
        auth, _, _ = setup

        assert api.get(ACCOUNT + "/links").status_code == 401
        assert api.get(ACCOUNT + "/links", headers={"Authorization": "Bearer x"}).status_code == 401
        assert api.get(ACCOUNT + "/links", auth=auth).status_code == 401

    def test_unknown_and_malformed_accounts(self, api: TestClient, setup: Any) -> None:
        unknown = api.get(ACCOUNT.replace("1234567", "7654321") + "/links", headers=STAFF)
        malformed = api.get(ACCOUNT.replace("1234567", "12345") + "/links", headers=STAFF)

        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_account"
        assert malformed.status_code == 400
        assert malformed.json()["error"] == "invalid_bank_data"


class TestRevoke:
    def test_debits_stop_at_once_and_the_wallet_gets_a_verifiable_webhook(
        self,
        api: TestClient,
        setup: Any,
        webhooks: WebhookReceiver,
        clock: ManualClock,
    ) -> None:
        auth, _, link_id = setup
        assert debit(api, auth, link_id).status_code == 201

        revoked = api.post(
            f"/v1/counter/links/{link_id}/revoke",
            headers=STAFF,
            json={"reason": "holder request at branch"},
        )
        after = debit(api, auth, link_id)

        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        assert after.status_code == 422 and after.json()["error"] == "link_not_active"
        [request] = webhooks.requests
        assert str(request.url) == WEBHOOK_URL
        assert request.headers["content-type"] == MEDIA_TYPE
        event = verify(api, request.content.decode(), clock.now(), MemoryReplayCache())
        assert (event.type, event.link_id, event.operator_reference) == (
            "link.revoked",
            link_id,
            "w-42",
        )
        assert (event.bank_code, event.aud, event.reason) == (
            "0125",
            "kouza-wallet",
            "holder request at branch",
        )
        assert api.get(f"/v1/links/{link_id}", auth=auth).json()["status"] == "revoked"

    def test_tampered_replayed_stale_and_misaddressed_webhooks_are_rejected(
        self,
        api: TestClient,
        setup: Any,
        webhooks: WebhookReceiver,
        clock: ManualClock,
    ) -> None:
        _, _, link_id = setup
        api.post(f"/v1/counter/links/{link_id}/revoke", headers=STAFF, json={"reason": "r"})
        token = webhooks.tokens[0]
        header, payload, signature = token.split(".")
        forged = json.loads(_b64decode(payload)) | {"operator_reference": "w-attacker"}
        tampered = ".".join([header, _b64encode(json.dumps(forged).encode()), signature])
        cache = MemoryReplayCache()

        with pytest.raises(WebhookRejected, match="signature"):
            verify(api, tampered, clock.now(), cache)
        assert verify(api, token, clock.now(), cache).link_id == link_id
        with pytest.raises(WebhookRejected, match="replayed"):
            verify(api, token, clock.now(), cache)
        with pytest.raises(WebhookRejected, match="window"):
            verify(api, token, clock.now() + timedelta(minutes=6), MemoryReplayCache())
        with pytest.raises(WebhookRejected, match="audience"):
            verify(api, token, clock.now(), MemoryReplayCache(), audience="other-wallet")
        with pytest.raises(WebhookRejected):
            verify_event(
                token,
                {"keys": []},
                now=clock.now(),
                replay_cache=MemoryReplayCache(),
                audience="kouza-wallet",
                issuer=ISSUER,
            )

    def test_a_failed_webhook_stays_in_the_outbox(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
        webhooks: WebhookReceiver,
    ) -> None:
        _, _, link_id = setup
        webhooks.status_code = 503

        response = api.post(
            f"/v1/counter/links/{link_id}/revoke", headers=STAFF, json={"reason": "r"}
        )

        assert response.status_code == 200
        with bank_rt.db.session() as session:
            row = session.scalars(
                select(BankOutboxMessage).where(BankOutboxMessage.kind == "webhook")
            ).one()
            assert row.delivered_at is None and row.payload and "503" in (row.last_error or "")
            assert "eyJ" not in row.payload  # the signed token is encrypted at rest

    def test_revoking_twice_is_refused(self, api: TestClient, setup: Any) -> None:
        _, _, link_id = setup
        api.post(f"/v1/counter/links/{link_id}/revoke", headers=STAFF, json={"reason": "r"})

        again = api.post(f"/v1/counter/links/{link_id}/revoke", headers=STAFF, json={"reason": "r"})
        unknown = api.post(
            f"/v1/counter/links/{uuid.uuid4()}/revoke", headers=STAFF, json={"reason": "r"}
        )

        assert again.status_code == 422 and unknown.status_code == 404

    def test_the_account_can_be_linked_again_after_revocation(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
    ) -> None:
        auth, holder, link_id = setup
        api.post(f"/v1/counter/links/{link_id}/revoke", headers=STAFF, json={"reason": "r"})

        with bank_rt.db.unit_of_work() as session:
            link = legacy_linking.link(
                session,
                client=core.client(session, auth[0]),
                bank_code="0125",
                form=holder.form(),
                source="s",
            )
            assert link.status == "active"


class TestSuspend:
    def test_suspend_stops_debits_not_credits_and_resume_restarts_them(
        self,
        api: TestClient,
        setup: Any,
        webhooks: WebhookReceiver,
        clock: ManualClock,
    ) -> None:
        auth, _, link_id = setup

        suspended = api.post(
            ACCOUNT + "/operators/kouza-wallet/suspend",
            headers=STAFF,
            json={"reason": "holder asked"},
        )
        refused = debit(api, auth, link_id)
        credit = api.post(
            f"/v1/links/{link_id}/credits",
            auth=auth,
            json={"amount": 500},
            headers={"Idempotency-Key": "c1"},
        )
        resumed = api.post(
            ACCOUNT + "/operators/kouza-wallet/resume",
            headers=STAFF,
            json={"reason": "holder asked"},
        )
        allowed = debit(api, auth, link_id)

        assert [link["status"] for link in suspended.json()] == ["suspended"]
        assert refused.status_code == 422 and refused.json()["details"] == {"status": "suspended"}
        assert credit.status_code == 201
        assert [link["status"] for link in resumed.json()] == ["active"]
        assert allowed.status_code == 201
        cache = MemoryReplayCache()
        assert [verify(api, t, clock.now(), cache).type for t in webhooks.tokens] == [
            "link.suspended",
            "link.resumed",
        ]

    def test_bad_action_or_unknown_operator(self, api: TestClient, setup: Any) -> None:
        bad = api.post(
            ACCOUNT + "/operators/kouza-wallet/pause", headers=STAFF, json={"reason": "x"}
        )
        unknown = api.post(
            ACCOUNT + "/operators/nobody/suspend", headers=STAFF, json={"reason": "x"}
        )

        assert bad.status_code == 400 and unknown.status_code == 404


class TestOverdraftOptIn:
    def test_the_counter_sets_and_unsets_it(
        self, bank_rt: BankRuntime, api: TestClient, setup: Any
    ) -> None:
        on = api.put(
            ACCOUNT + "/overdraft-opt-in", headers=STAFF, json={"debit_may_use_overdraft": True}
        )
        off = api.put(
            ACCOUNT + "/overdraft-opt-in", headers=STAFF, json={"debit_may_use_overdraft": False}
        )

        assert on.json()["debit_may_use_overdraft"] is True
        assert off.json()["debit_may_use_overdraft"] is False
        with bank_rt.db.session() as session:
            assert session.scalars(select(Account.debit_may_use_overdraft)).one() is False


class TestNotMe:
    def test_the_reference_on_a_notice_revokes_the_link_and_alerts(
        self,
        bank_rt: BankRuntime,
        api: TestClient,
        setup: Any,
        mailbox: MemoryMailbox,
        webhooks: WebhookReceiver,
    ) -> None:
        auth, holder, link_id = setup
        notice = mailbox.last_to(holder.email).body
        reference = next(word for word in notice.split() if word.startswith("NM-"))

        anonymous = api.post("/v1/counter/not-me", json={"reference": reference})
        response = api.post(
            "/v1/counter/not-me", json={"reference": reference.lower()}, headers=STAFF
        )

        assert anonymous.status_code == 401
        assert response.status_code == 200 and response.json()["status"] == "revoked"
        assert debit(api, auth, link_id).status_code == 422
        assert len(webhooks.requests) == 1
        with bank_rt.db.session() as session:
            alert = session.scalars(select(Alert)).one()
            assert (alert.kind, alert.subject) == ("holder_disowned_link", link_id)
            assert session.get_one(Link, uuid.UUID(link_id)).revoked_reason == "holder: not me"
        assert (
            api.post("/v1/counter/not-me", json={"reference": "NM-NOPE"}, headers=STAFF).status_code
            == 404
        )


def _b64decode(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
