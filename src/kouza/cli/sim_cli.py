"""``kouza simulate``: replay a scenario through the real code, per seed and defence profile."""

from __future__ import annotations

import math
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
    scenario: Annotated[
        str, typer.Argument(help="Shipped scenario name (docomo-2020) or a YAML/TOML file")
    ] = "docomo-2020",
    defences: Annotated[
        str | None,
        typer.Option(
            "--defences",
            help="Comma-separated defence profiles (default: the scenario's; with "
            "--ablation: added to the ablation profiles)",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the report")] = Path(
        "var/simulation"
    ),
    export_events: Annotated[
        Path | None,
        typer.Option("--export-events", help="Also write the labelled event stream (JSON lines)"),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            help="Worlds (seed × profile × population shard) run at once, on a local Dask "
            "cluster of this many worker processes; 1: in this process (default: CPUs, at most 4)",
        ),
    ] = max(1, min(4, os.cpu_count() or 1)),
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run the worlds on the Dask cluster at this scheduler address "
            "(tcp://host:8786) instead of a local one",
        ),
    ] = None,
    population: Annotated[
        int | None,
        typer.Option(
            "--population",
            help="Honest wallet users in all (default: the scenario's population.honest_users); "
            "beyond the attacked world's sample they run in honest worlds of "
            "population.shard_size users; 0: the attacked world's sample alone (quick)",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the first world (default: the scenario's)")
    ] = None,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            help="Number of seeds: S, S+1, … from the scenario's seed or --seed; "
            "figures become median [min–max]",
        ),
    ] = 1,
    ablation: Annotated[
        bool,
        typer.Option(
            "--ablation",
            help="Run kouza and kouza without each of its layers (the ablation "
            "table) instead of the scenario's profiles",
        ),
    ] = False,
    population_scale: Annotated[
        float,
        typer.Option(
            "--population-scale",
            help="Multiply the honest population (the scenario's wallet "
            "share, capped at 1) by this factor > 0",
        ),
    ] = 1.0,
) -> None:
    """Replay the scenario against each defence profile, over one or more seeds, and write the
    report (summary.json, charts, report.html)."""
    # Imported here, not at the top: the simulator and matplotlib add ~2.9 s (measured with
    # -X importtime: sim.report 2.0 s, sim.run 0.9 s) to every other kouza command.
    from kouza.sim.report import ablation_table, comparison_tables, write_report
    from kouza.sim.run import simulate
    from kouza.sim.scenario import load_scenario

    try:
        _check_numbers(
            jobs=jobs, seeds=seeds, population_scale=population_scale, population=population
        )
        loaded = load_scenario(scenario)
        names = _profile_names(defences, ablation=ablation)
        first = loaded.seed if seed is None else seed
        asked = loaded.population.honest_users if population is None else population
        if asked:
            console.print(
                f"{loaded.name}: {round(asked * population_scale):,} honest users per profile "
                "and seed, the attacked world's sample and honest worlds beside it (hours of "
                "CPU at 10,000; --population 0 for the attacked world's sample alone)"
            )
        started = time.perf_counter()
        with Progress(
            TextColumn("{task.description:<36}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def advance(label: str, done: int, total: int) -> None:
                if label not in tasks:
                    tasks[label] = progress.add_task(label, total=total)
                progress.update(tasks[label], total=total, advance=done)

            result = simulate(
                loaded,
                profiles=names,
                seeds=list(range(first, first + seeds)),
                population_scale=population_scale,
                honest_users=population,
                progress=advance,
                export_events=export_events,
                jobs=jobs,
                scheduler=scheduler,
            )
        written = write_report(result, out)
    except KouzaError as exc:
        raise fail(exc.message) from None
    for table in comparison_tables(result, width=console.width):
        console.print(table)
    layers = ablation_table(result)
    if layers is not None:
        console.print(layers)
    seconds = time.perf_counter() - started
    operations = sum(profile.operations for profile in result.profiles)
    worlds = sum(profile.worlds for profile in result.profiles)
    honest = max((profile.honest_active_users for profile in result.profiles), default=0)
    console.print(
        f"{operations:,} operations through the real services in {seconds:.1f} s "
        f"({operations / seconds:,.0f}/s), {worlds} worlds, up to {honest:,} honest active "
        "users per profile"
    )
    if population_scale != 1:
        console.print(
            f"honest population scaled ×{population_scale:g} (wallet share "
            f"{result.wallet_share:g}): a smaller run than the scenario's"
        )
    for path in written:
        console.print(f"wrote {path}")
    if export_events is not None:
        console.print(f"wrote {export_events}")


def _check_numbers(
    *, jobs: int, seeds: int, population_scale: float, population: int | None
) -> None:
    """Refuse impossible counts with one line naming the option (before any work)."""
    if population is not None and not 0 <= population <= 10_000_000:
        raise fail(f"--population must be between 0 and 10,000,000 honest users, got {population}")
    if jobs < 1:
        raise fail(f"--jobs must be at least 1, got {jobs}")
    if seeds < 1:
        raise fail(f"--seeds must be at least 1, got {seeds}")
    if not math.isfinite(population_scale) or population_scale <= 0:
        raise fail(f"--population-scale must be a number greater than 0, got {population_scale}")


def _profile_names(defences: str | None, *, ablation: bool) -> list[str] | None:
    """The profiles to run: ``--defences`` (checked for empty names), then with
    ``--ablation`` kouza and every ``kouza-without-<layer>``; ``None`` for the scenario's."""
    from kouza.sim.profiles import ablation_profiles  # with the simulator (see simulate)

    names = [name.strip() for name in defences.split(",")] if defences else []
    if defences is not None and (not names or "" in names):
        raise fail("--defences needs profile names separated by commas")
    if ablation:
        names += [made.name for made in ablation_profiles() if made.name not in names]
    return names or None
