"""Risk decisions per second and latency, in-process and over HTTP.

Usage::

    python benchmarks/risk.py            # rich table
    python benchmarks/risk.py --json     # one JSON object

The engine runs the full shipped rule set (``kouza/risk/rulesets/default.yaml``) over a feature
store already holding ``--prior`` events (default 1,000,000) spread over 30 days across 200,000
wallets, 150,000 devices, 100,000 IP addresses, 35 banks and 5,000 merchants. Then:

* in-process: ``--decisions`` new events (sign-ups, link attempts, top-ups, payments in the
  proportions below) through ``RiskEngine.assess`` on one thread — decisions/s, p50/p99/max;
* over HTTP: the same engine behind the real API (``POST /v1/ops/risk/assess`` with an operator
  token; each decision is stored with its event), uvicorn on 127.0.0.1 with PostgreSQL when
  ``KOUZA_BENCH_POSTGRES_URL`` is set (SQLite otherwise), driven open-loop at a fixed ``--rate``
  (default 500 requests/s) for ``--seconds`` by a load generator in its own process — achieved
  rate, p50/p99/max.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import httpx
import uvicorn

from kouza.config import Settings
from kouza.kit.migrate import upgrade
from kouza.kit.runtime import build_runtime
from kouza.ops.models import OperatorRole
from kouza.ops.service import ops
from kouza.risk.engine import RiskEngine
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.service import shipped_rule_set

NOW = datetime(2026, 11, 1, tzinfo=UTC)
MIX = [(EventType.PAYMENT, 0.55), (EventType.TOPUP, 0.2), (EventType.LOGIN, 0.12),
       (EventType.LINK_ATTEMPT, 0.08), (EventType.SIGNUP, 0.05)]
CATEGORIES = ["convenience_store", "supermarket", "restaurant", "electronics", "tobacco",
              "gift_cards", "transport", "online"]


class Population:
    """Draws plausible events over a fixed population, reproducibly."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def event(self, at: datetime) -> RiskEvent:
        rng = self.rng
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        wallet = rng.randrange(200_000)
        fields: dict[str, Any] = {
            "wallet": f"w{wallet}", "user": f"u{wallet}", "device": f"d{wallet % 150_000}",
            "ip": f"10.{wallet % 97}.{wallet % 251}.{rng.randrange(256)}",
            "email_domain": rng.choice(["gmail.com", "docomo.ne.jp", "yahoo.co.jp"]),
        }
        if kind in (EventType.TOPUP, EventType.LINK_ATTEMPT):
            fields |= {"bank": f"{rng.randrange(35):04d}", "account": f"acc{wallet}",
                       "holder_name": f"ﾒｲｷﾞ{wallet}"}
        if kind is EventType.TOPUP:
            fields["amount"] = rng.choice([1_000, 5_000, 10_000, 30_000, 100_000])
        if kind is EventType.PAYMENT:
            fields |= {"merchant": f"m{rng.randrange(5_000)}", "category": rng.choice(CATEGORIES),
                       "amount": rng.randrange(100, 30_000)}
        if kind is EventType.LINK_ATTEMPT and rng.random() < 0.05:
            fields["outcome"] = "wrong_pin"
        return RiskEvent(type=kind, at=at, **fields)


def _prepare(prior: int, seed: int) -> tuple[RiskEngine, Population, float]:
    population = Population(seed)
    engine = RiskEngine(shipped_rule_set(), InMemoryFeatureStore())
    started = time.perf_counter()
    span = timedelta(days=30).total_seconds()
    for i in range(prior):
        engine.store.record(population.event(NOW - timedelta(seconds=span * (1 - i / prior))))
    # A million long-lived events would make every full garbage collection walk them all
    # (seconds-long pauses under load); freezing moves them out of the collector's sight, as a
    # long-running risk worker does after warming its store.
    gc.freeze()
    return engine, population, time.perf_counter() - started


def _percentiles(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {"p50_ms": statistics.median(ordered),
            "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)], "max_ms": ordered[-1]}


def in_process(engine: RiskEngine, population: Population, count: int) -> dict[str, float]:
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        event = population.event(NOW + timedelta(milliseconds=10 * i))
        t0 = time.perf_counter()
        engine.assess(event)
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    return {"decisions_per_s": count / elapsed, **_percentiles(latencies)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url(folder: str) -> str:
    """PostgreSQL (a fresh schema) when configured, as in production; else SQLite."""
    base = os.environ.get("KOUZA_BENCH_POSTGRES_URL") or os.environ.get(
        "KOUZA_TEST_POSTGRES_URL")
    if not base:
        return f"sqlite:///{folder}/risk-bench.db"
    from sqlalchemy import create_engine, text

    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS kouza_risk_bench CASCADE"))
        connection.execute(text("CREATE SCHEMA kouza_risk_bench"))
    engine.dispose()
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3Dkouza_risk_bench"


def over_http(engine: RiskEngine, seed: int, rate: int, seconds: float) -> dict[str, float]:
    from kouza.api.app import create_app

    with tempfile.TemporaryDirectory() as folder:
        runtime = build_runtime(Settings(var_dir=Path(folder), secret_key="bench"),
                                database_url=_database_url(folder))
        upgrade(runtime.db.engine)
        runtime.providers["risk"] = engine
        with runtime.db.unit_of_work() as session:
            _, token = ops.create_operator(session, name="bench", role=OperatorRole.ANALYST,
                                           actor="benchmark")
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port,
                                               log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            # the load generator runs in its own process, so it does not compete with the
            # server for this process's interpreter lock
            context = multiprocessing.get_context("spawn")
            with context.Pool(1) as pool:
                return pool.apply(_drive, (f"http://127.0.0.1:{port}", token, seed, rate,
                                           seconds))
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _drive(base: str, token: str, seed: int, rate: int, seconds: float) -> dict[str, float]:
    """Open-loop load: requests start on a fixed schedule whatever the latency."""
    population = Population(seed)
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    events = [population.event(NOW + timedelta(days=1, milliseconds=10 * i)).to_json()
              for i in range(total)]
    clients = 32
    start = time.perf_counter() + 0.2

    def worker(offset: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                          timeout=10) as client:
            for i in range(offset, total, clients):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.perf_counter()
                response = client.post("/v1/ops/risk/assess", json=events[i])
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors += response.status_code != 200

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    achieved = total / (time.perf_counter() - start)
    return {"requests_per_s": achieved, "errors": float(errors), **_percentiles(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--prior", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    log = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    log(f"loading {args.prior:,} prior events …")
    engine, population, load_s = _prepare(args.prior, args.seed)
    log(f"in-process: {args.decisions:,} decisions …")
    local = in_process(engine, population, args.decisions)
    log(f"over HTTP: {args.rate}/s for {args.seconds:.0f} s …")
    remote = over_http(engine, args.seed + 1, args.rate, args.seconds)
    figures = {
        "prior_events": float(args.prior), "prior_load_s": load_s,
        "inprocess_decisions_per_s": local["decisions_per_s"],
        "inprocess_p50_ms": local["p50_ms"], "inprocess_p99_ms": local["p99_ms"],
        "inprocess_max_ms": local["max_ms"],
        "http_target_rate": float(args.rate), "http_achieved_rate": remote["requests_per_s"],
        "http_errors": remote["errors"], "http_p50_ms": remote["p50_ms"],
        "http_p99_ms": remote["p99_ms"], "http_max_ms": remote["max_ms"],
    }
    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in figures.items()}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("measure", "value", title="kouza risk benchmark")
    for key, value in figures.items():
        table.add_row(key, f"{value:,.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
