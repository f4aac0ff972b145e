"""The rules page: live set and candidate, versions and differences, shadow results, backtest,
publishing with a second admin's approval (through the same service as the operator API)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kouza.console.models import Approval, ApprovalStatus
from kouza.controls.models import AuditEvent, OperatorRole
from kouza.controls.service import controls
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.models import RuleSetRecord
from kouza.risk.service import risk
from kouza.risk.versions import digest, rule_versions
from kouza.runtime import Runtime
from tests.console.support import Staff, csrf_of, make_staff, sign_in

LIVE = """version: live-1
rules:
  - id: huge-topup
    description: Top-ups of a million yen or more.
    events: [topup]
    when: event.amount >= 1000000
    outcome: block
"""
CANDIDATE = """version: cand-1
rules:
  - id: huge-topup
    description: Top-ups of a million yen or more.
    events: [topup]
    when: event.amount >= 1000000
    outcome: lock
  - id: big-topup
    description: Top-ups of 50,000 yen or more.
    events: [topup]
    when: event.amount >= 50000
    outcome: review
"""


@pytest.fixture
def analyst(rt: Runtime) -> Staff:
    return make_staff(rt, "aiko", OperatorRole.ANALYST)


@pytest.fixture
def admin(rt: Runtime) -> Staff:
    return make_staff(rt, "bunta", OperatorRole.ADMIN)


@pytest.fixture
def rules(rt: Runtime) -> None:
    """Live ``live-1``, candidate ``cand-1``, and two top-ups recorded (60,000 and 1,000 yen)."""
    with rt.db.unit_of_work() as session:
        rule_versions.publish(session, LIVE, source="test", actor="test", reason="start")
        rule_versions.set_candidate(session, CANDIDATE, source="test", actor="test", reason="try")
        for amount, wallet in ((60_000, "w-1"), (1_000, "w-2")):
            risk.assess(session, RiskEvent(EventType.TOPUP, rt.now(), wallet=wallet, amount=amount))


def post(client: TestClient, url: str, data: dict[str, str]) -> object:
    page = client.get("/console/rules")
    return client.post(url, data={"csrf_token": csrf_of(page.text), **data}, follow_redirects=False)


def live_version(rt: Runtime) -> str:
    with rt.db.unit_of_work() as session:
        return risk.engine(rt, session).rules.version


class TestPage:
    def test_live_candidate_shadow_and_versions(
        self, client: TestClient, rt: Runtime, analyst: Staff, rules: None
    ) -> None:
        sign_in(client, rt, analyst)
        page = client.get("/console/rules")
        assert page.status_code == 200
        text = page.text
        assert 'Live rule set: <span class="mono">live-1</span>' in text
        assert 'Candidate rule set (shadow): <span class="mono">cand-1</span>' in text
        assert "<code>event.amount &gt;= 50000</code>" in text
        assert "Decisions carrying the candidate&#39;s verdict: 2" in text
        # one decision the candidate would have held for review where the live set allowed it
        assert '<th scope="row">review</th><td class="num">1</td><td class="num">0</td>' in text
        assert "Request publishing cand-1" in text
        assert "Set a candidate rule set" not in text  # admins only

    def test_signed_out_and_call_centre(self, client: TestClient, rt: Runtime) -> None:
        assert client.get("/console/rules", follow_redirects=False).status_code == 303
        sign_in(client, rt, make_staff(rt, "cc", OperatorRole.CALL_CENTRE))
        assert client.get("/console/rules").status_code == 403
        assert client.get("/console/rules/diff?a=live&b=shipped").status_code == 403


class TestDiff:
    def test_rule_by_rule_and_unified(
        self, client: TestClient, rt: Runtime, analyst: Staff, rules: None
    ) -> None:
        sign_in(client, rt, analyst)
        page = client.get("/console/rules/diff?a=live&b=candidate")
        assert page.status_code == 200
        text = page.text
        assert '<th scope="row" class="mono">big-topup</th><td>added</td>' in text
        assert (
            '<th scope="row" class="mono">huge-topup</th><td>changed</td><td>outcome</td>'
            "<td><code>block</code></td><td><code>lock</code></td>"
        ) in text
        assert "<ins>+    outcome: review</ins>" in text
        assert "<del>-version: live-1</del>" in text

    def test_earlier_versions_are_readable(
        self, client: TestClient, rt: Runtime, analyst: Staff, rules: None
    ) -> None:
        with rt.db.unit_of_work() as session:
            first = session.scalars(select(RuleSetRecord).order_by(RuleSetRecord.id)).first()
            assert first is not None and first.version == "live-1" and first.role == "live"
        sign_in(client, rt, analyst)
        page = client.get(f"/console/rules/diff?a=r{first.id}&b=live")
        assert page.status_code == 200 and "The texts are identical." in page.text

    def test_unknown_version(self, client: TestClient, rt: Runtime, analyst: Staff) -> None:
        sign_in(client, rt, analyst)
        page = client.get("/console/rules/diff?a=live&b=r999")
        assert page.status_code == 404 and "There is no such version." in page.text


class TestBacktest:
    def test_the_candidate_over_recorded_events(
        self, client: TestClient, rt: Runtime, analyst: Staff, rules: None
    ) -> None:
        sign_in(client, rt, analyst)
        answer = post(client, "/console/rules/backtest", {"tested": "candidate", "period": "24h"})
        assert answer.status_code == 200  # type: ignore[attr-defined]
        text = answer.text  # type: ignore[attr-defined]
        assert "cand-1 against the live live-1" in text
        assert "2 events replayed." in text
        # by outcome: allow 2 → 1, review 0 → 1
        assert '<th scope="row">allow</th><td class="num">2</td><td class="num">1</td>' in text
        assert '<th scope="row">review</th><td class="num">0</td><td class="num">1</td>' in text
        assert '<td>allow</td><td>review</td><td class="num">1</td>' in text

    def test_a_pasted_set_and_a_bad_one(
        self, client: TestClient, rt: Runtime, analyst: Staff, rules: None
    ) -> None:
        sign_in(client, rt, analyst)
        pasted = CANDIDATE.replace("50000", "500").replace("cand-1", "pasted-1")
        good = post(
            client, "/console/rules/backtest", {"tested": "pasted", "text": pasted, "period": "7d"}
        )
        assert good.status_code == 200  # type: ignore[attr-defined]
        assert '<th scope="row">review</th><td class="num">0</td><td class="num">2</td>' in (
            good.text  # type: ignore[attr-defined]
        )
        bad = post(
            client,
            "/console/rules/backtest",
            {"tested": "pasted", "text": "rules: [oops", "period": "7d"},
        )
        assert bad.status_code == 400  # type: ignore[attr-defined]
        text = bad.text  # type: ignore[attr-defined]
        assert 'id="f-text-error">pasted: line 1: not valid YAML</p>' in text
        assert "rules: [oops</textarea>" in text  # kept for correcting

    def test_events_older_than_the_period_are_left_out(
        self, client: TestClient, rt: Runtime, analyst: Staff, rules: None, clock: object
    ) -> None:
        clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
        sign_in(client, rt, analyst)
        answer = post(client, "/console/rules/backtest", {"tested": "shipped", "period": "24h"})
        assert "0 events replayed." in answer.text  # type: ignore[attr-defined]


class TestPublish:
    def test_requested_by_an_analyst_approved_by_an_admin(
        self, client: TestClient, rt: Runtime, analyst: Staff, admin: Staff, rules: None
    ) -> None:
        sign_in(client, rt, analyst)
        refused = post(client, "/console/rules/publish", {"version": "candidate", "reason": " "})
        assert refused.status_code == 400  # type: ignore[attr-defined]
        with rt.db.unit_of_work() as session:
            assert session.scalars(select(Approval)).all() == []
        asked = post(
            client, "/console/rules/publish", {"version": "candidate", "reason": "better recall"}
        )
        assert asked.headers["location"] == "/console/rules?done=requested"  # type: ignore[attr-defined]
        assert live_version(rt) == "live-1"
        with rt.db.unit_of_work() as session:
            approval = session.scalars(select(Approval)).one()
        assert (approval.action, approval.subject) == ("publish_rules", "cand-1")
        assert approval.params["digest"] == digest(CANDIDATE)

        client.cookies.clear()
        sign_in(client, rt, admin)
        done = post(client, f"/console/approvals/{approval.id}/approve", {"note": "ok"})
        assert done.headers["location"].endswith("done=executed")  # type: ignore[attr-defined]
        assert live_version(rt) == "cand-1"
        with rt.db.unit_of_work() as session:
            assert risk.engine(rt, session).candidate is None  # its job is done
            record = session.scalars(
                select(RuleSetRecord).order_by(RuleSetRecord.id.desc())
            ).first()
            assert record is not None
            assert (record.version, record.role, record.actor) == (
                "cand-1",
                "live",
                "console:bunta",
            )
            assert "requested by aiko" in record.reason
            audit = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "risk.rules")
                .order_by(AuditEvent.id.desc())
            ).first()
            assert audit is not None and audit.subject == "cand-1"
            assert session.get_one(Approval, approval.id).status == ApprovalStatus.EXECUTED.value

    def test_a_tampered_request_fails_and_nothing_changes(
        self, client: TestClient, rt: Runtime, analyst: Staff, admin: Staff, rules: None
    ) -> None:
        sign_in(client, rt, analyst)
        post(client, "/console/rules/publish", {"version": "candidate", "reason": "x"})
        with rt.db.unit_of_work() as session:
            approval = session.scalars(select(Approval)).one()
            approval.params = {**approval.params, "text": LIVE.replace("live-1", "evil")}
        client.cookies.clear()
        sign_in(client, rt, admin)
        done = post(client, f"/console/approvals/{approval.id}/approve", {})
        assert done.headers["location"].endswith("done=failed")  # type: ignore[attr-defined]
        assert live_version(rt) == "live-1"

    def test_only_admins_set_a_candidate(
        self, client: TestClient, rt: Runtime, analyst: Staff, admin: Staff, rules: None
    ) -> None:
        sign_in(client, rt, analyst)
        body = {"candidate_text": CANDIDATE.replace("cand-1", "cand-2"), "reason": "try"}
        assert post(client, "/console/rules/candidate", body).status_code == 403  # type: ignore[attr-defined]
        client.cookies.clear()
        sign_in(client, rt, admin)
        bad = post(client, "/console/rules/candidate", {"candidate_text": "x: [", "reason": "r"})
        assert bad.status_code == 400  # type: ignore[attr-defined]
        with rt.db.unit_of_work() as session:
            assert risk.engine(rt, session).candidate.version == "cand-1"  # type: ignore[union-attr]
        ok = post(client, "/console/rules/candidate", body)
        assert ok.status_code == 303  # type: ignore[attr-defined]
        with rt.db.unit_of_work() as session:
            assert risk.engine(rt, session).candidate.version == "cand-2"  # type: ignore[union-attr]


class TestApi:
    def test_the_operator_api_records_what_it_publishes(
        self, client: TestClient, rt: Runtime
    ) -> None:
        with rt.db.unit_of_work() as session:
            _, token = controls.create_operator(
                session, name="ops", role=OperatorRole.ADMIN, actor="test"
            )
        answer = client.put(
            "/v1/ops/risk/rules",
            content=CANDIDATE,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"},
        )
        assert answer.status_code == 200, answer.text
        with rt.db.unit_of_work() as session:
            record = session.scalars(select(RuleSetRecord)).one()
        assert (record.version, record.role, record.actor, record.text) == (
            "cand-1",
            "live",
            "operator:ops",
            CANDIDATE,
        )
