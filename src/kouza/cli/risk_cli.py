"""``kouza risk``: check rule files, backtest them over recorded events, compare versions side
by side, train and evaluate the learned model beside them, and report on a candidate run in
shadow."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, track
from rich.table import Column, Table

from kouza.cli.common import console, error_console, fail, runtime
from kouza.errors import KouzaError
from kouza.ops.shadow import shadow_report
from kouza.risk.backtesting import Backtest, Labelled, read_labelled, rule_report
from kouza.risk.comparing import Candidate, CandidateError, compare, parse_candidate
from kouza.risk.events import RiskEvent
from kouza.risk.learned.dataset import ExportFile, read_export
from kouza.risk.learned.evaluation import draw_frontier, evaluate
from kouza.risk.learned.model import LearnedModel, ModelFileError
from kouza.risk.learned.training import TrainingError, TrainOptions, train
from kouza.risk.rules import RuleSet, load_rule_set
from kouza.risk.service import risk, shipped_rule_set

app = typer.Typer(help="The risk engine's rule sets.", no_args_is_help=True)


def _rules(path: Path) -> RuleSet:
    try:
        return load_rule_set(path)
    except KouzaError as exc:
        raise fail(exc.message) from None


@app.command("check")
def check(ruleset: Annotated[Path, typer.Argument(help="Rule file (YAML)")]) -> None:
    """Validate a rule file (exit 1 with the line and reason if it is wrong)."""
    rules = _rules(ruleset)
    console.print(f"[green]ok[/]: {len(rules.rules)} rules, version {rules.version}")


def _stored_events(since: datetime, until: datetime | None) -> list[RiskEvent]:
    with runtime().db.unit_of_work() as session:
        return risk.recorded_events(session, since=since, until=until)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command("backtest")
def backtest_command(
    ruleset: Annotated[Path, typer.Argument(help="Rule file (YAML)")],
    events: Annotated[
        Path | None, typer.Option("--events", help="JSON-lines file of events")
    ] = None,
    since: Annotated[datetime | None, typer.Option(help="Replay stored events from (UTC)")] = None,
    until: Annotated[datetime | None, typer.Option(help="… until (UTC)")] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Only the simulated worlds of this defence profile (sim_profile)"),
    ] = None,
    show: Annotated[int, typer.Option(help="How many non-allow decisions to list")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the per-rule figures as JSON instead")
    ] = False,
) -> None:
    """Replay recorded events (a file, or the stored ones --since) through a rule set and
    print what it would have decided; nothing is acted on. A simulator export is replayed world
    by world, and its labels give each rule's honest and attack hits and yen at stake."""
    rules = _rules(ruleset)
    if (events is None) == (since is None):
        raise fail("give either --events FILE or --since DATE")
    if events is not None:
        try:
            recorded = list(read_labelled(events))
        except OSError as exc:
            raise fail(f"{events}: cannot read: {exc}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise fail(str(exc)) from None
    else:
        start = _utc(since)
        assert start is not None
        recorded = [Labelled(event) for event in _stored_events(start, _utc(until))]
    if profile is not None:
        recorded = [e for e in recorded if e.event.attributes.get("sim_profile") == profile]
        if not recorded:
            raise fail(f"no events of profile {profile!r} in the file")
    report = rule_report(
        rules, track(recorded, description="replaying", console=console, disable=as_json)
    )
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    _print_backtest(report, show)


def _print_backtest(report: Backtest, show: int) -> None:
    labelled = report.honest_people or report.attack_wallets
    summary = Table(
        "outcome",
        "decisions",
        *(("honest", "attack", "honest people") if labelled else ()),
        title=f"{report.events} events, rules {report.version}",
    )
    for outcome, counts in sorted(report.outcomes.items()):
        extra = (
            (
                str(counts["honest"]),
                str(counts["attack"]),
                str(report.honest_people_by_outcome.get(outcome, "")),
            )
            if labelled
            else ()
        )
        summary.add_row(outcome, str(sum(counts.values())), *extra)
    console.print(summary)
    if labelled:
        console.print(
            f"{report.honest_people} honest people, {report.attack_wallets} attack wallets "
            f"moving ¥{report.attack_yen:,}"
        )
    headers = ["rule", "fired"]
    if labelled:
        headers += ["honest hits", "honest people", "attack hits", "attack wallets", "yen at stake"]
    fired = Table(*(Column(h, overflow="fold") for h in headers))
    rows = sorted(
        report.rules.values(),
        key=lambda f: -(f.honest_hits + f.attack_hits + f.unlabelled_hits),
    )
    for figures in rows:
        total = figures.honest_hits + figures.attack_hits + figures.unlabelled_hits
        name = figures.rule + (" (shadow)" if figures.shadow else "")
        cells: tuple[str, ...] = (
            (
                str(figures.honest_hits),
                str(len(figures.honest_people)),
                str(figures.attack_hits),
                str(len(figures.attack_wallets)),
                f"¥{figures.yen_at_stake:,}",
            )
            if labelled
            else ()
        )
        fired.add_row(name, str(total), *cells)
    console.print(fired)
    listing = Table(
        *(
            Column(h, overflow="fold")
            for h in ("time", "type", "wallet", "outcome", "score", "rules")
        )
    )
    shown = [d for _, d in report.decisions if d.outcome.value != "allow"][:show]
    for decision in shown:
        listing.add_row(
            decision.event.at.isoformat(timespec="seconds"),
            decision.event.type.value,
            decision.event.wallet,
            decision.outcome.value,
            str(decision.score),
            ", ".join(r.id for r in decision.fired),
        )
    console.print(listing)


def _exports(paths: list[Path]) -> list[ExportFile]:
    files = []
    for path in paths:
        try:
            files.append(read_export(path))
        except ValueError as exc:
            raise fail(str(exc)) from None
    return files


def _progress(files: list[ExportFile], description: str) -> tuple[Progress, Callable[[int], None]]:
    progress = Progress(console=error_console)  # stdout stays clean for --json
    task = progress.add_task(description, total=sum(f.events for f in files))
    return progress, lambda n: progress.advance(task, n)


@app.command("train")
def train_command(
    events: Annotated[
        list[Path], typer.Option("--events", help="Labelled export (JSON lines); repeatable")
    ],
    out: Annotated[Path, typer.Option("--out", help="Model file to write (JSON)")],
    cutoff: Annotated[
        datetime | None,
        typer.Option(help="Train on events before this date (UTC), validate on the rest"),
    ] = None,
    train_share: Annotated[
        float, typer.Option("--train-share", help="Without --cutoff: share of each world's period")
    ] = 0.7,
    label_delay_days: Annotated[
        float, typer.Option("--label-delay-days", help="Days until an attack's label is known")
    ] = 7.0,
    seed: Annotated[int, typer.Option(help="LightGBM's seed")] = 0,
    budget: Annotated[
        float, typer.Option(help="Share of honest users the threshold may flag (validation)")
    ] = 0.01,
) -> None:
    """Train a LightGBM risk model on labelled exports, split by time per world (late labels
    count as not-fraud at the cutoff), and write one versioned model file."""
    if cutoff is None and not 0.0 < train_share < 1.0:
        raise fail("--train-share must be between 0 and 1")
    if label_delay_days < 0 or not 0.0 < budget < 1.0:
        raise fail("--label-delay-days must be >= 0 and --budget between 0 and 1")
    files = _exports(events)
    options = TrainOptions(
        cutoff=_utc(cutoff),
        train_share=train_share,
        label_delay=timedelta(days=label_delay_days),
        seed=seed,
        budget=budget,
    )
    progress, advance = _progress(files, "replaying")
    try:
        with progress:
            document = train(files, options, advance)
    except TrainingError as exc:
        raise fail(str(exc)) from None
    text = (
        json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    )
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"{out}: cannot write: {exc}") from None
    validation = document["validation"]
    counts = document["training"]["counts"]
    console.print(
        f"[green]wrote[/] {out}: {document['version']} — trained on {counts['train_events']:,} "
        f"events ({counts['train_fraud_labels']:,} fraud labels known, "
        f"{counts['train_attacks_unlabelled']:,} attacks not yet labelled); validation "
        f"AP {_ap(validation['average_precision'])}, threshold {document['threshold']:.4f} "
        f"flags {validation['honest_users_flagged']}/{validation['honest_users']} honest users"
    )
    leaks = document["leak_check"]["suspected_leaks"]
    if leaks:
        console.print(f"[yellow]suspected leaks (one feature alone, AP > 0.95):[/] {leaks}")


def _ap(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _yen(value: float | None) -> str:
    return "—" if value is None else f"¥{value:,.0f}"


def _table(name: str, part: dict[str, Any]) -> Table:
    table = Table(
        "",
        "flagged",
        "precision",
        "recall",
        "recall ¥",
        "¥ per 1,000 flags",
        "honest users",
        title=f"{name}: {part['events']:,} events, {part['attacks']:,} attacks "
        f"({_yen(part['attack_yen'])}), model AP {_ap(part['average_precision'])}",
    )
    rows = [
        ("rules", part["rules"]),
        ("model", part["model"]),
        ("rules or model", part["rules_or_model"]),
        ("model at budget", part["at_budget"]["model"]),
        ("rules or model at budget", part["at_budget"]["rules_or_model"]),
    ]
    for label, row in rows:
        if row is None:
            table.add_row(label, "rules alone exceed the budget", "", "", "", "", "")
            continue
        table.add_row(
            label,
            f"{row['flagged']:,}",
            _pct(row["precision"]),
            _pct(row["recall"]),
            _pct(row["recall_yen"]),
            _yen(row["yen_flagged_per_1000_flags"]),
            f"{row['honest_users_flagged']}/{row['honest_users']} "
            f"({_pct(row['honest_user_share'])})",
        )
    return table


@app.command("evaluate")
def evaluate_command(
    events: Annotated[
        list[Path], typer.Option("--events", help="Labelled export (JSON lines); repeatable")
    ],
    model: Annotated[Path, typer.Option("--model", help="Model file from `kouza risk train`")],
    rules: Annotated[
        Path | None, typer.Option("--rules", help="Rule file (default: the shipped rules)")
    ] = None,
    budget: Annotated[float, typer.Option(help="Share of honest users that may be flagged")] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 2 when a feature alone looks like a leak")
    ] = False,
    frontier_png: Annotated[
        Path | None, typer.Option("--frontier-png", help="Draw the overall friction–loss frontier")
    ] = None,
) -> None:
    """Rules alone, the model alone and rules-or-model side by side on labelled exports (per
    file and overall), with a leak check and the friction–loss frontier."""
    if not 0.0 < budget < 1.0:
        raise fail("--budget must be between 0 and 1")
    try:
        learned = LearnedModel.load(model)
    except ModelFileError as exc:
        raise fail(str(exc)) from None
    rule_set = _rules(rules) if rules is not None else shipped_rule_set()
    files = _exports(events)
    progress, advance = _progress(files, "replaying")
    with progress:
        report = evaluate(files, learned, rule_set, budget=budget, progress=advance)
    if frontier_png is not None:
        draw_frontier(
            report["overall"], str(frontier_png), f"{learned.version} · rules {rule_set.version}"
        )
    if as_json:
        print(json.dumps(report, indent=1, ensure_ascii=False, allow_nan=False))
    else:
        console.print(
            f"model {learned.version} (threshold {learned.threshold:.4f}), rules "
            f"{rule_set.version}, budget {_pct(budget)} of honest users"
        )
        for path, part in report["files"].items():
            console.print(_table(Path(path).name, part))
        console.print(_table("overall", report["overall"]))
        aps = report["overall"]["leak_check"]["single_feature_ap"]
        strongest = sorted(aps.items(), key=lambda kv: -kv[1])[:5]
        console.print(
            "leak check (AP of one feature alone, overall): "
            + ", ".join(f"{name} {ap:.3f}" for name, ap in strongest)
        )
        if frontier_png is not None:
            console.print(f"wrote {frontier_png}")
    seen = [path for path, part in report["files"].items() if part["trained_on"]]
    if seen:
        error_console.print(
            f"[yellow]the model was trained on {', '.join(seen)}:[/] its figures there are not "
            "an evaluation"
        )
    if report["suspected_leaks"]:
        error_console.print(
            f"[yellow]suspected leaks (AP > 0.95 alone):[/] {report['suspected_leaks']}"
        )
        if strict:
            raise typer.Exit(2)


def _labelled(paths: list[Path], profile: str | None) -> list[Labelled]:
    """The labelled events of ``paths`` (every file's worlds), optionally one profile's."""
    recorded: list[Labelled] = []
    for path in paths:
        try:
            recorded.extend(read_labelled(path))
        except OSError as exc:
            raise fail(f"{path}: cannot read: {exc}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise fail(str(exc)) from None
    if not recorded:
        raise fail("no events in " + ", ".join(str(p) for p in paths))
    if profile is not None:
        recorded = [e for e in recorded if e.event.attributes.get("sim_profile") == profile]
        if not recorded:
            raise fail(f"no events of profile {profile!r} in the files")
    return recorded


@app.command("compare")
def compare_command(
    candidates: Annotated[
        list[str],
        typer.Argument(
            help="RULES.yaml, MODEL.json (the model alone at its threshold) or "
            "RULES.yaml+MODEL.json (rules with the model loaded); the first is the reference"
        ),
    ],
    events: Annotated[
        list[Path], typer.Option("--events", help="Labelled export (JSON lines); repeatable")
    ],
    model: Annotated[
        list[Path] | None,
        typer.Option("--model", help="Also compare this model alone (repeatable)"),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Only the simulated worlds of this defence profile (sim_profile)"),
    ] = None,
    budget: Annotated[
        float, typer.Option(help="Share of honest people a candidate may flag (marked)")
    ] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON")] = False,
) -> None:
    """Replay the same labelled events through several rule sets and models (world by world)
    and print them side by side, with each one's difference to the first."""
    if not 0.0 < budget < 1.0:
        raise fail("--budget must be between 0 and 1")
    loaded: list[Candidate] = []
    try:
        loaded = [parse_candidate(spec) for spec in [*candidates, *map(str, model or [])]]
    except CandidateError as exc:
        raise fail(str(exc)) from None
    recorded = _labelled(events, profile)
    with Progress(console=error_console, disable=as_json) as progress:

        def advancing(items: Any, name: str) -> Any:
            task = progress.add_task(f"replaying {name}", total=len(recorded))
            for item in items:
                yield item
                progress.advance(task)

        report = compare(loaded, recorded, budget=budget, progress=advancing)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    console.print(_comparison_table(report))


def _comparison_table(report: dict[str, Any]) -> Table:
    rows = report["candidates"]
    honest = report["honest_people"]
    table = Table(
        "",
        *(Column(f"{row['name']}\n{row['version']}", overflow="fold") for row in rows),
        title=f"{report['events']:,} events: {report['attack_events']:,} attack events of "
        f"{report['attack_wallets']:,} attack wallets moving ¥{report['attack_yen']:,}; "
        f"{honest:,} honest people",
    )

    def cells(
        show: Callable[[dict[str, Any]], str], delta: Callable[[dict[str, Any]], str]
    ) -> list[str]:
        out = [show(rows[0])]
        out += [f"{show(row)} ({delta(row['difference'])})" for row in rows[1:]]
        return out

    def number(key: str, sub: str | None = None) -> tuple[Callable[..., str], Callable[..., str]]:
        def pick(row: dict[str, Any]) -> Any:
            return row[key][sub] if sub is not None else row[key]

        return (lambda row: f"{pick(row):,}"), (lambda diff: f"{pick(diff):+,}")

    def share(key: str) -> tuple[Callable[..., str], Callable[..., str]]:
        return (lambda row: _pct(row[key])), (
            lambda diff: "—" if diff[key] is None else f"{diff[key] * 100:+.1f} pt"
        )

    def yen(key: str) -> tuple[Callable[..., str], Callable[..., str]]:
        return (lambda row: f"¥{row[key]:,}"), (lambda diff: f"{diff[key]:+,} ¥")

    def of(
        key: str, total: int, sub: str | None = None
    ) -> tuple[Callable[..., str], Callable[..., str]]:
        show, delta = number(key, sub)
        return (lambda row: f"{show(row)}/{total:,}"), delta

    lines: list[tuple[str, tuple[Callable[..., str], Callable[..., str]]]] = [
        ("flagged events (step_up+)", number("flagged")),
        ("attack events flagged", of("attacks_flagged", report["attack_events"])),
        ("precision", share("precision")),
        ("recall (events)", share("recall")),
        ("recall (yen)", share("recall_yen")),
        ("yen at stake flagged", yen("yen_at_stake")),
        ("honest people flagged", of("honest_people_flagged", honest)),
        ("… asked to step up", of("honest_people_by_class", honest, "step_up")),
        ("… held for review", of("honest_people_by_class", honest, "review")),
        ("… blocked or locked", of("honest_people_by_class", honest, "block_or_lock")),
        ("attack wallets flagged", of("attack_wallets_flagged", report["attack_wallets"])),
        (
            "attack wallets stopped (review+)",
            of("attack_wallets_stopped", report["attack_wallets"]),
        ),
    ]
    for label, (show, delta) in lines:
        table.add_row(label, *cells(show, delta))
    table.add_row(
        f"within budget ({_pct(report['budget'])} of honest people)",
        *("yes" if row["within_budget"] else "no" for row in rows),
    )
    return table


@app.command("shadow-report")
def shadow_report_command(
    since: Annotated[datetime, typer.Option(help="Decisions on events from (UTC)")],
    until: Annotated[datetime | None, typer.Option(help="… until (UTC)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """The candidate rule set run in shadow against the live rules, over stored decisions: the
    confusion of their outcomes, what each flagged that the other allowed, and what each caught
    of the wallets confirmed as fraud (a confirmed_fraud case, or a lock by a person)."""
    start, end = _utc(since), _utc(until)
    assert start is not None
    if end is not None and end <= start:
        raise fail("--until must be after --since")
    with runtime().db.unit_of_work() as session:
        report = shadow_report(session, since=start, until=end)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    versions = ", ".join(f"{v} ({n:,})" for v, n in report["candidate_versions"].items())
    console.print(
        f"{report['decisions']:,} decisions with a candidate since {report['since']}"
        + (f" until {report['until']}" if report["until"] else "")
        + (f": {versions}" if versions else "")
    )
    outcomes = list(report["confusion"])
    confusion = Table(
        "live ↓ / candidate →", *outcomes, title="decisions by live and candidate outcome"
    )
    for live, row in report["confusion"].items():
        confusion.add_row(live, *(f"{row[o]:,}" for o in outcomes))
    console.print(confusion)
    moved = Table("outcome", "candidate flags, live allowed", "live flags, candidate allows")
    for outcome in report["candidate_flagged_live_allowed"]:
        moved.add_row(
            outcome,
            f"{report['candidate_flagged_live_allowed'][outcome]:,}",
            f"{report['live_flagged_candidate_allowed'][outcome]:,}",
        )
    console.print(moved)
    fraud = report["confirmed_fraud"]
    caught = Table(
        "confirmed fraud",
        "live",
        "candidate",
        title=f"{fraud['wallets']:,} wallets confirmed as fraud, {fraud['events']:,} events",
    )
    for label, key in (
        ("wallets flagged (step_up+)", "flagged"),
        ("wallets stopped (review+)", "stopped"),
    ):
        caught.add_row(
            label, f"{fraud[f'wallets_live_{key}']:,}", f"{fraud[f'wallets_candidate_{key}']:,}"
        )
        caught.add_row(
            label.replace("wallets", "events"),
            f"{fraud[f'live_{key}']:,}",
            f"{fraud[f'candidate_{key}']:,}",
        )
    caught.add_row(
        "wallets flagged by one only",
        f"{fraud['wallets_flagged_by_live_only']:,}",
        f"{fraud['wallets_flagged_by_candidate_only']:,}",
    )
    console.print(caught)
