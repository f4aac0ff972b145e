"""What a population-scale replay costs: one honest world measured, the whole run projected.

Usage::

    python benchmarks/population.py                         # 250 users, kouza, 3 runs
    python benchmarks/population.py --users 500 --profile legacy-2019
    python benchmarks/population.py --run 10000 --jobs 2     # also a whole replay, timed
    python benchmarks/population.py --json                  # one JSON object

An honest world (ADR 0030) of ``--users`` customers of docomo-2020's banks is seeded once and
run ``--runs`` times with one profile through the real services; each figure is the median of
the runs: operations, wall seconds, CPU seconds of the process (every thread) and their share
per honest user, and the seeding of the world's templates per user. From those it projects what
``--project`` honest users (default 10,000 and 1,000,000) cost for the scenario's four profiles:
CPU-hours, and hours on 2, 16 and 256 single-threaded Dask workers (the graph's parallelism is
the honest worlds × profiles; the attacked world, a few minutes, is left out of the projection).

``--run N`` also runs the whole replay (``simulate`` with ``honest_users=N`` on a local Dask
cluster of ``--jobs`` workers) once and reports its operations per second: the issue's figure.
The machine is shared: CPU per operation moves much less than wall-clock rates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
warnings.simplefilter("ignore", DeprecationWarning)

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from kouza.sim.population import honest_world  # noqa: E402
from kouza.sim.run import WorldTask, run_world, seed_world, simulate  # noqa: E402
from kouza.sim.scenario import load_scenario  # noqa: E402

TARGET_OPS_PER_S = 1_500
"""Issue 17: the default replay's operations per second with two processes."""
WORKERS = (2, 16, 256)


def _world(scenario_name: str, users: int, profile: str, runs: int) -> dict[str, Any]:
    scenario = load_scenario(scenario_name)
    world = honest_world(scenario, users)
    started = time.perf_counter()
    templates = seed_world(world, 1)
    seed_seconds = time.perf_counter() - started
    task = WorldTask(world, profile, 1, profile, None)
    measured = []
    for _ in range(runs):
        result = run_world(task, templates, None)
        measured.append(result)
    ops = [r.operations for r in measured]
    assert len(set(ops)) == 1, f"the same world gave different operation counts: {ops}"
    seconds = statistics.median(r.seconds for r in measured)
    cpu = statistics.median(r.cpu_seconds for r in measured)
    return {
        "scenario": scenario_name,
        "profile": profile,
        "users": users,
        "runs": runs,
        "operations": ops[0],
        "honest_operations": measured[0].honest_operations,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "ops_per_s": round(ops[0] / seconds, 1),
        "cpu_ms_per_op": round(1000 * cpu / ops[0], 3),
        "ops_per_user": round(ops[0] / users, 1),
        "cpu_s_per_user": round(cpu / users, 4),
        "seed_s_per_user": round(seed_seconds / users, 4),
    }


def _project(world: dict[str, Any], users: int, profiles: int) -> dict[str, Any]:
    cpu_hours = users * (world["cpu_s_per_user"] * profiles + world["seed_s_per_user"]) / 3600
    return {
        "honest_users": users,
        "profiles": profiles,
        "operations": round(users * world["ops_per_user"] * profiles),
        "cpu_hours": round(cpu_hours, 2),
        "hours_on_workers": {str(n): round(cpu_hours / n, 2) for n in WORKERS},
    }


def _whole(scenario_name: str, users: int, jobs: int, profiles: list[str] | None) -> dict[str, Any]:
    started = time.perf_counter()
    result = simulate(
        load_scenario(scenario_name), profiles=profiles, honest_users=users, jobs=jobs
    )
    seconds = time.perf_counter() - started
    operations = sum(r.operations for r in result.profiles)
    return {
        "honest_users": users,
        "jobs": jobs,
        "profiles": [r.profile for r in result.profiles],
        "worlds": sum(r.worlds for r in result.profiles),
        "honest_active_users": max(r.honest_active_users for r in result.profiles),
        "operations": operations,
        "seconds": round(seconds, 1),
        "ops_per_s": round(operations / seconds, 1),
        "cpu_seconds": round(sum(r.cpu_seconds for r in result.profiles), 1),
        "target_ops_per_s": TARGET_OPS_PER_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="docomo-2020")
    parser.add_argument("--profile", default="kouza")
    parser.add_argument("--users", type=int, default=250, help="honest users of the world")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--project", type=int, nargs="*", default=[10_000, 1_000_000])
    parser.add_argument("--run", type=int, default=0, help="also run a whole replay of N users")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--defences", default=None, help="profiles of --run (comma-separated)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.users < 1 or args.runs < 1 or args.jobs < 1:
        parser.error("--users, --runs and --jobs must be at least 1")
    scenario = load_scenario(args.scenario)
    world = _world(args.scenario, args.users, args.profile, args.runs)
    projections = [_project(world, n, len(scenario.defences)) for n in args.project]
    figures: dict[str, Any] = {"world": world, "projections": projections}
    if args.run:
        names = args.defences.split(",") if args.defences else None
        figures["run"] = _whole(args.scenario, args.run, args.jobs, names)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
        return
    console = Console(width=150)  # the projection's table is never cut
    console.print(
        f"[bold]one honest world[/] of {world['users']:,} users of {args.scenario} under "
        f"{args.profile} (median of {world['runs']}): {world['operations']:,} operations in "
        f"{world['seconds']} s = {world['ops_per_s']:,}/s, {world['cpu_ms_per_op']} ms of CPU "
        f"each; {world['ops_per_user']} operations and {world['cpu_s_per_user']} CPU-s per "
        f"user a year, seeding {world['seed_s_per_user']} s per user"
    )
    table = Table(
        "honest users",
        "profiles",
        "operations",
        "CPU-hours",
        *(f"hours on {n} workers" for n in WORKERS),
        title="projected (the attacked world left out)",
    )
    for p in projections:
        table.add_row(
            f"{p['honest_users']:,}",
            str(p["profiles"]),
            f"{p['operations']:,}",
            f"{p['cpu_hours']:,}",
            *(f"{p['hours_on_workers'][str(n)]:,}" for n in WORKERS),
        )
    console.print(table)
    if args.run:
        run = figures["run"]
        console.print(
            f"[bold]whole replay[/]: {run['honest_users']:,} honest users asked, "
            f"{run['honest_active_users']:,} active, {run['worlds']} worlds, "
            f"{run['operations']:,} operations in {run['seconds']} s on {run['jobs']} workers = "
            f"[bold]{run['ops_per_s']:,}/s[/] (target {TARGET_OPS_PER_S:,}/s)"
        )


if __name__ == "__main__":
    main()
