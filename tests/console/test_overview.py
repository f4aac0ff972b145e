"""The overview: figures from the database, the live fragment, roles."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kouza.console.figures import overview
from kouza.controls.models import OperatorRole, SwitchScope
from kouza.controls.switches import switches
from kouza.kit.clock import ManualClock
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.runtime import Runtime
from tests.console.support import make_staff, sign_in


def link_attempt(
    session: Session, rt: Runtime, *, bank: str, outcome: str, hours_ago: float
) -> None:
    at = rt.now() - timedelta(hours=hours_ago)
    event = RiskEventRecord(type="link_attempt", at=at, bank=bank, outcome=outcome)
    session.add(event)
    session.flush()
    session.add(
        RiskDecisionRecord(
            event_id=event.id,
            outcome="allow" if outcome == "ok" else "block",
            score=0,
            rule_set_version="t",
            fired=[],
            created_at=at,
        )
    )


def test_figures_are_grouped_per_bank_reason_and_hour(rt: Runtime, clock: ManualClock) -> None:
    with rt.db.unit_of_work() as session:
        link_attempt(session, rt, bank="0125", outcome="ok", hours_ago=1)
        for _ in range(3):
            link_attempt(session, rt, bank="0125", outcome="name_mismatch", hours_ago=0.5)
        link_attempt(session, rt, bank="0010", outcome="burst", hours_ago=30)
        link_attempt(session, rt, bank="0010", outcome="burst", hours_ago=24 * 20)
    with rt.db.unit_of_work() as session:
        figures = overview(session)
    assert figures.link_attempts == [("0125", "name_mismatch", 3), ("0125", "ok", 1)]
    assert (figures.link_total, figures.link_refused) == (4, 3)
    assert figures.decisions == {"allow": 1, "block": 3}
    hourly = figures.hourly["links"]
    assert len(hourly.buckets) == 24 and sum(hourly.values["refused"]) == 3
    assert hourly.values["refused"][-2] == 3 and hourly.values["linked"][-2] == 1  # 08:xx
    daily = figures.daily["links"]
    assert len(daily.buckets) == 14 and sum(daily.values["refused"]) == 4


def test_the_page_and_its_live_fragment_show_the_figures(client: TestClient, rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        link_attempt(session, rt, bank="0125", outcome="name_mismatch", hours_ago=0.2)
        switches.set(
            session, scope=SwitchScope.ALL_LINKS, active=True, actor="test", reason="attack"
        )
    sign_in(client, rt, make_staff(rt, "aiko"))
    page = client.get("/console/?lang=en")
    assert page.status_code == 200
    assert 'hx-get="/console/overview/live"' in page.text and 'hx-trigger="every 10s"' in page.text
    assert "name_mismatch" in page.text and "All new bank links stopped" in page.text
    live = client.get("/console/overview/live", headers={"HX-Request": "true"})
    assert live.status_code == 200 and "<html" not in live.text and "name_mismatch" in live.text


def test_the_call_centre_cannot_read_the_live_figures(client: TestClient, rt: Runtime) -> None:
    sign_in(client, rt, make_staff(rt, "chika", OperatorRole.CALL_CENTRE))
    assert client.get("/console/overview/live").status_code == 403
