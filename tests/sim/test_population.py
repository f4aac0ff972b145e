"""A population larger than the attacked world's sample: honest worlds beside it (ADR 0030).

The honest users beyond the attacked world's own sample are drawn into honest worlds of
``population.shard_size`` users, fixed by the scenario; each runs every profile with the
operator's switches of its attacked world replayed; their honest figures add up. The figures do
not depend on where the worlds ran: in this process, on a local Dask cluster, or on the Dask
cluster at a scheduler address.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kouza.cli.main import app
from kouza.sim.population import honest_world, make_plan, shard_sizes
from kouza.sim.report import write_report
from kouza.sim.results import ControlChange, ProfileResult, SimulationResult
from kouza.sim.run import WorldTask, run_world, seed_world, simulate, with_honest_users
from kouza.sim.scenario import Scenario, ScenarioError, load_scenario

TINY = str(Path(__file__).with_name("tiny.yaml"))
EXTRA = 150
"""Honest users beyond the attacked world's sample: two honest worlds of 75 (shard size 100)."""


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    scenario = load_scenario(TINY)
    population = scenario.population.model_copy(update={"shard_size": 100})
    return scenario.model_copy(update={"population": population})


@pytest.fixture(scope="module")
def base(tiny: Scenario) -> int:
    """Honest users of the attacked world's own sample."""
    return len(make_plan(tiny).honest)


@pytest.fixture(scope="module")
def plain(tiny: Scenario, base: int) -> SimulationResult:
    return simulate(tiny, profiles=["kouza"], honest_users=base + EXTRA, jobs=1)


class TestShards:
    def test_the_extra_users_are_cut_into_worlds_of_the_scenario_not_of_the_machine(
        self, tiny: Scenario, base: int
    ) -> None:
        wanted = with_honest_users(tiny, base + EXTRA)
        assert shard_sizes(wanted, base) == [75, 75]
        assert shard_sizes(with_honest_users(tiny, base + 201), base) == [67, 67, 67]
        assert shard_sizes(with_honest_users(tiny, base), base) == []
        assert shard_sizes(tiny, base) == []  # no honest_users: the attacked world alone

    def test_an_honest_world_has_the_banks_proportions_and_no_attacker(
        self, tiny: Scenario
    ) -> None:
        world = honest_world(tiny, 75)
        assert [(bank.code, bank.customers) for bank in world.banks] == [("0125", 38), ("0005", 37)]
        assert world.attackers == []
        plan = make_plan(world, 1)
        assert len(plan.honest) == 75  # every customer of an honest world uses the wallet
        assert plan.counts()["join"] == 75 and "attack" not in plan.counts()
        # its own random streams: another shard draws other people and other days
        other = make_plan(world, 2)
        assert [p.citizen.number for p in plan.honest] != [p.citizen.number for p in other.honest]
        assert [a.at for a in plan.actions[:20]] != [a.at for a in other.actions[:20]]
        assert [p.citizen.number for p in make_plan(world, 1).honest] == [
            p.citizen.number for p in plan.honest
        ]

    def test_a_run_carries_the_population_and_adds_the_honest_worlds_up(
        self, plain: SimulationResult, tiny: Scenario, base: int
    ) -> None:
        alone = simulate(tiny, profiles=["kouza"], jobs=1)
        kouza = plain.by_profile()["kouza"][0]
        assert kouza.worlds == 3 and plain.honest_users == base + EXTRA
        # the attack is unchanged: its figures are the attacked world's alone
        assert (kouza.loss_yen, kouza.attack_attempts, kouza.victims) == (
            alone.profiles[0].loss_yen,
            alone.profiles[0].attack_attempts,
            alone.profiles[0].victims,
        )
        # the honest side grew by the honest worlds' users (all of them join in 12 days)
        assert kouza.honest_active_users == alone.profiles[0].honest_active_users + EXTRA
        assert kouza.honest_operations > 5 * alone.profiles[0].honest_operations
        summary = plain.summary()
        assert summary["honest_users"] == base + EXTRA
        assert summary["profiles"]["kouza"]["median"]["worlds"] == 3

    def test_an_honest_world_that_lost_money_is_a_bug(self) -> None:
        attacked = ProfileResult(profile="kouza", description="")
        with pytest.raises(ValueError, match="lost money"):
            attacked.absorb(ProfileResult(profile="kouza", description="", loss_yen=1))

    def test_an_impossible_population_is_refused_and_0_is_the_attacked_world_alone(
        self, tiny: Scenario, base: int
    ) -> None:
        with pytest.raises(ScenarioError, match="0 to 10,000,000 honest users"):
            simulate(tiny, profiles=["kouza"], honest_users=-1)
        refused = CliRunner().invoke(app, ["simulate", TINY, "--population", "-5"])
        assert refused.exit_code != 0
        assert "--population must be between 0 and 10,000,000" in refused.output
        assert shard_sizes(with_honest_users(tiny, 0), base) == []


class TestOperatorSwitchesReachTheHonestWorlds:
    def test_a_bank_switched_off_in_the_attacked_world_is_off_in_the_honest_ones(
        self, tiny: Scenario
    ) -> None:
        """The switches of the attacked world are replayed at the same moment: honest customers
        of that bank in another world are refused links and top-ups as they would have been."""
        world = honest_world(tiny, 75)
        templates = seed_world(world, 1)
        task = WorldTask(world, "kouza", 1, "kouza", None)
        free = run_world(task, templates, None)
        attacked = ProfileResult(profile="kouza", description="")
        at = tiny.start.isoformat()
        attacked.controls = [
            ControlChange(at, scope, "0005", True, "test: attack at this bank")
            for scope in ("bank_charges", "bank_links")
        ]
        stopped = run_world(task, templates, attacked)
        assert free.honest_refusals.get("kill_switch_active", 0) == 0
        assert stopped.honest_refusals.get("kill_switch_active", 0) > 0
        assert stopped.friction_users["link_refusal"] > free.friction_users["link_refusal"]
        assert stopped.controls == []  # replayed, not the honest world's own decisions


class TestWhereTheWorldsRun:
    def test_the_dask_cluster_at_a_scheduler_address_gives_the_same_summary(
        self, plain: SimulationResult, tiny: Scenario, base: int, tmp_path: Path
    ) -> None:
        from distributed import LocalCluster

        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            remote = simulate(
                tiny,
                profiles=["kouza"],
                honest_users=base + EXTRA,
                scheduler=cluster.scheduler_address,
            )
        assert remote.summary() == plain.summary()
        # and the summary.json written from either is the same file
        write_report(plain, tmp_path / "plain")
        write_report(remote, tmp_path / "dask")
        assert json.loads((tmp_path / "plain" / "summary.json").read_text()) == json.loads(
            (tmp_path / "dask" / "summary.json").read_text()
        )
