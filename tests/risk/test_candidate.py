"""A candidate rule set in shadow beside the live one: judged on every decision over the same
features, never enforced, stored on the decision and shown to operators only, one round trip on
Redis; set and removed over HTTP (audited) or at start; the shadow report's counts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kouza.api.app import create_app
from kouza.controls.cases import cases
from kouza.controls.models import AuditEvent, CaseStatus, OperatorRole
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.ops.shadow import shadow_report
from kouza.risk.engine import RiskEngine
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.models import RiskDecisionRecord
from kouza.risk.redis_store import RedisFeatureStore
from kouza.risk.rules import parse_rule_set
from kouza.risk.service import risk, shipped_rule_set
from kouza.runtime import Runtime
from kouza.wallet.enforcement import RiskRefused
from kouza.wallet.locks import locks
from tests.conftest import make_runtime
from tests.factories import customer
from tests.risk.stores import Stores
from tests.risk.test_endpoints_and_cli import _headers
from tests.risk.test_engine import ev

E = EventType
CANDIDATE_YAML = """
version: "candidate-1"
thresholds: {review: 50}
rules:
  - id: busy-network
    description: reads a key and a window the shipped rules do not read for payments
    events: [payment]
    when: count(ip24, "6h") >= 3
    score: 50
  - id: big-payment
    events: [payment]
    when: event.amount >= 10000
    outcome: block
  - id: big-topup
    events: [topup]
    when: event.amount >= 50000
    outcome: step_up
"""
CANDIDATE = parse_rule_set(CANDIDATE_YAML, source="test")


def _events() -> list[RiskEvent]:
    return [
        ev(E.SIGNUP, 0),
        ev(E.LINK_ATTEMPT, 2, account="a1"),
        ev(E.LINK_CREATED, 2, account="a1"),
        ev(E.TOPUP, 3, amount=100_000, account="a1"),
        ev(E.TOPUP, 4, amount=150_000, account="a1", device="d2"),
        ev(E.PAYMENT, 5, amount=20_000, merchant="m1", category="electronics"),
        ev(E.PAYMENT, 6, amount=500, merchant="m2", category="convenience_store"),
        ev(E.PAYMENT, 7, amount=800, merchant="m2", ip="198.51.100.9"),
    ]


def test_the_candidate_never_changes_the_live_decision(stores: Stores) -> None:
    """Every store: the live decisions with a candidate beside them are those without one, and
    the candidate's verdict is what the candidate alone would have decided."""
    events = _events()
    plain = RiskEngine(shipped_rule_set(), stores.new())
    beside = RiskEngine(shipped_rule_set(), stores.new(), candidate=CANDIDATE)
    as_live = RiskEngine(CANDIDATE, stores.new())
    for event in events:
        expected = stores.assess(plain, event)
        got = stores.assess(beside, event)
        own = stores.assess(as_live, event)
        assert (got.outcome, got.score, got.fired) == (
            expected.outcome,
            expected.score,
            expected.fired,
        )
        assert expected.candidate is None and got.candidate is not None
        assert got.candidate.version == "candidate-1"
        assert (got.candidate.outcome, got.candidate.score) == (own.outcome, own.score)
        assert got.candidate.fired == tuple(r.id for r in own.fired)
    verdicts = [
        stores.assess(beside, e) for e in [ev(E.PAYMENT, 9, amount=30_000, ip="198.51.100.8")]
    ]
    # the fourth payment event from 198.51.100.0/24 in 6 h, ¥30,000: busy network + big payment
    assert verdicts[0].candidate is not None
    assert verdicts[0].candidate.fired == ("busy-network", "big-payment")
    assert verdicts[0].candidate.outcome.value == "block"
    assert verdicts[0].outcome.value != "block"  # the live rules did not block it


def test_on_redis_the_candidate_keeps_one_round_trip(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With snapshots, the candidate's reads join the live rules' in the decision's one script
    call: nothing is read from Redis outside it, and there is one call per decision."""
    if stores.kind != "redis-snapshot":
        pytest.skip("about the snapshot path")
    direct: list[str] = []
    members = RedisFeatureStore._members
    snapshots: list[Any] = []
    snapshot = RedisFeatureStore.snapshot

    def counted(self: RedisFeatureStore, key: str, since: Any) -> Any:
        direct.append(key)
        return members(self, key, since)

    def counted_snapshot(self: RedisFeatureStore, *args: Any, **kwargs: Any) -> Any:
        snapshots.append(args[1])
        return snapshot(self, *args, **kwargs)

    monkeypatch.setattr(RedisFeatureStore, "_members", counted)
    monkeypatch.setattr(RedisFeatureStore, "snapshot", counted_snapshot)
    live = parse_rule_set(
        "rules:\n  - {id: device, events: [payment], when: 'count(device, \"1h\") >= 99'}\n"
    )
    engine = RiskEngine(live, stores.new(), candidate=CANDIDATE)
    decisions = stores.judge(engine, _events())
    assert direct == []
    assert len(snapshots) == len(decisions)
    payment_plan = snapshots[-1]
    assert set(payment_plan) == {"device", "ip24"}  # live's device, the candidate's ip24
    assert decisions[-1].candidate is not None
    # seven earlier events from 198.51.100.0/24, read from the snapshot: the rule fires
    assert decisions[-1].candidate.fired == ("busy-network",)
    # without the candidate, the candidate's key is not read
    plain = RiskEngine(live, stores.new())
    stores.assess(plain, ev(E.PAYMENT, 1, amount=1))
    assert set(snapshots[-1]) == {"device"}


def test_stored_and_shown_to_operators_only(rt: Runtime) -> None:
    rt.risk_engine = RiskEngine(shipped_rule_set(), InMemoryFeatureStore(), candidate=CANDIDATE)
    with rt.db.unit_of_work() as session:
        for event in _events()[:-3]:
            risk.assess(session, event)
        decision = risk.assess(session, _events()[-3])
    assert decision.candidate is not None and decision.candidate.outcome.value == "block"
    with rt.db.session() as session:
        stored = session.get(RiskDecisionRecord, decision.record_id)
        assert stored is not None and stored.candidate == decision.candidate.to_json()
        assert stored.candidate == {
            "version": "candidate-1",
            "outcome": "block",
            "score": 50,
            "fired": ["busy-network", "big-payment"],
        }
    client = TestClient(create_app(rt))
    analyst = _headers(rt, OperatorRole.ANALYST)
    shown = client.get(f"/v1/ops/risk/decisions/{decision.record_id}", headers=analyst).json()
    assert shown["candidate"] == stored.candidate
    assert shown["outcome"] == decision.outcome.value != "block"
    # over HTTP (on PostgreSQL the one-statement insert): the answer and the row carry it
    answer = client.post(
        "/v1/ops/risk/assess",
        json=ev(E.PAYMENT, 8, amount=60_000, merchant="m3").to_json(),
        headers=analyst,
    ).json()
    assert answer["candidate"]["fired"] == ["busy-network", "big-payment"]
    with rt.db.session() as session:
        last = session.scalars(
            select(RiskDecisionRecord).order_by(RiskDecisionRecord.id.desc()).limit(1)
        ).one()
        assert last.candidate == answer["candidate"]
    # a refused customer learns only the reference, whatever the candidate said
    refusal = RiskRefused("refused", rules=["x"], reference=decision.record_id)
    assert refusal.to_dict()["details"] == {"reference": decision.record_id}


def test_set_and_remove_over_http_audited(rt: Runtime) -> None:
    rt.risk_engine = RiskEngine(shipped_rule_set(), InMemoryFeatureStore())
    client = TestClient(create_app(rt))
    admin = _headers(rt, OperatorRole.ADMIN) | {"Content-Type": "application/yaml"}
    analyst = _headers(rt, OperatorRole.ANALYST)
    live = risk.engine(rt).rules
    assert (
        client.put(
            "/v1/ops/risk/rules/candidate", content=CANDIDATE_YAML, headers=analyst
        ).status_code
        == 403
    )
    good = client.put("/v1/ops/risk/rules/candidate", content=CANDIDATE_YAML, headers=admin)
    assert (good.status_code, good.json()) == (200, {"version": "candidate-1", "rules": 3})
    assert risk.engine(rt).candidate is not None
    bad = client.put(
        "/v1/ops/risk/rules/candidate",
        content="rules:\n  - id: x\n    events: [topup]\n    when: import os\n",
        headers=admin,
    )
    assert bad.status_code == 400 and "line 4 (x)" in bad.json()["message"]
    candidate = risk.engine(rt).candidate
    assert candidate is not None and candidate.version == "candidate-1"  # the old one stays
    assert risk.engine(rt).rules is live  # the live rules never change
    assert client.delete("/v1/ops/risk/rules/candidate", headers=analyst).status_code == 403
    gone = client.delete("/v1/ops/risk/rules/candidate", headers=admin)
    assert (gone.status_code, gone.json()) == (200, {"version": None, "rules": 0})
    assert risk.engine(rt).candidate is None and risk.engine(rt).rules is live
    with rt.db.session() as session:
        audited = session.scalars(
            select(AuditEvent.reason)
            .where(AuditEvent.action == "risk.rules.candidate")
            .order_by(AuditEvent.id)
        ).all()
    assert audited == ["candidate rule set set (shadow)", "candidate rule set removed"]


def test_set_at_start(
    db_url: str, tmp_path: Path, clock: ManualClock, mailbox: MemoryMailbox
) -> None:
    path = tmp_path / "candidate.yaml"
    path.write_text(CANDIDATE_YAML)
    runtime = make_runtime(db_url, tmp_path, clock, mailbox, risk_candidate_rules=str(path))
    try:
        runtime.risk_engine = None  # built from settings, as in production
        engine = risk.engine(runtime)
        assert engine.candidate is not None and engine.candidate.version == "candidate-1"
        assert engine.rules.version == shipped_rule_set().version
    finally:
        runtime.db.dispose()


def test_shadow_report_counts(rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock) -> None:
    """Confusion, what each flagged that the other allowed, and what each caught of the
    wallets confirmed as fraud (a confirmed_fraud case, or a person's lock; the risk engine's
    own lock is not a confirmation)."""
    by_case, by_lock, honest, engine_locked = (customer(rt, mailbox) for _ in range(4))
    live = parse_rule_set(
        "rules:\n"
        "  - {id: big, events: [payment], when: 'event.amount >= 100000', outcome: review}\n"
        "  - {id: transfers, events: [transfer], when: 'True', outcome: step_up}\n"
    )
    candidate = parse_rule_set(
        "version: c2\nrules:\n"
        "  - {id: pay, events: [payment], when: 'event.amount >= 10000', outcome: block}\n"
        "  - {id: top, events: [topup], when: 'event.amount >= 50000', outcome: step_up}\n"
    )
    rt.risk_engine = RiskEngine(live, InMemoryFeatureStore(), candidate=candidate)
    start = clock.now()

    def at(wallet: Any, minutes: int, kind: EventType, amount: int) -> RiskEvent:
        return RiskEvent(
            type=kind,
            at=start + timedelta(minutes=minutes),
            wallet=str(wallet.wallet.id),
            amount=amount,
        )

    events = [
        at(by_case, -60, E.PAYMENT, 20_000),  # before --since: left out
        at(by_case, 1, E.PAYMENT, 200_000),  # live review, candidate block
        at(by_case, 2, E.PAYMENT, 20_000),  # allow / block
        at(by_lock, 3, E.PAYMENT, 20_000),  # allow / block
        at(honest, 4, E.TOPUP, 60_000),  # allow / step_up
        at(honest, 5, E.PAYMENT, 5_000),  # allow / allow
        at(honest, 6, E.TRANSFER, 1_000),  # step_up / allow
        at(engine_locked, 7, E.PAYMENT, 20_000),  # allow / block, not confirmed
    ]
    with rt.db.unit_of_work() as session:
        for event in events:
            risk.assess(session, event)
        case = cases.open(
            session, wallet_id=by_case.wallet.id, source="risk:x", summary="s", actor="risk"
        )
        cases.move(session, case_id=case.id, to=CaseStatus.INVESTIGATING, actor="ana", note="n")
        cases.move(session, case_id=case.id, to=CaseStatus.CONFIRMED_FRAUD, actor="ana", note="n")
        locks.lock(session, wallet_id=by_lock.wallet.id, actor="operator:ana", reason="fraud")
        locks.lock(session, wallet_id=engine_locked.wallet.id, actor="risk-engine", reason="r")
        other = cases.open(
            session, wallet_id=honest.wallet.id, source="risk:x", summary="s", actor="risk"
        )
        cases.move(session, case_id=other.id, to=CaseStatus.INVESTIGATING, actor="ana", note="n")
        cases.move(session, case_id=other.id, to=CaseStatus.CLEARED, actor="ana", note="n")
    with rt.db.session() as session:
        report = shadow_report(session, since=start)
        every = session.scalar(select(func.count()).select_from(RiskDecisionRecord))
    assert every is not None and every > report["decisions"] == 7  # onboarding: no candidate
    assert report["candidate_versions"] == {"c2": 7}
    confusion = report["confusion"]
    assert confusion["allow"] == {"allow": 1, "step_up": 1, "review": 0, "block": 3, "lock": 0}
    assert confusion["review"]["block"] == 1 and confusion["step_up"]["allow"] == 1
    assert sum(sum(row.values()) for row in confusion.values()) == 7
    assert report["candidate_flagged_live_allowed"] == {
        "step_up": 1,
        "review": 0,
        "block": 3,
        "lock": 0,
    }
    assert report["live_flagged_candidate_allowed"] == {
        "step_up": 1,
        "review": 0,
        "block": 0,
        "lock": 0,
    }
    assert report["confirmed_fraud"] == {
        "wallets": 2,
        "events": 3,
        "wallets_live_flagged": 1,
        "wallets_candidate_flagged": 2,
        "wallets_live_stopped": 1,
        "wallets_candidate_stopped": 2,
        "wallets_flagged_by_candidate_only": 1,
        "wallets_flagged_by_live_only": 0,
        "live_flagged": 1,
        "candidate_flagged": 3,
        "live_stopped": 1,
        "candidate_stopped": 3,
    }
    with rt.db.session() as session:
        earlier = shadow_report(session, since=start - timedelta(hours=2), until=start)
    assert earlier["decisions"] == 1 and earlier["confusion"]["allow"]["block"] == 1
    client = TestClient(create_app(rt))
    analyst = _headers(rt, OperatorRole.ANALYST)
    over_http = client.get(
        "/v1/ops/risk/shadow", params={"since": start.isoformat()}, headers=analyst
    )
    assert over_http.status_code == 200, over_http.text
    assert over_http.json()["confirmed_fraud"] == report["confirmed_fraud"]
    naive = client.get(
        "/v1/ops/risk/shadow", params={"since": "2026-01-01T00:00:00"}, headers=analyst
    )
    assert naive.status_code == 400
    for number in ("0.5", "1700000000"):  # a Unix time is not the RFC 3339 the schema says
        numeric = client.get("/v1/ops/risk/shadow", params={"since": number}, headers=analyst)
        assert numeric.status_code == 422, numeric.text
    assert client.get("/v1/ops/risk/shadow", params={"since": start.isoformat()}).status_code == 401
