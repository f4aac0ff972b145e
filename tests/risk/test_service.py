"""``risk.assess`` stores each event with its decision: the same rows on SQLite (two INSERTs)
and PostgreSQL (one statement for both), read back exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from kouza.kit.runtime import Runtime
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.risk.service import risk, shipped_rule_set

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class TestStore:
    def test_event_and_decision_rows(self, rt: Runtime) -> None:
        risk.engine(rt).replace_rules(shipped_rule_set())
        signup = RiskEvent(EventType.SIGNUP, T0, wallet="w1", device="d1", ip="192.0.2.1")
        link = RiskEvent(EventType.LINK_ATTEMPT, T0 + timedelta(minutes=3), wallet="w1",
                         device="d1", ip="192.0.2.1", bank="0005", account="fp1",
                         holder_name="ﾔﾏﾀﾞ ﾀﾛｳ", outcome="wrong_pin",
                         attributes={"name_match": "review"})
        with rt.db.unit_of_work() as session:
            risk.assess(session, signup)
            decision_id = risk.store(session, risk.preview(session, link))
        with rt.db.unit_of_work() as session:
            stored = session.get(RiskDecisionRecord, decision_id)
            assert stored is not None
            event_row = session.get(RiskEventRecord, stored.event_id)
            assert event_row is not None
            assert (stored.outcome, stored.score, stored.rule_set_version) == (
                "review", 30, shipped_rule_set().version)
            assert stored.fired == [
                {"id": "link-soon-after-signup", "score": 30, "outcome": None, "shadow": False,
                 "features": {"age(wallet)": 180.0}},
                {"id": "holder-name-near-miss", "score": 0, "outcome": "review",
                 "shadow": False, "features": {}},
            ]
            assert stored.created_at == rt.now()
            assert (event_row.type, event_row.at, event_row.account, event_row.attributes) == (
                "link_attempt", link.at, "fp1", {"name_match": "review"})
            assert risk.recorded_events(session, since=T0) == [signup, link]
            count = len(session.scalars(select(RiskDecisionRecord)).all())
            assert count == 2
