"""``kouza risk``: check rule files and backtest them over recorded events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track
from rich.table import Column, Table

from kouza.cli.common import console, fail, runtime
from kouza.errors import KouzaError
from kouza.risk.backtesting import Backtest, Labelled, read_labelled, rule_report
from kouza.risk.events import RiskEvent
from kouza.risk.rules import RuleSet, load_rule_set
from kouza.risk.service import risk

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
        extra = (
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
        fired.add_row(name, str(total), *extra)
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
