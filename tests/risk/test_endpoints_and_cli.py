"""Risk over HTTP (operators only; rule reload keeps the old set on error) and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from kouza.api.app import create_app
from kouza.cli.main import app as cli
from kouza.controls.models import OperatorRole
from kouza.controls.service import controls
from kouza.risk.engine import RiskEngine
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.risk.service import risk, shipped_rule_set
from kouza.runtime import Runtime
from tests.risk.stores import Stores
from tests.risk.test_engine import SHIPPED, ev

E = EventType


def _headers(rt: Runtime, role: OperatorRole) -> dict[str, str]:
    with rt.db.unit_of_work() as session:
        _, token = controls.create_operator(session, name=f"op-{role}", role=role, actor="test")
    return {"Authorization": f"Bearer {token}"}


def test_assess_over_http(rt: Runtime, stores: Stores) -> None:
    rt.risk_engine = RiskEngine(shipped_rule_set(), stores.new())
    client = TestClient(create_app(rt))
    headers = _headers(rt, OperatorRole.ANALYST)
    for event in [
        ev(E.SIGNUP, 0),
        ev(E.LINK_ATTEMPT, 2, account="a1"),
        ev(E.LINK_ATTEMPT, 3, account="a2"),
    ]:
        response = client.post("/v1/ops/risk/assess", json=event.to_json(), headers=headers)
        assert response.status_code == 200, response.text
    body = response.json()
    assert (body["outcome"], body["score"]) == ("step_up", 40)
    assert [r["id"] for r in body["fired"]] == ["many-accounts-from-device"]
    # committed before the answer (on PostgreSQL as one autocommitted statement)
    with rt.db.session() as session:
        stored = session.execute(
            select(RiskDecisionRecord, RiskEventRecord.type)
            .join(RiskEventRecord, RiskEventRecord.id == RiskDecisionRecord.event_id)
            .order_by(RiskDecisionRecord.id)
        ).all()
        assert [(d.outcome, d.score, kind) for d, kind in stored] == [
            ("allow", 0, "signup"),
            ("allow", 0, "link_attempt"),
            ("step_up", 40, "link_attempt"),
        ]
        assert stored[2][0].fired[0]["id"] == "many-accounts-from-device"
    bad = client.post("/v1/ops/risk/assess", json={"type": "teleport", "at": "x"}, headers=headers)
    assert bad.status_code == 422
    naive = client.post(
        "/v1/ops/risk/assess", headers=headers, json=event.to_json() | {"at": "2026-03-01T12:00:00"}
    )
    assert naive.status_code == 422  # a time without its zone is refused, not guessed
    # an amount is an integer: false was taken as ¥0 (found by schemathesis)
    boolean = client.post(
        "/v1/ops/risk/assess", headers=headers, json=event.to_json() | {"amount": False}
    )
    assert (boolean.status_code, boolean.json()["errors"][0]["field"]) == (422, "body.amount")
    assert client.post("/v1/ops/risk/assess", json=event.to_json()).status_code == 401


def test_rule_reload_keeps_the_old_set_on_error(rt: Runtime) -> None:
    client = TestClient(create_app(rt))
    admin = _headers(rt, OperatorRole.ADMIN)
    before = risk.engine(rt).rules.version
    bad = client.put(
        "/v1/ops/risk/rules",
        content="rules:\n  - id: x\n    events: [topup]\n    when: import os\n",
        headers=admin | {"Content-Type": "application/yaml"},
    )
    assert bad.status_code == 400
    assert "line 4 (x)" in bad.json()["message"]
    assert risk.engine(rt).rules.version == before
    good = client.put(
        "/v1/ops/risk/rules",
        headers=admin,
        content=(
            "version: v2\nrules:\n  - {id: y, events: [topup], when: 'event.amount > 1', "
            "outcome: block}\n"
        ),
    )
    assert (good.status_code, good.json()) == (200, {"version": "v2", "rules": 1})
    analyst = _headers(rt, OperatorRole.ANALYST)
    assert client.put("/v1/ops/risk/rules", content="rules: []", headers=analyst).status_code == 403


def test_events_json_round_trip() -> None:
    event = ev(E.TOPUP, 3, amount=90_000, account="fp", attributes={"k": "v"})
    assert RiskEvent.from_json(json.loads(json.dumps(event.to_json()))) == event


def test_cli_backtest(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            json.dumps(e.to_json())
            for e in [
                ev(E.SIGNUP, 0),
                ev(E.LINK_ATTEMPT, 2, account="a1"),
                ev(E.LINK_CREATED, 2, account="a1"),
                ev(E.TOPUP, 3, amount=100_000, account="a1"),
                ev(E.TOPUP, 4, amount=150_000, account="a1"),
            ]
        )
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(Path(SHIPPED_PATH).read_text())
    result = CliRunner().invoke(cli, ["risk", "backtest", str(rules), "--events", str(events)])
    assert result.exit_code == 0, result.output
    assert "charge-to-cap-after-link" in result.output
    assert "device-changed-since-link" in result.output


def test_cli_refuses_bad_files(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: a\n    events: [topup]\n    when: 'lambda: 1'\n")
    result = CliRunner().invoke(cli, ["risk", "check", str(rules)])
    assert result.exit_code == 1
    # the console wraps long lines (how long depends on the temporary path): compare words
    assert "line 4 (a)" in " ".join(result.output.split())
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "topup", "at": "2026-01-01T00:00:00"}\n')
    result = CliRunner().invoke(cli, ["risk", "backtest", SHIPPED_PATH, "--events", str(events)])
    assert result.exit_code == 1
    assert "line 1" in " ".join(result.output.split())


SHIPPED_PATH = str(Path(__file__).resolve().parents[2] / "src/kouza/risk/rulesets/default.yaml")
assert SHIPPED.version
