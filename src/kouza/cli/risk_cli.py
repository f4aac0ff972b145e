"""``kouza risk``: check rule files and backtest them over recorded events."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track
from rich.table import Table

from kouza.cli.common import console, fail, runtime
from kouza.errors import KouzaError
from kouza.risk.engine import backtest
from kouza.risk.events import RiskEvent
from kouza.risk.rules import RuleSet, load_rule_set
from kouza.risk.service import risk

app = typer.Typer(help="The risk engine's rule sets.", no_args_is_help=True)


def _rules(path: Path) -> RuleSet:
    try:
        return load_rule_set(path)
    except KouzaError as exc:
        raise fail(exc.message) from None


def _events(path: Path) -> list[RiskEvent]:
    events = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(RiskEvent.from_json(json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise fail(f"{path}: line {number}: {exc}") from None
    return events


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
    show: Annotated[int, typer.Option(help="How many non-allow decisions to list")] = 20,
) -> None:
    """Replay recorded events (a file, or the stored ones --since) through a rule set and
    print what it would have decided; nothing is acted on."""
    rules = _rules(ruleset)
    if (events is None) == (since is None):
        raise fail("give either --events FILE or --since DATE")
    if events is not None:
        recorded = _events(events)
    else:
        start = _utc(since)
        assert start is not None
        recorded = _stored_events(start, _utc(until))
    decisions = backtest(rules, track(recorded, description="replaying", console=console))
    by_outcome = Counter(d.outcome.value for d in decisions)
    by_rule = Counter(r.id + (" (shadow)" if r.shadow else "") for d in decisions for r in d.fired)
    summary = Table("outcome", "decisions", title=f"{len(decisions)} events, rules {rules.version}")
    for outcome, count in sorted(by_outcome.items()):
        summary.add_row(outcome, str(count))
    console.print(summary)
    fired = Table("rule", "fired")
    for rule_id, count in by_rule.most_common():
        fired.add_row(rule_id, str(count))
    console.print(fired)
    listing = Table("time", "type", "wallet", "outcome", "score", "rules")
    for decision in [d for d in decisions if d.outcome.value != "allow"][:show]:
        listing.add_row(
            decision.event.at.isoformat(timespec="seconds"),
            decision.event.type.value,
            decision.event.wallet,
            decision.outcome.value,
            str(decision.score),
            ", ".join(r.id for r in decision.fired),
        )
    console.print(listing)
