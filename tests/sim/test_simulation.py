"""The simulator drives the real code: the legacy design loses money, kouza does not, and the same
seed gives the same figures. Runs the shipped ``smoke`` scenario (three banks, five attacker
strategies, 45 days) — a few seconds per profile.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kouza.cli.main import app
from kouza.risk.events import RiskEvent
from kouza.sim.driver import Runner
from kouza.sim.results import SimulationResult
from kouza.sim.run import simulate
from kouza.sim.scenario import ScenarioError, load_scenario
from tests.sim.support import ledger_loss

STRATEGIES = {"leaked_credentials", "reverse_brute_force", "phishing", "mule", "low_and_slow"}


@pytest.fixture(scope="module")
def run() -> tuple[SimulationResult, dict[str, int]]:
    ledger_losses: dict[str, int] = {}

    def inspect(runner: Runner) -> None:
        ledger_losses[runner.profile.name] = ledger_loss(runner)

    result = simulate(load_scenario("smoke"), profiles=["legacy-2019", "kouza"], inspect=inspect)
    return result, ledger_losses


def test_the_2019_design_is_robbed_and_the_figures_come_from_the_ledger(
    run: tuple[SimulationResult, dict[str, int]],
) -> None:
    result, ledger_losses = run
    legacy = result.profiles[0]
    assert (legacy.profile, legacy.seed) == ("legacy-2019", 7)
    assert legacy.loss_yen > 0 and legacy.victims > 0 and legacy.banks_hit > 0
    assert legacy.loss_yen == ledger_losses["legacy-2019"]
    assert legacy.loss_yen == sum(legacy.losses_by_bank.values()) == sum(legacy.losses_by_day)
    assert legacy.loss_yen == sum(attacker.loss_yen for attacker in legacy.attackers)
    # the calendar-month cap let a victim lose more than ¥300,000 only by month straddling
    assert legacy.max_loss_per_victim_yen <= 600_000


def test_kouza_is_not(run: tuple[SimulationResult, dict[str, int]]) -> None:
    result, ledger_losses = run
    kouza = result.profiles[1]
    assert kouza.profile == "kouza"
    assert kouza.loss_yen == ledger_losses["kouza"] == 0
    assert kouza.victims == 0 and kouza.banks_hit == 0
    assert kouza.attack_attempts == result.profiles[0].attack_attempts
    for attacker in kouza.attackers:
        assert attacker.stages["linked"] == 0, attacker
        assert attacker.refusals, f"{attacker.name} was stopped by something the code said"


def test_every_strategy_is_exercised(run: tuple[SimulationResult, dict[str, int]]) -> None:
    legacy = run[0].profiles[0]
    assert {attacker.strategy for attacker in legacy.attackers} == STRATEGIES
    for attacker in legacy.attackers:
        assert attacker.attempts > 0, attacker
        assert attacker.stages["link_attempted"] > 0, attacker
    by_name = {attacker.name: attacker for attacker in legacy.attackers}
    for name in ("leaked", "phish", "mule", "slow"):
        assert by_name[name].stages["charged"] > 0, by_name[name]
    sweep = by_name["sweep"]
    # one PIN across many accounts: most attempts are wrong-PIN refusals by the bank
    assert sweep.refusals.get("bank_link_refused", 0) > sweep.stages["linked"]
    assert "did_not_take_the_bait" in by_name["phish"].refusals
    # a phished internet-banking login + live code is enough against the 2019 wallet: it sent
    # the bank the name and birth date its user typed, which the phisher knows
    phished_login = by_name["phish-ib"]
    assert phished_login.stages["link_attempted"] > 0
    assert phished_login.stages["linked"] > 0


def test_same_seed_same_figures(
    run: tuple[SimulationResult, dict[str, int]], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    answer = CliRunner().invoke(
        app,
        [
            "simulate",
            "smoke",
            "--defences",
            "legacy-2019",
            "--out",
            str(out),
            "--export-events",
            str(tmp_path / "events.jsonl"),
        ],
    )
    assert answer.exit_code == 0, answer.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    legacy = run[0].profiles[0]
    assert (summary["seeds"], list(summary["profiles"])) == ([legacy.seed], ["legacy-2019"])
    figures = summary["profiles"]["legacy-2019"]
    assert figures["per_seed"] == {str(legacy.seed): legacy.summary()}
    assert figures["median"] == figures["min"] == figures["max"] == legacy.summary()
    for name in (
        "summary.json",
        "results.json",
        "report.html",
        "comparison.md",
        "losses_over_time.png",
        "losses_by_bank.png",
        "friction_vs_loss.png",
        "attack_funnel.png",
    ):
        assert (out / name).stat().st_size > 0, name
    lines = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    labels = {event["label"].partition(":")[0] for event in events}
    assert labels == {"attack", "honest"}
    RiskEvent.from_json(events[0])  # the export is what `kouza risk backtest --events` reads


def test_bad_scenarios_and_profiles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="unknown defence profiles"):
        simulate(load_scenario("smoke"), profiles=["no-such-profile"])
    answer = CliRunner().invoke(app, ["simulate", str(tmp_path / "missing.yaml")])
    assert answer.exit_code == 1
    assert "no scenario file" in answer.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nseed: 1\n", encoding="utf-8")
    answer = CliRunner().invoke(app, ["simulate", str(broken)])
    assert answer.exit_code == 1
    assert "start: Field required" in answer.output
    answer = CliRunner().invoke(
        app, ["simulate", "smoke", "--defences", "legacy-2019,nope", "--out", str(tmp_path / "out")]
    )
    assert answer.exit_code == 1
    assert "unknown defence profiles ['nope']" in answer.output
    assert not (tmp_path / "out").exists()
