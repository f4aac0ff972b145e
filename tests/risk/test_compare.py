"""``kouza risk compare``: several versions replayed over the same labelled events, side by
side, with each one's difference to the first; bad files fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kouza.cli.main import app as cli
from tests.risk.learned_data import write_export
from tests.risk.test_endpoints_and_cli import SHIPPED_PATH

runner = CliRunner()
STRICT = (
    'version: "strict-1"\n'
    "rules:\n"
    "  - id: review-every-payment\n"
    "    events: [payment]\n"
    "    when: event.amount >= 1000\n"
    "    outcome: review\n"
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("compare")
    strict = folder / "strict.yaml"
    strict.write_text(STRICT)
    empty = folder / "empty.yaml"
    empty.write_text('version: "empty"\nrules: []\n')
    return {
        "events": write_export(folder / "events.jsonl", (7,)),
        "strict": strict,
        "empty": empty,
    }


def _compare(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(cli, ["risk", "compare", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_figures_differ_when_rules_differ(files: dict[str, Path]) -> None:
    report = _compare(
        SHIPPED_PATH, str(files["strict"]), str(files["empty"]), "--events", str(files["events"])
    )
    shipped, strict, empty = report["candidates"]
    assert [c["name"] for c in report["candidates"]] == [
        "default.yaml",
        "strict.yaml",
        "empty.yaml",
    ]
    assert strict["version"] == "strict-1" and "difference" not in shipped
    # two worlds of 50 honest users and 14 attackers each (tests/risk/learned_data.py)
    assert (report["honest_people"], report["attack_wallets"]) == (100, 28)
    # no rules: nothing flagged, nothing caught
    assert empty["flagged"] == 0 and empty["recall"] == 0.0 and empty["yen_at_stake"] == 0
    assert empty["honest_people_flagged"] == 0 and empty["attack_wallets_stopped"] == 0
    # reviewing every payment ≥ ¥1,000 holds nearly every honest customer and every attack
    # wallet (each ends with a ¥250,000 payment)
    assert strict["honest_people_by_class"]["review"] == strict["honest_people_flagged"] > 90
    assert strict["attack_wallets_stopped"] == 28
    assert strict["within_budget"] is False
    assert strict["honest_people_flagged"] != shipped["honest_people_flagged"]
    # the difference is to the first candidate, figure by figure
    diff = strict["difference"]
    assert diff["honest_people_flagged"] == (
        strict["honest_people_flagged"] - shipped["honest_people_flagged"]
    )
    assert diff["yen_at_stake"] == strict["yen_at_stake"] - shipped["yen_at_stake"]
    assert diff["honest_people_by_class"]["review"] == (
        strict["honest_people_by_class"]["review"] - shipped["honest_people_by_class"]["review"]
    )
    # precision and recall from the counts
    for row in (shipped, strict):
        assert row["precision"] == pytest.approx(row["attacks_flagged"] / row["flagged"])
        assert row["recall"] == pytest.approx(row["attacks_flagged"] / report["attack_events"])
    # the same candidate twice gives the same figures (the events are replayed afresh)
    again = _compare(SHIPPED_PATH, SHIPPED_PATH, "--events", str(files["events"]))
    first, second = again["candidates"]
    assert {k: v for k, v in second.items() if k != "difference"} == first
    diff = second["difference"]
    assert diff["flagged"] == diff["yen_at_stake"] == diff["honest_people_flagged"] == 0
    assert diff["precision"] == diff["recall_yen"] == 0.0
    assert set(diff["honest_people_by_class"].values()) == {0}


def test_profile_filter_and_table(files: dict[str, Path]) -> None:
    legacy = _compare(SHIPPED_PATH, "--events", str(files["events"]), "--profile", "legacy")
    assert (legacy["honest_people"], legacy["attack_wallets"]) == (50, 14)
    result = runner.invoke(
        cli,
        ["risk", "compare", SHIPPED_PATH, str(files["strict"]), "--events", str(files["events"])],
    )
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert "strict-1" in words and "honest people" in words


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        ("missing.yaml", "cannot read"),
        ("rules.txt", "a candidate file is a rule set"),
        ("bad.yaml", "line 4"),
        ("bad.json", "cannot read the model"),
        ("a.yaml+b.yaml", "two rule sets"),
    ],
)
def test_bad_files_fail_clearly(
    files: dict[str, Path], tmp_path: Path, candidate: str, message: str
) -> None:
    (tmp_path / "bad.yaml").write_text("rules:\n  - id: a\n    events: [topup]\n    when: 'x y'\n")
    (tmp_path / "bad.json").write_text("{nope")
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(STRICT)
    spec = "+".join(str(tmp_path / part) for part in candidate.split("+"))
    result = runner.invoke(cli, ["risk", "compare", spec, "--events", str(files["events"])])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    broken = tmp_path / "events.jsonl"
    broken.write_text('{"type": "teleport"}\n')
    result = runner.invoke(cli, ["risk", "compare", SHIPPED_PATH, "--events", str(broken)])
    assert result.exit_code == 1 and "line 1" in " ".join(result.output.split())


def test_models_alone_and_beside_rules(files: dict[str, Path], tmp_path: Path) -> None:
    """A model alone flags by its file's threshold (as step-ups only); rules with the model
    loaded decide as the rules do, reading ``model("risk")``."""
    train = write_export(tmp_path / "train.jsonl", (11,))
    model = tmp_path / "model.json"
    trained = runner.invoke(cli, ["risk", "train", "--events", str(train), "--out", str(model)])
    assert trained.exit_code == 0, trained.output
    reads = tmp_path / "reads-model.yaml"
    reads.write_text(
        'version: "reads-model"\nrules:\n'
        "  - {id: m, events: [topup, payment], when: 'model(\"risk\") >= 0.5', outcome: review}\n"
    )
    report = _compare(
        str(files["empty"]),
        f"{reads}+{model}",
        "--model",
        str(model),
        "--events",
        str(files["events"]),
    )
    empty, with_model, alone = report["candidates"]
    assert with_model["name"] == "reads-model.yaml+model.json"
    version = json.loads(model.read_text())["version"]
    assert with_model["version"] == f"reads-model + {version}"
    assert alone["version"].startswith(f"{version} ≥ ")
    # the model alone only ever asks for a step-up
    assert alone["flagged"] > 0
    assert alone["honest_people_by_class"]["review"] == 0 and alone["attack_wallets_stopped"] == 0
    # the rule reading the model holds for review, and catches what the empty set does not
    assert with_model["attack_wallets_stopped"] > 0
    assert (
        with_model["difference"]["attack_wallets_stopped"] == with_model["attack_wallets_stopped"]
    )
    assert empty["flagged"] == 0
