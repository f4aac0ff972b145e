"""Several seeds and the ablation through the real code, on ``tiny.yaml`` (a few seconds a world).

Seeds are independent worlds: the figures of one seed do not depend on which other seeds ran
beside it nor on how many processes ran them; the summary's median and range are those of the
per-seed figures. The ablation run has a row and a chart for every layer of kouza. The CLI's
options reach :func:`simulate`, and impossible values are refused with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from typer.testing import CliRunner

from kouza.cli.main import app
from kouza.sim.aggregate import median
from kouza.sim.profiles import LAYERS, ablation_profiles
from kouza.sim.report import CHARTS, write_report
from kouza.sim.results import SimulationResult
from kouza.sim.run import scale_population, simulate
from kouza.sim.scenario import Scenario, ScenarioError, load_scenario

TINY = str(Path(__file__).with_name("tiny.yaml"))
PROFILES = ["legacy-2019", "kouza"]
SEEDS = [11, 12]
ABLATION = [made.name for made in ablation_profiles()]


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return load_scenario(TINY)


@pytest.fixture(scope="module")
def seeded(tiny: Scenario) -> dict[int, SimulationResult]:
    """Two seeds of two profiles, run in this process and in two worker processes."""
    return {jobs: simulate(tiny, profiles=PROFILES, seeds=SEEDS, jobs=jobs) for jobs in (1, 2)}


@pytest.fixture(scope="module")
def ablated(
    tiny: Scenario, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SimulationResult, Path, list[Path]]:
    """kouza and every kouza-without-<layer>, one seed, and the report written from it."""
    result = simulate(tiny, profiles=ABLATION, jobs=2)
    out = tmp_path_factory.mktemp("ablation")
    return result, out, write_report(result, out)


class TestSeeds:
    def test_same_summary_whatever_the_number_of_processes(
        self, seeded: dict[int, SimulationResult]
    ) -> None:
        assert seeded[1].summary() == seeded[2].summary()
        assert [(run.profile, run.seed) for run in seeded[2].profiles] == [
            (name, seed) for name in PROFILES for seed in SEEDS
        ]

    def test_per_seed_entries_and_their_median_and_range(
        self, seeded: dict[int, SimulationResult]
    ) -> None:
        result = seeded[1]
        summary = result.summary()
        assert (summary["scenario"], summary["seeds"], summary["population_scale"]) == (
            "tiny",
            SEEDS,
            1.0,
        )
        for name, entry in summary["profiles"].items():
            assert list(entry["per_seed"]) == [str(seed) for seed in SEEDS]
            for run in result.by_profile()[name]:
                assert entry["per_seed"][str(run.seed)] == run.summary()
            for key in (
                "loss_yen",
                "victims",
                "attack_attempts",
                "honest_active_users",
                "operations",
            ):
                values = [figures[key] for figures in entry["per_seed"].values()]
                assert entry["min"][key] == min(values), (name, key)
                assert entry["max"][key] == max(values), (name, key)
                assert entry["median"][key] == median(values), (name, key)
        # two draws, two different worlds: the honest population differs between the seeds
        users = summary["profiles"]["kouza"]["per_seed"]
        assert users["11"]["honest_active_users"] != users["12"]["honest_active_users"]
        # the legacy design is robbed in both
        assert summary["profiles"]["legacy-2019"]["min"]["loss_yen"] > 0

    def test_a_seed_gives_the_same_figures_alone(
        self, tiny: Scenario, seeded: dict[int, SimulationResult]
    ) -> None:
        alone = simulate(tiny.model_copy(update={"seed": 12}), profiles=["kouza"])
        assert alone.seeds == [12]
        assert (
            seeded[1].summary()["profiles"]["kouza"]["per_seed"]["12"]
            == alone.profiles[0].summary()
        )

    def test_bad_seeds_are_refused(self, tiny: Scenario) -> None:
        with pytest.raises(ScenarioError, match="seeds must be distinct"):
            simulate(tiny, profiles=["kouza"], seeds=[1, 1])
        with pytest.raises(ScenarioError, match="seeds must be distinct and at least one"):
            simulate(tiny, profiles=["kouza"], seeds=[])
        with pytest.raises(ScenarioError, match="population scale must be a number greater"):
            simulate(tiny, profiles=["kouza"], population_scale=0)

    def test_population_scale_multiplies_the_wallet_share_capped_at_everyone(
        self, tiny: Scenario
    ) -> None:
        assert scale_population(tiny, 1.0) is tiny
        assert scale_population(tiny, 0.5).population.wallet_share == 0.1
        assert scale_population(tiny, 10).population.wallet_share == 1.0
        assert scale_population(tiny, 0.5).population.linked_share == tiny.population.linked_share


class TestAblation:
    def test_every_layer_has_a_row(
        self, ablated: tuple[SimulationResult, Path, list[Path]]
    ) -> None:
        result, _, _ = ablated
        rows = result.summary()["ablation"]
        assert [row["layer"] for row in rows] == list(LAYERS)
        kouza = result.summary()["profiles"]["kouza"]["per_seed"]["11"]
        for row in rows:
            assert row["description"] == LAYERS[row["layer"]][0]
            without = result.summary()["profiles"][row["profile"]]["per_seed"]["11"]
            effect = row["per_seed"]["11"]
            assert effect["yen_saved"] == without["loss_yen"] - kouza["loss_yen"]
            assert effect["net_yen_saved"] == without["net_loss_yen"] - kouza["net_loss_yen"]
            assert effect["honest_active_users"] == kouza["honest_active_users"] > 0
            for kind, caused in effect["friction_caused"]["per_user"].items():
                assert caused == (
                    kouza["friction"]["per_user"][kind]["users"]
                    - without["friction"]["per_user"][kind]["users"]
                )

    def test_report_files(self, ablated: tuple[SimulationResult, Path, list[Path]]) -> None:
        result, out, paths = ablated
        assert [path.name for path in paths] == [
            "summary.json",
            "results.json",
            *(f"{name}.png" for name in CHARTS),
            "ablation.png",
            "comparison.md",
            "report.html",
        ]
        for path in paths:
            assert path.stat().st_size > 0, path
        assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == result.summary()
        assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        html = (out / "report.html").read_text(encoding="utf-8")
        markdown = (out / "comparison.md").read_text(encoding="utf-8")
        for layer, (description, _) in LAYERS.items():
            assert f"<td>{layer}</td><td>{escape(description)}</td>" in html
            assert f"| {layer} | {description} |" in markdown
        assert '<figure id="ablation">' in html


def _invoke(*args: str, columns: int = 80) -> Any:
    return CliRunner().invoke(app, ["simulate", TINY, *args], env={"COLUMNS": str(columns)})


class TestCli:
    def test_seed_seeds_and_population_scale(
        self, tmp_path: Path, seeded: dict[int, SimulationResult]
    ) -> None:
        out = tmp_path / "out"
        answer = _invoke(
            "--defences",
            "kouza",
            "--seed",
            "12",
            "--seeds",
            "2",
            "--population-scale",
            "0.5",
            "--jobs",
            "1",
            "--out",
            str(out),
        )
        assert answer.exit_code == 0, answer.output
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert (summary["seeds"], summary["population_scale"], summary["wallet_share"]) == (
            [12, 13],
            0.5,
            0.1,
        )
        scaled = summary["profiles"]["kouza"]["per_seed"]["12"]["honest_active_users"]
        full = seeded[1].summary()["profiles"]["kouza"]["per_seed"]["12"]["honest_active_users"]
        assert 0 < scaled < full
        assert "honest population scaled ×0.5 (wallet share 0.1)" in answer.output
        html = (out / "report.html").read_text(encoding="utf-8")
        assert "<strong>Scaled run:</strong> honest population ×0.5, wallet share 0.1" in html

    @pytest.mark.parametrize(
        ("args", "profiles", "seeds"),
        [
            (["--ablation"], ABLATION, [11]),
            (["--ablation", "--defences", "legacy-2019"], ["legacy-2019", *ABLATION], [11]),
            (
                ["--ablation", "--defences", "kouza,jba-2020"],
                ["kouza", "jba-2020", *ABLATION[1:]],
                [11],
            ),
            (["--seeds", "3", "--seed", "5"], None, [5, 6, 7]),
            (["--seeds", "2"], None, [11, 12]),
        ],
    )
    def test_options_reach_simulate(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        ablated: tuple[SimulationResult, Path, list[Path]],
        args: list[str],
        profiles: list[str] | None,
        seeds: list[int],
    ) -> None:
        calls: list[dict[str, Any]] = []

        def recorded(scenario: Scenario, **options: Any) -> SimulationResult:
            calls.append(options)
            return ablated[0]

        monkeypatch.setattr("kouza.sim.run.simulate", recorded)
        answer = _invoke(*args, "--out", str(tmp_path / "out"), columns=250)
        assert answer.exit_code == 0, answer.output
        assert (calls[0]["profiles"], calls[0]["seeds"]) == (profiles, seeds)
        assert calls[0]["population_scale"] == 1.0
        assert "What each layer of kouza does" in answer.output
        for layer in LAYERS:
            assert f"│ {layer} " in answer.output

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--seeds", "0"], "--seeds must be at least 1, got 0"),
            (["--seeds", "two"], "Invalid value for '--seeds'"),
            (["--seed", "x"], "Invalid value for '--seed'"),
            (
                ["--population-scale", "0"],
                "--population-scale must be a number greater than 0, got 0.0",
            ),
            (["--population-scale", "-2"], "--population-scale must be a number greater than 0"),
            (["--population-scale", "nan"], "got nan"),
            (["--population-scale", "half"], "Invalid value for '--population-scale'"),
            (["--jobs", "0"], "--jobs must be at least 1, got 0"),
            (["--ablation", "--defences", "kouza,"], "--defences needs profile names separated"),
            (
                ["--defences", "kouza-without-courage"],
                "unknown defence profiles ['kouza-without-courage']",
            ),
        ],
    )
    def test_bad_values_are_refused(self, tmp_path: Path, args: list[str], message: str) -> None:
        answer = _invoke(*args, "--out", str(tmp_path / "out"))
        assert answer.exit_code != 0
        assert message in " ".join(answer.output.replace("│", " ").split()), answer.output
        assert "Traceback" not in answer.output
        assert not (tmp_path / "out").exists()
