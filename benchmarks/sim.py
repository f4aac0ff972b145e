"""Simulated customer operations per second through the real services, and where the time goes.

Usage::

    python benchmarks/sim.py                          # the shipped smoke scenario, legacy-2019
    python benchmarks/sim.py --scenario docomo-2020 --profile kouza
    python benchmarks/sim.py --json                   # one JSON object

One profile's world is run twice: once plainly for the rate (operations the driver sent through
the real identity, linking, movement and payment services — each its own unit of work — per
second of the run, world set-up excluded), and once under cProfile to attribute the time to the
layers below (cumulative time of each, as a share of the profiled run; layers nest, so shares do
not add up to 100 %).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
warnings.simplefilter("ignore", DeprecationWarning)

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from kouza.sim.run import simulate  # noqa: E402
from kouza.sim.scenario import load_scenario  # noqa: E402

TARGET_OPS_PER_S = 2_000
LAYERS = {
    "wallet payments (WalletService.pay)": ("kouza/wallet/service.py", "pay"),
    "top-ups (MovementService.move)": ("kouza/banks/linking/movements.py", "move"),
    "bank links (LinkService.link_legacy)": ("kouza/banks/linking/links.py", "link_legacy"),
    "sign-up + e-mail (IdentityService)": ("kouza/identity/service.py", "signup"),
    "risk: judge + store event and decision": ("kouza/risk/service.py", "assess"),
    "ledger writes (post_batch)": ("kouza/ledger/service.py", "post_batch"),
    "bank HTTP round trips (in-process ASGI)": ("kouza/sim/world.py", "handle_request"),
    "SQL execution (SQLAlchemy execute)": ("sqlalchemy/orm/session.py", "execute"),
    "commits": ("sqlalchemy/orm/session.py", "commit"),
}


def _run(scenario: str, profile: str) -> tuple[int, float, int]:
    result = simulate(load_scenario(scenario), profiles=[profile])
    measured = result.profiles[0]
    return measured.operations, measured.seconds, measured.honest_operations


def _where(scenario: str, profile: str) -> dict[str, float]:
    profiler = cProfile.Profile()
    profiler.enable()
    started = time.perf_counter()
    simulate(load_scenario(scenario), profiles=[profile])
    total = time.perf_counter() - started
    profiler.disable()
    stats: Any = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    shares: dict[str, float] = {}
    for label, (path, name) in LAYERS.items():
        cumulative = sum(row[3] for (file, _, function), row in stats.items()
                         if file.endswith(path) and function == name)
        shares[label] = round(100 * cumulative / total, 1)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="smoke")
    parser.add_argument("--profile", default="legacy-2019")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    operations, seconds, honest = _run(args.scenario, args.profile)
    rate = operations / seconds
    shares = _where(args.scenario, args.profile)
    figures = {
        "scenario": args.scenario,
        "profile": args.profile,
        "operations": operations,
        "honest_operations": honest,
        "seconds": round(seconds, 2),
        "ops_per_s": round(rate, 1),
        "target_ops_per_s": TARGET_OPS_PER_S,
        "time_share_percent": shares,
    }
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
        return
    console = Console()
    console.print(f"[bold]{args.scenario} / {args.profile}[/]: {operations:,} operations "
                  f"through the real services in {seconds:.1f} s = [bold]{rate:,.0f}/s[/] "
                  f"(target {TARGET_OPS_PER_S:,}/s)")
    table = Table("layer (cumulative, nested)", "share of the run", title="where the time goes")
    for label, share in shares.items():
        table.add_row(label, f"{share:.1f} %")
    console.print(table)


if __name__ == "__main__":
    main()
