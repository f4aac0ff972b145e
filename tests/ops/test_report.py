"""The regulator report counts days in Japan time (JST): an action at 23:30 UTC belongs to the
next day, and the report shows its time as the Japanese clock read it."""

from __future__ import annotations

from datetime import UTC, date, datetime

from kouza.controls.service import controls
from kouza.kit.clock import ManualClock
from kouza.ops import report
from kouza.runtime import Runtime

LATE_UTC = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
"""2026-03-02 08:30 in Tokyo."""
EVENING_UTC = datetime(2026, 3, 1, 14, 59, tzinfo=UTC)
"""2026-03-01 23:59 in Tokyo."""


def _switch_at(rt: Runtime, at: datetime, target: str) -> None:
    assert isinstance(rt.clock, ManualClock)
    rt.clock.set(at)
    with rt.db.unit_of_work() as session:
        controls.audit(
            session,
            actor="operator:admin",
            action="switch.on",
            subject=f"bank_charges:{target}",
            reason="unauthorised top-ups",
        )


def _report(rt: Runtime, day: date) -> report.RegulatorReport:
    with rt.db.unit_of_work() as session:
        return report.build(session, period_from=day, period_to=day, now=rt.now(), operator="kouza")


class TestJapanDays:
    def test_a_late_utc_action_counts_on_the_next_japanese_day(self, rt: Runtime) -> None:
        _switch_at(rt, EVENING_UTC, "0125")
        _switch_at(rt, LATE_UTC, "0168")

        first, second = _report(rt, date(2026, 3, 1)), _report(rt, date(2026, 3, 2))

        assert [s["switch"] for s in first.measures["switch_changes"]] == ["bank_charges:0125"]
        assert [s["switch"] for s in second.measures["switch_changes"]] == ["bank_charges:0168"]
        assert second.measures["switch_changes"][0]["at"] == "2026-03-02T08:30:00+09:00"
        assert [e["detail"] for e in first.timeline] == [
            "bank_charges:0125 by operator:admin: unauthorised top-ups"
        ]
        assert report.to_json(second)["timeline"][0]["at"] == "2026-03-02T08:30:00+09:00"
        markdown = report.to_markdown(first)
        assert "(JST, both included)" in markdown
        assert "| 2026-03-01 23:59:00 | switch on |" in markdown
