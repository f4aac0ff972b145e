"""The queue, the case page, the actions from it, and maker-checker approvals."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kouza.console.approvals import approvals
from kouza.console.errors import ApprovalDecided, SelfApproval
from kouza.console.models import Approval, ApprovalAction, ApprovalStatus
from kouza.controls.cases import cases
from kouza.controls.models import AuditEvent, Operator, OperatorRole, SwitchScope
from kouza.controls.switches import switches
from kouza.kit.notify import MemoryMailbox
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.runtime import Runtime
from kouza.wallet.locks import locks
from kouza.wallet.models import Wallet
from tests.console.support import Staff, csrf_of, make_staff, sign_in
from tests.factories import customer


def open_case(rt: Runtime, mailbox: MemoryMailbox) -> tuple[uuid.UUID, uuid.UUID]:
    who = customer(rt, mailbox, device=False)
    other = customer(rt, mailbox, device=False)
    with rt.db.unit_of_work() as session:
        for wallet, device in ((who.wallet.id, "dev-1"), (other.wallet.id, "dev-1")):
            event = RiskEventRecord(
                type="link_attempt",
                at=rt.now(),
                wallet=str(wallet),
                device=device,
                ip="203.0.113.7",
                bank="0125",
                outcome="burst",
            )
            session.add(event)
            session.flush()
            session.add(
                RiskDecisionRecord(
                    event_id=event.id,
                    outcome="block",
                    score=80,
                    rule_set_version="v-test",
                    fired=[
                        {
                            "id": "link_burst_per_device",
                            "score": 80,
                            "outcome": "block",
                            "shadow": False,
                            "features": {"links_per_device_1h": 5},
                        }
                    ],
                    created_at=rt.now(),
                )
            )
        case = cases.open(
            session,
            wallet_id=who.wallet.id,
            source="risk:link_burst_per_device",
            summary="link burst from one device",
            actor="risk",
        )
    return case.id, who.wallet.id


def post(client: TestClient, url: str, data: dict[str, str]) -> object:
    page = client.get("/console/approvals")
    return client.post(url, data={"csrf_token": csrf_of(page.text), **data}, follow_redirects=False)


def wallet_status(rt: Runtime, wallet_id: uuid.UUID) -> str:
    with rt.db.unit_of_work() as session:
        return session.get_one(Wallet, wallet_id).status


@pytest.fixture
def analyst(rt: Runtime) -> Staff:
    return make_staff(rt, "aiko")


@pytest.fixture
def admin(rt: Runtime) -> Staff:
    return make_staff(rt, "bunta", OperatorRole.ADMIN)


class TestQueueAndCasePage:
    def test_queue_filters_and_assignment(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox, analyst: Staff
    ) -> None:
        case_id, _ = open_case(rt, mailbox)
        sign_in(client, rt, analyst)
        assert "link burst from one device" in client.get("/console/cases?state=open").text
        assert "link burst" not in client.get("/console/cases?state=cleared").text
        answer = post(client, f"/console/cases/{case_id}/assign", {"to": "me"})
        assert answer.status_code == 303
        assert "link burst" in client.get("/console/cases?assignee=me").text
        assert "link burst" not in client.get("/console/cases?assignee=none").text
        with rt.db.unit_of_work() as session:
            assert cases.get(session, case_id).assigned_to == "aiko"

    def test_case_page_shows_reasons_graph_and_timeline(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox, analyst: Staff
    ) -> None:
        case_id, _ = open_case(rt, mailbox)
        sign_in(client, rt, analyst)
        page = client.get(f"/console/cases/{case_id}?lang=en")
        assert page.status_code == 200
        text = page.text
        assert "link_burst_per_device" in text and "links_per_device_1h=5" in text
        assert '<svg xmlns="http://www.w3.org/2000/svg" role="img"' in text
        assert "203.0.113.0/24" in text and "dev-1" in text
        assert "1 other wallet(s)" in text

    def test_unknown_case_is_a_404_page(
        self, client: TestClient, rt: Runtime, analyst: Staff
    ) -> None:
        sign_in(client, rt, analyst)
        assert client.get(f"/console/cases/{uuid.uuid4()}").status_code == 404
        assert client.get("/console/cases/not-a-uuid").status_code == 404


class TestActions:
    def test_lock_needs_a_reason_and_then_runs_at_once_audited(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox, analyst: Staff
    ) -> None:
        case_id, wallet_id = open_case(rt, mailbox)
        sign_in(client, rt, analyst)
        refused = post(client, f"/console/cases/{case_id}/lock", {"reason": " ", "form": "lock"})
        assert refused.status_code == 400 and 'aria-invalid="true"' in refused.text
        assert wallet_status(rt, wallet_id) == "active"
        done = post(client, f"/console/cases/{case_id}/lock", {"reason": "burst of links"})
        assert done.status_code == 303 and wallet_status(rt, wallet_id) == "locked"
        with rt.db.unit_of_work() as session:
            event = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "wallet.lock")
            ).one()
        assert (event.actor, event.reason) == ("console:aiko", "burst of links")

    def test_the_banks_are_notified_only_of_a_locked_wallet_with_a_reason(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox, analyst: Staff
    ) -> None:
        case_id, wallet_id = open_case(rt, mailbox)
        sign_in(client, rt, analyst)
        refused = post(client, f"/console/cases/{case_id}/notify-banks", {"reason": "tell them"})
        assert refused.status_code == 409 and "lock it first" in refused.text
        post(client, f"/console/cases/{case_id}/lock", {"reason": "burst of links"})
        no_reason = post(client, f"/console/cases/{case_id}/notify-banks", {"reason": ""})
        assert no_reason.status_code == 400
        done = post(client, f"/console/cases/{case_id}/notify-banks", {"reason": "tell them"})
        assert done.status_code == 303 and "done=notified" in done.headers["location"]
        with rt.db.unit_of_work() as session:
            [event] = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "bank.notify")
            ).all()
        assert (event.actor, event.subject, event.reason) == (
            "console:aiko",
            f"wallet:{wallet_id}",
            "tell them",
        )

    def test_a_domain_refusal_is_shown_on_the_page(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox, analyst: Staff
    ) -> None:
        case_id, _ = open_case(rt, mailbox)
        sign_in(client, rt, analyst)
        post(client, f"/console/cases/{case_id}/status", {"to": "cleared", "reason": "ok"})
        answer = post(
            client, f"/console/cases/{case_id}/status", {"to": "investigating", "reason": "x"}
        )
        assert answer.status_code == 409 and "cannot move" in answer.text

    def test_compensation_is_requested_only_for_confirmed_fraud(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox, analyst: Staff
    ) -> None:
        case_id, _ = open_case(rt, mailbox)
        sign_in(client, rt, analyst)
        early = post(client, f"/console/cases/{case_id}/compensation", {"reason": "victims"})
        assert early.status_code == 400
        post(client, f"/console/cases/{case_id}/status", {"to": "confirmed_fraud", "reason": "y"})
        asked = post(client, f"/console/cases/{case_id}/compensation", {"reason": "victims"})
        assert asked.status_code == 303
        with rt.db.unit_of_work() as session:
            approval = session.scalars(select(Approval)).one()
        assert (approval.action, approval.status, approval.requested_by) == (
            "compensate",
            "pending",
            "aiko",
        )

    def test_switch_on_runs_at_once_switch_off_waits_for_another_admin(
        self,
        client: TestClient,
        rt: Runtime,
        mailbox: MemoryMailbox,
        analyst: Staff,
        admin: Staff,
    ) -> None:
        case_id, _ = open_case(rt, mailbox)
        sign_in(client, rt, analyst)
        on = post(
            client,
            f"/console/cases/{case_id}/switch",
            {"scope": "bank_links", "target": "0125", "active": "on", "reason": "attack"},
        )
        assert on.status_code == 303
        post(
            client,
            f"/console/cases/{case_id}/switch",
            {"scope": "bank_links", "target": "0125", "active": "off", "reason": "over"},
        )
        with rt.db.unit_of_work() as session:
            assert switches.is_active(session, SwitchScope.BANK_LINKS, "0125")
            approval = session.scalars(select(Approval)).one()
        # the analyst cannot approve (role), the admin can
        assert post(client, f"/console/approvals/{approval.id}/approve", {}).status_code == 403
        client.cookies.clear()
        sign_in(client, rt, admin)
        done = post(client, f"/console/approvals/{approval.id}/approve", {"note": "checked"})
        assert done.status_code == 303 and done.headers["location"].endswith("done=executed")
        with rt.db.unit_of_work() as session:
            assert not switches.is_active(session, SwitchScope.BANK_LINKS, "0125")
            event = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "switch.off")
            ).one()
        assert event.actor == "console:bunta" and "requested by aiko" in event.reason


class TestMakerChecker:
    def test_the_maker_can_never_approve_their_own_request(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox, admin: Staff
    ) -> None:
        case_id, wallet_id = open_case(rt, mailbox)
        sign_in(client, rt, admin)
        post(client, f"/console/cases/{case_id}/lock", {"reason": "fraud"})
        post(client, f"/console/cases/{case_id}/unlock", {"reason": "mistake"})
        with rt.db.unit_of_work() as session:
            approval = session.scalars(select(Approval)).one()
        answer = post(client, f"/console/approvals/{approval.id}/approve", {})
        assert answer.status_code == 403 and "own request" in answer.text
        assert wallet_status(rt, wallet_id) == "locked"
        with rt.db.unit_of_work() as session:
            assert session.get_one(Approval, approval.id).status == "pending"
            operator = session.get_one(Approval, approval.id)
        with rt.db.unit_of_work() as session:
            me = session.scalars(select(Operator).where(Operator.name == "bunta")).one()
        with pytest.raises(SelfApproval):
            approvals.approve(rt, approval_id=approval.id, operator=me)
        with pytest.raises(SelfApproval), rt.db.unit_of_work() as session:
            approvals.reject(session, approval_id=approval.id, operator=me, note="")
        assert operator.status == "pending"

    def test_unlock_approved_by_another_admin_runs_once(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        case_id, wallet_id = open_case(rt, mailbox)
        make_staff(rt, "aiko")
        make_staff(rt, "bunta", OperatorRole.ADMIN)
        with rt.db.unit_of_work() as session:
            maker = session.scalars(select(Operator).where(Operator.name == "aiko")).one()
            checker = session.scalars(select(Operator).where(Operator.name == "bunta")).one()
            locks.lock(session, wallet_id=wallet_id, actor="test", reason="fraud")
            approval = approvals.request(
                session,
                action=ApprovalAction.UNLOCK_WALLET,
                params={"wallet_id": str(wallet_id)},
                subject=str(wallet_id),
                reason="customer verified",
                operator=maker,
            )
        done = approvals.approve(rt, approval_id=approval.id, operator=checker)
        assert done.status == ApprovalStatus.EXECUTED.value
        assert wallet_status(rt, wallet_id) == "active"
        with pytest.raises(ApprovalDecided):
            approvals.approve(rt, approval_id=approval.id, operator=checker)
        assert case_id
