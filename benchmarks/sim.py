"""Simulated customer operations per second through the real services, and where the time goes.

Usage::

    python benchmarks/sim.py                          # the shipped smoke scenario, legacy-2019
    python benchmarks/sim.py --scenario docomo-2020 --profile kouza
    python benchmarks/sim.py --json                   # one JSON object

One profile's world is run twice: once plainly for the rate (operations the driver sent through
the real identity, linking, movement and payment services — each its own unit of work — per
second of the run, world set-up excluded) and the CPU time they cost (every thread of the
process: the bank's endpoints run in FastAPI's worker threads), and once with timing wrappers
around the layers below to attribute the time (inclusive wall time of each in the simulator's
thread, as a share of that run; layers nest, so shares do not add up to 100 %). The bank's
round trip is measured where the wallet waits for it, so it includes the bank's own work.

The machine is shared: wall-clock rates move with whatever else runs, CPU milliseconds per
operation much less. "per CPU-second" is what one fully available core would sustain.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
import threading
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
    "wallet payments (WalletService.pay)": "kouza.wallet.service:WalletService.pay",
    "top-ups (MovementService.move)": "kouza.linking.movements:MovementService.move",
    "bank links (LinkService.link_legacy)": "kouza.linking.links:LinkService.link_legacy",
    "sign-up + e-mail (IdentityService)": "kouza.identity.service:IdentityService.signup",
    "risk: judge + store event and decision": "kouza.risk.service:RiskService.assess",
    "ledger writes (post_batch)": "kouza.ledger.service:LedgerService.post_batch",
    "bank HTTP round trips (in-process ASGI, incl. the bank)": (
        "kouza.sim.world:InProcess.handle_request"
    ),
    "ORM queries (Session execute / scalars / get)": (
        "sqlalchemy.orm.session:Session._execute_internal"
    ),
    "ORM flushes (INSERT / UPDATE)": "sqlalchemy.orm.session:Session.flush",
    "commits": "sqlalchemy.orm.session:Session.commit",
}


def _run(scenario: str, profile: str) -> tuple[int, float, float, int]:
    result = simulate(load_scenario(scenario), profiles=[profile])
    measured = result.profiles[0]
    return (measured.operations, measured.seconds, measured.cpu_seconds, measured.honest_operations)


def _timed(label: str, function: Any, spent: dict[str, float], depth: dict[str, int]) -> Any:
    """``function`` timed (wall clock, outermost call only) when the simulator's thread runs it:
    the bank's endpoints run in worker threads while that thread waits in the round trip."""
    main = threading.main_thread()

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not main or depth[label]:
            return function(*args, **kwargs)
        depth[label] += 1
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - started
            depth[label] -= 1

    return timed


def _where(scenario: str, profile: str) -> dict[str, float]:
    """Each layer's inclusive time as a share of the run. Timing wrappers, not cProfile: the
    round trip runs the bank's coroutines on the simulator's event loop, and cProfile loses the
    calling frames across their suspensions (a top-up then seemed to cost nothing)."""
    spent = dict.fromkeys(LAYERS, 0.0)
    depth = dict.fromkeys(LAYERS, 0)
    originals = []
    for label, target in LAYERS.items():
        module_name, _, qualified = target.partition(":")
        owner_name, _, name = qualified.partition(".")
        owner = getattr(importlib.import_module(module_name), owner_name)
        original = owner.__dict__[name]
        originals.append((owner, name, original))
        setattr(owner, name, _timed(label, original, spent, depth))
    try:
        result = simulate(load_scenario(scenario), profiles=[profile])
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    total = result.profiles[0].seconds
    return {label: round(100 * seconds / total, 1) for label, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="smoke")
    parser.add_argument("--profile", default="legacy-2019")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    operations, seconds, cpu_seconds, honest = _run(args.scenario, args.profile)
    rate = operations / seconds
    cpu_ms = 1000 * cpu_seconds / operations
    shares = _where(args.scenario, args.profile)
    figures = {
        "scenario": args.scenario,
        "profile": args.profile,
        "operations": operations,
        "honest_operations": honest,
        "seconds": round(seconds, 2),
        "ops_per_s": round(rate, 1),
        "cpu_seconds": round(cpu_seconds, 2),
        "cpu_ms_per_op": round(cpu_ms, 2),
        "ops_per_cpu_s": round(1000 / cpu_ms, 1),
        "target_ops_per_s": TARGET_OPS_PER_S,
        "time_share_percent": shares,
    }
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
        return
    console = Console()
    console.print(
        f"[bold]{args.scenario} / {args.profile}[/]: {operations:,} operations "
        f"through the real services in {seconds:.1f} s = [bold]{rate:,.0f}/s[/] "
        f"(target {TARGET_OPS_PER_S:,}/s); {cpu_ms:.2f} ms of CPU per operation "
        f"= {1000 / cpu_ms:,.0f} per CPU-second"
    )
    table = Table("layer (cumulative, nested)", "share of the run", title="where the time goes")
    for label, share in shares.items():
        table.add_row(label, f"{share:.1f} %")
    console.print(table)


if __name__ == "__main__":
    main()
