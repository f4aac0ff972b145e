"""The learned model (ADR 0031): its features read nothing forbidden and are the same at
training and decision time, late labels and the time split hold, the CLI trains and evaluates a
versioned model, and decisions carry its contributions for operators only."""

from __future__ import annotations

import ast
import json
import math
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kouza.api.app import create_app
from kouza.assembly import build_runtime
from kouza.cli.main import app as cli
from kouza.config import Settings
from kouza.controls.models import OperatorRole
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.risk.engine import RiskEngine
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.learned.dataset import read_export, replay
from kouza.risk.learned.metrics import average_precision, budget_threshold
from kouza.risk.learned.model import LearnedModel, ModelFileError
from kouza.risk.learned.training import TrainOptions, split, train
from kouza.risk.learned.vector import FEATURE_NAMES, FEATURES, vector
from kouza.risk.models import RiskDecisionRecord
from kouza.risk.redis_store import RedisFeatureStore
from kouza.risk.rules import parse_rule_set
from kouza.risk.service import risk, shipped_rule_set
from kouza.runtime import Runtime
from kouza.wallet.enforcement import RiskRefused
from tests.conftest import make_runtime
from tests.risk.learned_data import START, world, write_export
from tests.risk.stores import Stores
from tests.risk.test_endpoints_and_cli import _headers

runner = CliRunner()
FORBIDDEN_FIELDS = {"outcome", "wallet", "user", "device", "ip", "email_domain", "account"}
FORBIDDEN_FIELDS |= {"holder_name", "merchant", "bank", "label"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("exports")
    return {
        "train": write_export(folder / "train.jsonl", (1,)),
        "other": write_export(folder / "other.jsonl", (2,)),
        "leaky": write_export(folder / "leaky.jsonl", (3,), leaky=True),
    }


@pytest.fixture(scope="module")
def model_file(exports: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model.json"
    result = runner.invoke(
        cli, ["risk", "train", "--events", str(exports["train"]), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


# -- the feature vector ---------------------------------------------------------------------


def test_feature_sources_read_no_forbidden_input() -> None:
    """No expression reads a field of the event itself other than its amount, nor the raw-IP
    or e-mail-domain keys, nor a simulator attribute."""
    for feature in FEATURES:
        source = feature.source
        assert "sim_" not in source and "label" not in source
        if source.startswith("python:"):
            continue
        if feature.kind == "categorical":
            assert source in ("event.event_type", "event.category", "event.name_match")
            continue
        for node in ast.walk(ast.parse(source, mode="eval")):
            if isinstance(node, ast.Attribute):
                assert node.attr == "amount", f"{feature.name} reads event.{node.attr}"
            if isinstance(node, ast.Name):
                assert node.id not in ("ip", "email_domain"), f"{feature.name} reads {node.id}"


def _history() -> list[RiskEvent]:
    return sorted((event for event, _ in world(5, "legacy")), key=lambda e: e.at)[:400]


def _rename(event: RiskEvent) -> RiskEvent:
    """Every identifier, address and domain renamed one-to-one; the simulator's marks
    changed."""
    ip = event.ip
    if ip:
        first, b, c, d = ip.split(".")
        assert first == "10"  # so the renaming is one-to-one
        ip = f"203.{int(b) ^ 7}.{c}.{d}"
    return replace(
        event,
        wallet=event.wallet and "W" + event.wallet[::-1],
        user=event.user and "U" + event.user[::-1],
        device=event.device and "D" + event.device[::-1],
        account=event.account and "A" + event.account[::-1],
        holder_name=event.holder_name and "N" + event.holder_name[::-1],
        merchant=event.merchant and "M" + event.merchant,
        ip=ip,
        email_domain="freemail.example.com" if event.email_domain else "",
        attributes={**event.attributes, "sim_profile": "other", "sim_seed": 99, "x_sim": 1},
    )


def test_vector_ignores_ids_addresses_own_outcome_and_simulator_marks() -> None:
    events = _history()
    plain, renamed = InMemoryFeatureStore(), InMemoryFeatureStore()
    for event in events:
        other = _rename(event)
        # the event's own outcome is known only after the decision: it must not matter
        flipped = replace(other, outcome="ok" if event.outcome != "ok" else "wrong_pin")
        a, b = vector(event, plain), vector(flipped, renamed)
        assert np.array_equal(np.array(a), np.array(b), equal_nan=True), event
        plain.record(event)
        renamed.record(other)
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) >= 30


def test_same_features_and_scores_at_training_and_decision(
    exports: dict[str, Path], model_file: Path
) -> None:
    """The engine's verdict, one event at a time, equals the batch score of the replayed
    vectors used in training and evaluation."""
    model = LearnedModel.load(model_file)
    one = read_export(exports["other"]).worlds[0]
    batch = model.scores(replay(one).vectors)
    engine = RiskEngine(shipped_rule_set(), InMemoryFeatureStore(), learned=model)
    live = [engine.assess(event).model for event in one.events]
    assert all(v is not None for v in live)
    assert np.allclose([v.score for v in live if v is not None], batch, rtol=1e-9, atol=1e-12)


# -- labels and the time split ---------------------------------------------------------------


def test_late_labels_count_as_not_fraud_and_the_future_is_never_trained_on(
    exports: dict[str, Path],
) -> None:
    first = read_export(exports["train"]).worlds[0]
    replayed = replay(first)
    cutoff = START + timedelta(days=40)
    train_rows, labels, valid = split(replayed, cutoff, timedelta(days=7))
    at = [e.at for e in first.events]
    for i, when in enumerate(at):
        assert train_rows[i] == (when < cutoff) and valid[i] == (when >= cutoff)
        known = replayed.attack[i] and when + timedelta(days=7) <= cutoff
        assert labels[i] == bool(known and when < cutoff)
    late = [
        i for i, w in enumerate(at) if replayed.attack[i] and cutoff - timedelta(7) < w < cutoff
    ]
    assert late and not labels[late].any()  # attacks in the last week before the cutoff


def test_training_does_not_depend_on_what_comes_after_the_cutoff(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    """Events after each world's cutoff and labels not yet known at it change nothing: the
    trees are identical when they are altered (same seed: deterministic). Only validation —
    and with it the threshold and the version — sees them."""
    original = read_export(exports["train"])
    options = TrainOptions(cutoff=START + timedelta(days=40), seed=3)
    first = train([original], options)
    altered = read_export(exports["train"])
    for each in altered.worlds:
        for i, event in enumerate(each.events):
            if event.at >= options.cutoff - options.label_delay:  # type: ignore[operator]
                each.attackers[i] = None if each.attackers[i] else "invented"
            if event.at >= options.cutoff:  # type: ignore[operator]
                each.events[i] = replace(event, amount=event.amount + 12_345)
    second = train([altered], options)
    assert first["lightgbm"] == second["lightgbm"]
    counts = ("train_events", "train_fraud_labels")
    assert [first["training"]["counts"][c] for c in counts] == [
        second["training"]["counts"][c] for c in counts
    ]
    assert first["validation"] != second["validation"]


# -- metrics ---------------------------------------------------------------------------------


def test_average_precision_by_hand() -> None:
    # ranks 1..4: hit, miss, hit, miss → P@1 = 1 (R .5), P@3 = 2/3 (R 1): AP = .5 + .5·2/3
    labels = np.array([True, False, True, False])
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6]), labels) == pytest.approx(5 / 6)
    # a tie is one threshold: {0.5, 0.5} gives P .5 at R .5, then P 2/3 at R 1
    tied = average_precision(np.array([0.5, 0.5, 0.1]), np.array([True, False, True]))
    assert tied == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    # NaN ranks last; no positive: NaN
    assert average_precision(np.array([math.nan, 0.2]), np.array([False, True])) == 1.0
    assert math.isnan(average_precision(np.array([0.1]), np.array([False])))


def test_budget_threshold_flags_at_most_the_budget() -> None:
    scores = np.array([0.9, 0.1, 0.5, 0.3] + [0.0] * 96)  # 100 users
    t = budget_threshold(scores, 0.02)
    assert (scores >= t).sum() == 2 and t > 0.3
    assert budget_threshold(scores, 0.001) > 0.9


# -- the CLI ---------------------------------------------------------------------------------


def test_train_writes_a_versioned_deterministic_model_file(
    exports: dict[str, Path], model_file: Path, tmp_path: Path
) -> None:
    document = json.loads(model_file.read_text())
    assert document["format"] == "kouza-risk-model/1"
    assert document["version"].startswith("lgbm-") and len(document["version"]) == 22
    assert document["features"] == list(FEATURE_NAMES)
    [described] = document["training"]["files"]
    assert described["sha256"] == read_export(exports["train"]).sha256
    assert document["training"]["label_delay_days"] == 7
    counts = document["training"]["counts"]
    assert counts["train_fraud_labels"] > 0 and counts["train_attacks_unlabelled"] > 0
    assert 0 < document["threshold"] <= 1 and "average_precision" in document["validation"]
    again = tmp_path / "again.json"
    args = ["risk", "train", "--events", str(exports["train"]), "--out", str(again)]
    assert runner.invoke(cli, args).exit_code == 0
    assert again.read_bytes() == model_file.read_bytes()
    LearnedModel.load(again)


def test_evaluate_compares_rules_model_and_both(
    exports: dict[str, Path], model_file: Path, tmp_path: Path
) -> None:
    png = tmp_path / "frontier.png"
    result = runner.invoke(
        cli,
        [
            *("risk", "evaluate", "--events", str(exports["other"])),
            *("--model", str(model_file), "--json", "--frontier-png", str(png)),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    overall = report["overall"]
    for key in ("rules", "model", "rules_or_model"):
        row = overall[key]
        assert {"precision", "recall", "recall_yen", "yen_flagged_per_1000_flags"} <= set(row)
    both, rules = overall["rules_or_model"], overall["rules"]
    assert both["attacks_flagged"] >= rules["attacks_flagged"]
    assert overall["average_precision"] > 0.5
    assert overall["at_budget"]["model"]["honest_user_share"] <= 0.01
    assert set(overall["leak_check"]["single_feature_ap"]) == set(FEATURE_NAMES)
    assert report["suspected_leaks"] == []
    assert [part["trained_on"] for part in report["files"].values()] == [False]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert overall["frontier"]["model"] and overall["frontier"]["rules"][0] is not None


def test_leak_check_finds_a_feature_that_separates_alone(
    exports: dict[str, Path], model_file: Path
) -> None:
    args = ["risk", "evaluate", "--events", str(exports["leaky"]), "--model", str(model_file)]
    loose = runner.invoke(cli, [*args, "--json"])
    assert loose.exit_code == 0
    assert json.loads(loose.stdout)["suspected_leaks"] == ["hour_jst"]
    strict = runner.invoke(cli, [*args, "--strict"])
    assert strict.exit_code == 2 and "hour_jst" in strict.output


def test_bad_inputs_fail_clearly(exports: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "signup", "at": "2026-01-01T00:00:00+00:00"}\n')
    out = tmp_path / "m.json"
    result = runner.invoke(cli, ["risk", "train", "--events", str(bad), "--out", str(out)])
    assert result.exit_code == 1 and "line 1" in result.output and not out.exists()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": "kouza-risk-model/1", "feature_set": "v0-x"}))
    result = runner.invoke(
        cli, ["risk", "evaluate", "--events", str(exports["other"]), "--model", str(broken)]
    )
    assert result.exit_code == 1 and "retrain" in result.output
    early = ["--cutoff", "2025-12-01", "--out", str(out)]
    result = runner.invoke(cli, ["risk", "train", "--events", str(exports["train"]), *early])
    assert result.exit_code == 1 and "0 fraud labels" in result.output and not out.exists()


def test_the_runtime_builds_its_engine_with_the_configured_model(
    db_url: str, tmp_path: Path, model_file: Path
) -> None:
    clock, mailbox = ManualClock(START), MemoryMailbox()
    runtime = make_runtime(db_url, tmp_path, clock, mailbox, risk_model_path=str(model_file))
    try:
        runtime.risk_engine = None  # built from settings on first use, as in a server
        engine = risk.engine(runtime)
        assert engine.learned is not None
        assert engine.learned.version == LearnedModel.load(model_file).version
    finally:
        runtime.db.dispose()


# -- at decision time ------------------------------------------------------------------------


def test_a_bad_model_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text("{not json")
    settings = Settings(var_dir=tmp_path / "var", secret_key="x" * 32, risk_model_path=str(path))
    with pytest.raises(ModelFileError, match="cannot read the model"):
        build_runtime(settings, database_url=f"sqlite:///{tmp_path / 'k.db'}")


def test_decisions_carry_the_model_for_operators_only(rt: Runtime, model_file: Path) -> None:
    """Loaded, the model scores every decision with its five largest contributions; a shadow
    rule reading ``model("risk")`` is reported, not enforced; the stored decision and the ops
    view show the verdict; the customer's refusal carries only the reference."""
    model = LearnedModel.load(model_file)
    rules = parse_rule_set(
        "rules:\n"
        "  - id: model-says-fraud\n    events: [topup]\n"
        '    when: model("risk") >= 0.0\n    outcome: block\n    shadow: true\n',
        source="test",
    )
    rt.risk_engine = RiskEngine(rules, InMemoryFeatureStore(), learned=model)
    t0 = START + timedelta(days=1)
    with rt.db.unit_of_work() as session:
        risk.assess(session, RiskEvent(type=EventType.SIGNUP, at=t0, wallet="w", device="d"))
        decision = risk.assess(
            session,
            RiskEvent(type=EventType.TOPUP, at=t0 + timedelta(minutes=3), wallet="w", amount=9),
        )
    verdict = decision.model
    assert verdict is not None and verdict.version == model.version
    assert len(verdict.top) == 5 and {c.feature for c in verdict.top} <= set(FEATURE_NAMES)
    contributions = [abs(c.contribution) for c in verdict.top]
    assert contributions == sorted(contributions, reverse=True)
    assert [r.id for r in decision.fired] == ["model-says-fraud"] and decision.fired[0].shadow
    assert decision.outcome.value == "allow"  # shadow: reported, not enforced
    with rt.db.session() as session:
        stored = session.get(RiskDecisionRecord, decision.record_id)
        assert stored is not None and stored.model == verdict.to_json()
    client = TestClient(create_app(rt))
    shown = client.get(
        f"/v1/ops/risk/decisions/{decision.record_id}", headers=_headers(rt, OperatorRole.ANALYST)
    ).json()
    assert shown["model"]["version"] == model.version and len(shown["model"]["top"]) == 5
    refusal = RiskRefused("refused", rules=["x"], reference=decision.record_id)
    assert refusal.to_dict() == {
        "error": "risk_refused",
        "message": "refused",
        "details": {"reference": decision.record_id},
    }


def test_on_a_shared_store_the_model_reads_join_the_rules_reads(model_file: Path) -> None:
    """One round trip per decision: the snapshot is asked for the rules' windows and the
    model's together (the longer window, or the whole history, per dimension)."""
    from kouza.risk.plan import ReadPlanner
    from kouza.risk.service import _with

    model = LearnedModel.load(model_file)
    plan = ReadPlanner().plan(shipped_rule_set(), EventType.LINK_ATTEMPT)
    merged = _with(plan, model.reads)
    assert set(merged) == set(plan) | set(model.reads)
    assert merged["wallet"] is None  # since(wallet, "link_created"): the whole history
    assert merged["ip24"] == max(w for w in (plan.get("ip24"), model.reads["ip24"]) if w)


def test_every_store_gives_the_model_the_same_history(
    stores: Stores, exports: dict[str, Path], model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In memory, on Redis read feature by feature, and on Redis in one snapshot per decision
    (the rules' reads and the vector's together), the model scores what training saw; with
    snapshots no read goes back to Redis outside the decision's one round trip."""
    direct: list[str] = []
    members = RedisFeatureStore._members

    def counted(self: RedisFeatureStore, key: str, since: Any) -> Any:
        direct.append(key)
        return members(self, key, since)

    monkeypatch.setattr(RedisFeatureStore, "_members", counted)
    model = LearnedModel.load(model_file)
    one = read_export(exports["other"]).worlds[0]
    events = one.events[:300]
    engine = RiskEngine(shipped_rule_set(), stores.new(), learned=model)
    verdicts = [d.model for d in stores.judge(engine, events)]
    expected = model.scores(
        replay(replace(one, events=events, attackers=one.attackers[:300])).vectors
    )
    scores = [v.score for v in verdicts if v is not None]
    assert np.allclose(scores, expected, rtol=1e-9, atol=1e-12)
    if stores.kind == "redis-snapshot":
        assert direct == []
