"""``risk.assess`` stores each event with its decision: the same rows on SQLite (two INSERTs)
and PostgreSQL (one statement for both), read back exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.risk.plan import history_needed
from kouza.risk.rules import parse_rule_set
from kouza.risk.service import risk, shipped_rule_set
from kouza.runtime import Runtime
from tests.conftest import make_runtime

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class TestStore:
    def test_event_and_decision_rows(self, rt: Runtime) -> None:
        risk.engine(rt).replace_rules(shipped_rule_set())
        signup = RiskEvent(EventType.SIGNUP, T0, wallet="w1", device="d1", ip="192.0.2.1")
        link = RiskEvent(
            EventType.LINK_ATTEMPT,
            T0 + timedelta(minutes=3),
            wallet="w1",
            device="d1",
            ip="192.0.2.1",
            bank="0005",
            account="fp1",
            holder_name="ﾔﾏﾀﾞ ﾀﾛｳ",
            outcome="wrong_pin",
            attributes={"name_match": "review"},
        )
        earlier = RiskEvent(
            EventType.LINK_ATTEMPT,
            T0 + timedelta(minutes=1),
            wallet="w1",
            device="d1",
            ip="192.0.2.1",
            bank="0005",
            account="fp0",
        )
        with rt.db.unit_of_work() as session:
            risk.assess(session, signup)
            risk.assess(session, earlier)
            decision_id = risk.store(session, risk.preview(session, link))
        with rt.db.unit_of_work() as session:
            stored = session.get(RiskDecisionRecord, decision_id)
            assert stored is not None
            event_row = session.get(RiskEventRecord, stored.event_id)
            assert event_row is not None
            assert (stored.outcome, stored.score, stored.rule_set_version) == (
                "review",
                40,
                shipped_rule_set().version,
            )
            assert stored.fired == [
                {
                    "id": "many-accounts-from-device",
                    "score": 40,
                    "outcome": None,
                    "shadow": False,
                    "features": {"others(device, 'account', '24h', type='link_attempt')": 1},
                },
                {
                    "id": "holder-name-near-miss",
                    "score": 0,
                    "outcome": "review",
                    "shadow": False,
                    "features": {},
                },
            ]
            assert stored.created_at == rt.now()
            assert (event_row.type, event_row.at, event_row.account, event_row.attributes) == (
                "link_attempt",
                link.at,
                "fp1",
                {"name_match": "review"},
            )
            assert risk.recorded_events(session, since=T0) == [signup, earlier, link]
            count = len(session.scalars(select(RiskDecisionRecord)).all())
            assert count == 3


VELOCITY_RULES = """
version: "warm-test"
rules:
  - id: link-burst
    events: [link_attempt]
    when: count(device, "1h", type="link_attempt") >= 2
    outcome: block
"""


class TestWarmStart:
    """A restarted process (a new runtime on the same database) still sees recent history."""

    def _start(self, db_url: str, tmp_path: Path, clock: ManualClock, rules: str) -> Runtime:
        path = tmp_path / "rules.yaml"
        path.write_text(rules, encoding="utf-8")
        runtime = make_runtime(db_url, tmp_path, clock, MemoryMailbox(), risk_rules=str(path))
        runtime.risk_engine = None  # the engine as a server builds it: from settings
        return runtime

    def test_velocity_rule_fires_after_restart(
        self, db_url: str, tmp_path: Path, clock: ManualClock
    ) -> None:
        first = self._start(db_url, tmp_path, clock, VELOCITY_RULES)
        old = RiskEvent(EventType.LINK_ATTEMPT, T0 - timedelta(hours=2), device="d1")
        recent = [
            RiskEvent(EventType.LINK_ATTEMPT, T0 + timedelta(minutes=m), device="d1")
            for m in (1, 2)
        ]
        with first.db.unit_of_work() as session:
            for event in (old, *recent):
                assert risk.assess(session, event).outcome == "allow"
        first.db.dispose()

        clock.advance(timedelta(minutes=3))
        second = self._start(db_url, tmp_path, clock, VELOCITY_RULES)
        third = RiskEvent(EventType.LINK_ATTEMPT, T0 + timedelta(minutes=3), device="d1")
        with second.db.unit_of_work() as session:
            decision = risk.assess(session, third)
        assert (decision.outcome, [r.id for r in decision.fired]) == ("block", ["link-burst"])
        store = risk.engine(second).store
        assert isinstance(store, InMemoryFeatureStore)
        # bounded to the rule's one-hour window: the event two hours old was not loaded
        assert list(store.window("device:d1", T0 - timedelta(days=1))) == [third, *recent[::-1]]
        second.db.dispose()

    def test_age_rule_sees_the_first_event_within_retention(
        self, db_url: str, tmp_path: Path, clock: ManualClock
    ) -> None:
        rules = (
            'rules:\n  - {id: established, events: [topup], when: "age(wallet) > days(2)",'
            " outcome: review}\n"
        )
        first = self._start(db_url, tmp_path, clock, rules)
        with first.db.unit_of_work() as session:
            risk.assess(session, RiskEvent(EventType.SIGNUP, T0 - timedelta(days=3), wallet="w1"))
        first.db.dispose()
        second = self._start(db_url, tmp_path, clock, rules)
        with second.db.unit_of_work() as session:
            decision = risk.assess(session, RiskEvent(EventType.TOPUP, T0, wallet="w1"))
        assert (decision.outcome, decision.fired[0].features) == (
            "review",
            {"age(wallet)": 3 * 86400.0},
        )
        second.db.dispose()


class TestHistoryNeeded:
    def test_longest_literal_window_or_the_retention(self) -> None:
        month = timedelta(days=31)
        assert history_needed(parse_rule_set(VELOCITY_RULES), month) == timedelta(hours=1)
        assert history_needed(shipped_rule_set(), month) == month  # age(), since(), first()
        assert history_needed(parse_rule_set("rules: []"), month) == timedelta(0)
