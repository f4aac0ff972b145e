"""``kouza simulate``: replay a scenario through the real code, once per defence profile."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from kouza.cli.common import console, fail
from kouza.errors import KouzaError


def simulate_command(
    scenario: Annotated[str, typer.Argument(help="Shipped scenario name (docomo-2020) or a "
                                                 "YAML/TOML file")] = "docomo-2020",
    defences: Annotated[str | None, typer.Option(
        "--defences", help="Comma-separated defence profiles (default: the scenario's)")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the report")] = Path(
        "var/simulation"),
    export_events: Annotated[Path | None, typer.Option(
        "--export-events", help="Also write the labelled event stream (JSON lines)")] = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", min=1, help="Profiles run at once, each in its own process (default: CPUs)")
    ] = max(1, min(4, os.cpu_count() or 1)),
) -> None:
    """Replay the scenario against each defence profile and write the report (summary.json,
    charts, report.html)."""
    from kouza.sim.report import comparison_table, write_report
    from kouza.sim.run import simulate
    from kouza.sim.scenario import load_scenario

    try:
        loaded = load_scenario(scenario)
        names = [name.strip() for name in defences.split(",")] if defences else None
        if names is not None and (not names or "" in names):
            raise fail("--defences needs profile names separated by commas")
        started = time.perf_counter()
        with Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            tasks: dict[str, TaskID] = {}

            def advance(profile: str, done: int, total: int) -> None:
                if profile not in tasks:
                    tasks[profile] = progress.add_task(profile, total=total)
                progress.advance(tasks[profile], done)

            result = simulate(loaded, profiles=names, progress=advance,
                              export_events=export_events, jobs=jobs)
        written = write_report(result, out)
    except KouzaError as exc:
        raise fail(exc.message) from None
    console.print(comparison_table(result, width=console.width))
    seconds = time.perf_counter() - started
    operations = sum(profile.operations for profile in result.profiles)
    console.print(f"{operations:,} operations through the real services in {seconds:.1f} s "
                  f"({operations / seconds:,.0f}/s)")
    for path in written:
        console.print(f"wrote {path}")
    if export_events is not None:
        console.print(f"wrote {export_events}")
