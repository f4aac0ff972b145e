"""Risk decisions per second and latency, in-process and over HTTP.

Usage::

    python benchmarks/risk.py                  # rich table
    python benchmarks/risk.py --json           # one JSON object
    python benchmarks/risk.py --workers 3 --prior 200000 --rounds 1

The engine runs the full shipped rule set (``kouza/risk/rulesets/default.yaml``) over a feature
store already holding ``--prior`` events (default 1,000,000) spread over 30 days across 200,000
wallets, 150,000 devices, 100,000 IP addresses, 35 banks and 5,000 merchants. Then:

* in-process: ``--decisions`` new events (sign-ups, link attempts, top-ups, payments in the
  proportions below) through ``RiskEngine.assess`` on one thread over the in-memory store —
  decisions/s, p50/p99/max;
* over HTTP: the same prior events loaded into the shared Redis feature store
  (``KOUZA_BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/0``, under a prefix of its own
  that is deleted afterwards), and the real API (``POST /v1/ops/risk/assess`` with an operator
  token; each decision is stored with its event) served by ``--workers`` uvicorn processes
  (``kouza.api.app:serve_app``, what ``kouza serve --workers N`` runs) on 127.0.0.1 sharing that
  store and the database: PostgreSQL (a fresh schema) when ``KOUZA_BENCH_POSTGRES_URL`` (or
  ``KOUZA_TEST_POSTGRES_URL``) is set, SQLite otherwise. The load generator is a process of its
  own (spawned; uvloop when installed), so it competes with the server for the cores, never for
  an interpreter lock; its CPU per request is printed.

  - **maximum rate**: ``--connections`` keep-alive connections, each sending its next request
    as soon as the last answer arrives, for ``--max-seconds`` after ``--warmup`` — decisions/s
    the server sustains, and that rate over the in-process one (target ≥ 10%);
  - **half of it, open loop**: request *i* is due at ``start + i / rate`` whatever happened
    before, and its latency is measured from that due time (a stall is charged to every request
    it delays: no coordinated omission); the first ``--warmup`` seconds are not counted —
    achieved rate, p50/p99/max (target p99 ≤ 50 ms), errors, and the CPU the API workers and
    Redis spent per decision.

Each round measures the three in turn (in-process first), ``--rounds`` times (default 3) against
one server; every printed figure is the median of the rounds (``*_runs`` lists the key ones).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import httpx
import redis

from kouza.assembly import build_runtime
from kouza.config import Settings
from kouza.controls.models import OperatorRole
from kouza.controls.service import controls
from kouza.kit.migrate import upgrade
from kouza.risk.engine import RiskEngine
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.redis_store import RedisFeatureStore
from kouza.risk.service import shipped_rule_set

NOW = datetime(2026, 11, 1, tzinfo=UTC)
MIX = [
    (EventType.PAYMENT, 0.55),
    (EventType.TOPUP, 0.2),
    (EventType.LOGIN, 0.12),
    (EventType.LINK_ATTEMPT, 0.08),
    (EventType.SIGNUP, 0.05),
]
CATEGORIES = [
    "convenience_store",
    "supermarket",
    "restaurant",
    "electronics",
    "tobacco",
    "gift_cards",
    "transport",
    "online",
]


class Population:
    """Draws plausible events over a fixed population, reproducibly."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def event(self, at: datetime) -> RiskEvent:
        rng = self.rng
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        wallet = rng.randrange(200_000)
        fields: dict[str, Any] = {
            "wallet": f"w{wallet}",
            "user": f"u{wallet}",
            "device": f"d{wallet % 150_000}",
            "ip": f"10.{wallet % 97}.{wallet % 251}.{rng.randrange(256)}",
            "email_domain": rng.choice(["gmail.com", "docomo.ne.jp", "yahoo.co.jp"]),
        }
        if kind in (EventType.TOPUP, EventType.LINK_ATTEMPT):
            fields |= {
                "bank": f"{rng.randrange(35):04d}",
                "account": f"acc{wallet}",
                "holder_name": f"ﾒｲｷﾞ{wallet}",
            }
        if kind is EventType.TOPUP:
            fields["amount"] = rng.choice([1_000, 5_000, 10_000, 30_000, 100_000])
        if kind is EventType.PAYMENT:
            fields |= {
                "merchant": f"m{rng.randrange(5_000)}",
                "category": rng.choice(CATEGORIES),
                "amount": rng.randrange(100, 30_000),
            }
        if kind is EventType.LINK_ATTEMPT and rng.random() < 0.05:
            fields["outcome"] = "wrong_pin"
        return RiskEvent(type=kind, at=at, **fields)


def prior_events(count: int, seed: int) -> tuple[list[RiskEvent], Population]:
    """``count`` events spread evenly over the 30 days before ``NOW``, and the population that
    goes on drawing new ones."""
    population = Population(seed)
    span = timedelta(days=30).total_seconds()
    return [
        population.event(NOW - timedelta(seconds=span * (1 - i / count))) for i in range(count)
    ], population


def _prepare(prior: list[RiskEvent]) -> tuple[RiskEngine, float]:
    engine = RiskEngine(shipped_rule_set(), InMemoryFeatureStore())
    started = time.perf_counter()
    for event in prior:
        engine.store.record(event)
    # A million long-lived events would make every full garbage collection walk them all
    # (seconds-long pauses under load); freezing moves them out of the collector's sight, as a
    # long-running risk worker does after warming its store.
    gc.freeze()
    return engine, time.perf_counter() - started


def _percentiles(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)],
        "max_ms": ordered[-1],
    }


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


# --- over HTTP -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url(folder: str) -> str:
    """PostgreSQL (a fresh schema) when configured, as in production; else SQLite."""
    base = os.environ.get("KOUZA_BENCH_POSTGRES_URL") or os.environ.get("KOUZA_TEST_POSTGRES_URL")
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


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (Linux ``/proc``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def over_http(
    prior: list[RiskEvent],
    args: argparse.Namespace,
    log: Callable[[str], None],
    local: Callable[[], dict[str, float]],
) -> tuple[list[dict[str, float]], float]:
    """Serve the API and run ``args.rounds`` rounds of: the in-process rate (``local()``, so
    the two are measured minutes apart at most), the maximum rate over HTTP, then half of it
    offered open loop. Returns each round's figures and how long loading Redis took."""
    redis_url = os.environ.get("KOUZA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"kouza:bench:{uuid.uuid4().hex[:12]}:"
    store = RedisFeatureStore.from_url(redis_url, prefix=prefix)
    try:
        log(f"loading {len(prior):,} prior events into Redis ({redis_url}) …")
        started = time.perf_counter()
        store.record_many(prior)
        load_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as folder:
            database_url = _database_url(folder)
            runtime = build_runtime(
                Settings(var_dir=Path(folder), secret_key="bench"), database_url=database_url
            )
            upgrade(runtime.db.engine)
            with runtime.db.unit_of_work() as session:
                _, token = controls.create_operator(
                    session, name="bench", role=OperatorRole.ANALYST, actor="benchmark"
                )
            runtime.db.dispose()
            environment = os.environ | {
                "KOUZA_DATABASE_URL": database_url,
                "KOUZA_SECRET_KEY": "bench",
                "KOUZA_VAR_DIR": folder,
                "KOUZA_RISK_FEATURE_STORE": redis_url,
                "KOUZA_RISK_FEATURE_PREFIX": prefix,
            }
            rounds = _serve_and_drive(environment, token, store.client, args, log, local)
        return rounds, load_s
    finally:
        store.clear()


def _serve_and_drive(
    environment: dict[str, str],
    token: str,
    client: redis.Redis,
    args: argparse.Namespace,
    log: Callable[[str], None],
    local: Callable[[], dict[str, float]],
) -> list[dict[str, float]]:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "kouza.api.app:serve_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-keep-alive",
            "60",
        ],
        # --no-access-log: uvicorn's line; kouza's own access line (kouza.kit.observability)
        env=environment | {"KOUZA_ACCESS_LOG": "false"},
        start_new_session=True,
    )
    try:
        _wait_until_up(port, server)
        workers = _children(server.pid) or [server.pid]
        # the load generator runs in a process of its own (spawned, so it shares nothing with
        # this one): it competes with the API workers for the cores, not for an interpreter
        # lock, and its own CPU per request is reported beside theirs
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            rounds = []
            seed = args.seed + 1
            for number in range(1, args.rounds + 1):
                log(f"[round {number}] in-process: {args.decisions:,} decisions …")
                figures = {f"inprocess_{k}": v for k, v in local().items()}
                log(
                    f"[round {number}] over HTTP, maximum rate: {args.connections} connections "
                    f"back to back for {args.max_seconds:.0f} s …"
                )
                cpu = _cpu_seconds(workers), _redis_cpu(client)
                most = pool.apply(
                    _drive_closed,
                    (port, token, seed, args.connections, args.max_seconds, args.warmup),
                )
                seed += 1
                figures |= {f"max_{k}": v for k, v in most.items() if k != "requests_total"}
                figures |= _server_cpu(workers, client, cpu, most["requests_total"], "max")
                rate = max(1, round(most["requests_per_s"] / 2))
                log(f"[round {number}] over HTTP, open loop at half of it: {rate}/s …")
                cpu = _cpu_seconds(workers), _redis_cpu(client)
                half = pool.apply(_drive, (port, token, seed, rate, args.seconds, args.warmup))
                seed += 1
                figures |= {f"half_{k}": v for k, v in half.items() if k != "requests_total"}
                figures |= _server_cpu(workers, client, cpu, half["requests_total"], "half")
                figures["half_offered_rate"] = float(rate)
                figures["max_vs_inprocess_ratio"] = (
                    most["requests_per_s"] / figures["inprocess_decisions_per_s"]
                )
                rounds.append(figures)
        return rounds
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # its own session: the workers go too
            server.wait()


def _server_cpu(
    workers: list[int], client: redis.Redis, before: tuple[float, float], requests: float, name: str
) -> dict[str, float]:
    """CPU the API workers and Redis spent per request since ``before``."""
    return {
        f"{name}_server_cpu_ms_per_request": (_cpu_seconds(workers) - before[0]) * 1000 / requests,
        f"{name}_redis_cpu_ms_per_request": (_redis_cpu(client) - before[1]) * 1000 / requests,
    }


def _wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the API server exited during start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the API server did not start within 60 s")


def _requests(port: int, token: str, seed: int, count: int) -> list[bytes]:
    """``count`` distinct assessment requests, as bytes on the wire."""
    population = Population(seed)
    head = (
        f"POST /v1/ops/risk/assess HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    )
    requests = []
    for i in range(count):
        body = json.dumps(
            population.event(NOW + timedelta(days=1 + seed, milliseconds=10 * i)).to_json()
        ).encode()
        requests.append(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return requests


def _install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def _drive(
    port: int, token: str, seed: int, rate: int, seconds: float, warmup: float
) -> dict[str, float]:
    """Open-loop load: request *i* is due at ``start + i / rate`` whatever the latency."""
    _install_uvloop()
    requests = _requests(port, token, seed, int(rate * (warmup + seconds)))
    cpu = time.process_time()
    result = asyncio.run(_load(port, requests, rate, int(rate * warmup)))
    result["generator_cpu_ms_per_request"] = (time.process_time() - cpu) * 1000 / len(requests)
    return result


def _drive_closed(
    port: int, token: str, seed: int, connections: int, seconds: float, warmup: float
) -> dict[str, float]:
    """The maximum rate: ``connections`` connections, each sending its next request as soon as
    the answer to the last one arrives, for ``warmup + seconds``; only the last ``seconds``
    count."""
    _install_uvloop()
    requests = _requests(port, token, seed, int(_MAX_RATE_CAP * (warmup + seconds)))
    cpu = time.process_time()
    result = asyncio.run(_saturate(port, requests, connections, seconds, warmup))
    result["generator_cpu_ms_per_request"] = (
        (time.process_time() - cpu) * 1000 / result["requests_total"]
    )
    return result


_MAX_RATE_CAP = 6_000
"""Requests per second the maximum-rate phase prepares for (it stops early if it runs out)."""


async def _exchange(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
) -> bool:
    """Send one request on ``connection`` and read the whole answer; whether it was a 200."""
    reader, writer = connection
    writer.write(request)
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status.split(b" ", 2)[1] == b"200"


async def _saturate(
    port: int, requests: list[bytes], connections: int, seconds: float, warmup: float
) -> dict[str, float]:
    queue = iter(requests)
    latencies: list[float] = []
    errors = 0
    sent = 0
    start = time.perf_counter()
    measured_from, deadline = start + warmup, start + warmup + seconds

    async def client() -> None:
        nonlocal errors, sent
        connection = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (now := time.perf_counter()) < deadline:
                request = next(queue, None)
                if request is None:
                    return
                sent += 1
                try:
                    ok = await asyncio.wait_for(_exchange(connection, request), timeout=30)
                except (
                    OSError,
                    RuntimeError,
                    asyncio.IncompleteReadError,
                    IndexError,
                    TimeoutError,
                ):
                    ok = False
                    connection[1].close()
                    connection = await asyncio.open_connection("127.0.0.1", port)
                done = time.perf_counter()
                if now >= measured_from:
                    latencies.append((done - now) * 1000)
                    errors += not ok
        finally:
            connection[1].close()

    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = min(time.perf_counter(), deadline) - measured_from
    return {
        "requests_per_s": len(latencies) / elapsed,
        "errors": float(errors),
        "requests_total": float(sent),
        **_percentiles(latencies),
    }


async def _load(port: int, requests: list[bytes], rate: int, skip: int) -> dict[str, float]:
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0
    finished = 0.0

    async def exchange(i: int) -> bool:
        while idle and idle[-1][1].is_closing():  # closed by the server while idle
            idle.pop()
        connection = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
        ok = await _exchange(connection, requests[i])
        idle.append(connection)
        return ok

    async def one(i: int, due: float) -> None:
        nonlocal errors, finished
        try:
            ok = await asyncio.wait_for(exchange(i), timeout=30)
        except (OSError, RuntimeError, asyncio.IncompleteReadError, IndexError, TimeoutError):
            ok = False
        done = time.perf_counter()
        if i >= skip:
            latencies.append((done - due) * 1000)
            errors += not ok
            finished = max(finished, done)

    # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds
    start = time.perf_counter() + 0.2
    tasks = set()
    for i in range(len(requests)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(max(0.0, time.perf_counter() - due) * 1000)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*tasks)
    measured_from = start + skip / rate
    counted = len(requests) - skip
    return {
        "requests_per_s": counted / (finished - measured_from),
        "errors": float(errors),
        "requests_total": float(len(requests)),
        "generator_lag_max_ms": max(lags),
        **_percentiles(latencies),
    }


def main() -> None:
    # ``timeout`` or Ctrl-C: unwind, so the server is stopped and the Redis keys deleted
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--prior", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are printed")
    parser.add_argument(
        "--connections", type=int, default=32, help="connections of the maximum-rate phase"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=10, help="measured seconds at the maximum rate"
    )
    parser.add_argument(
        "--seconds", type=float, default=20, help="measured seconds at half the maximum rate"
    )
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    def log(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr)

    log(f"loading {args.prior:,} prior events …")
    prior, population = prior_events(args.prior, args.seed)
    engine, load_s = _prepare(prior)
    rounds, redis_load_s = over_http(
        prior, args, log, lambda: in_process(engine, population, args.decisions)
    )
    figures: dict[str, Any] = {
        "prior_events": float(args.prior),
        "prior_load_s": load_s,
        "http_workers": float(args.workers),
        "http_redis_prior_load_s": redis_load_s,
        "rounds": float(args.rounds),
    }
    for key in rounds[0]:
        figures[key] = statistics.median(r[key] for r in rounds)
    for key in ("max_vs_inprocess_ratio", "half_p99_ms", "max_requests_per_s"):
        figures[f"{key}_runs"] = [round(r[key], 3) for r in rounds]
    if args.json:
        print(
            json.dumps({k: v if isinstance(v, list) else round(v, 3) for k, v in figures.items()})
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("measure (median of the rounds)", "value", title="kouza risk benchmark")
    for key, value in figures.items():
        table.add_row(key, str(value) if isinstance(value, list) else f"{value:,.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
