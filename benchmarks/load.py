"""Load test: the wallet (``kouza serve --workers 2``) and the bank as real processes on
PostgreSQL + Redis, driven by locust (headless) with a realistic customer mix. Loopback only.

    PYTHONPATH=src .venv/bin/python benchmarks/load.py --quick          # ~5 min, for development
    PYTHONPATH=src .venv/bin/python benchmarks/load.py --soak 10 --crash  # the full run
    (add --json for one JSON object on stdout; progress goes to stderr)

What it does, in order, all bounded in time and torn down on exit (process groups, databases,
Redis keys, the temporary folder), also on Ctrl-C:

1. **Prepare**: two dedicated PostgreSQL databases (``kouza_load_wallet``, ``kouza_load_bank``;
   created and dropped here through ``postgres@127.0.0.1``, never the ``test`` database), a
   Redis prefix in database 11 for the shared risk features (ADR 0015; rate limits and
   idempotency live in PostgreSQL, so they are shared too), a temporary ``var`` folder. The
   wallet's client key is registered at the bank (``kouza banks oauth-jwks`` → ``kouza bank
   register-client``), an analyst operator is created for the risk API.
2. **Serve**: ``kouza bank serve`` and ``kouza serve --workers 2 --no-access-log``, each in its
   own process group.
3. **Seed** (``benchmarks/load_seed.py``): customers who signed up, verified e-mail and phone
   (device key), passed eKYC and linked their bank account through the bank's OAuth pages,
   with an opening balance and a first top-up through the bank; merchants with static QR codes.
4. **Ramp**: offered rates rising ×1.5 from ``--start-rate`` operations/s (one step per rate,
   ``--step-seconds`` each; one more step between the last good and the first bad rate). A rate
   is **sustainable** when, over the step after its warm-up, the achieved rate is ≥ 95% of the
   offered one, the p99 of all requests is < 1 s, and no request failed. The maximum
   sustainable rate is the highest sustainable step.
5. **Measure**: p50/p99 at 50% and 80% of it (``--measure-seconds`` each; 0 errors required),
   then ``kouza ledger verify`` and ``kouza banks reconcile`` must be clean.
6. ``--soak MINUTES``: 50% of the maximum for that long, the RSS of every server process
   sampled every 10 s (first/last/max, least-squares slope in MiB per minute).
7. ``--crash``: 50% load; ``kill -9`` of one API worker (a child of uvicorn's master, which
   starts a new one) in the middle; then, separately, ``kill -9`` of the bank process in the
   middle of the load, the bank restarted 5 s later. Clients retry a failed money call with the
   same ``Idempotency-Key``. Then the movements by state (and the ledger's holds) before and
   after ``kouza banks reconcile``, ``kouza ledger verify``, the customers' balances against the
   postings, and the bank's debits against the wallet's posted top-ups: no yen created, lost or
   stuck in a hold.

The machine is shared: figures vary with whatever else runs (the load average is printed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import redis
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
WALLET_DB, BANK_DB = "kouza_load_wallet", "kouza_load_bank"
REDIS_URL = "redis://127.0.0.1:6379/11"
CLIENT_ID = "kouza-wallet"
STARTUP_SECONDS = 90
P99_LIMIT_MS = 1000.0
ACHIEVED_MIN = 0.95
RAMP_FACTOR = 1.5
RSS_EVERY_SECONDS = 10.0
RECONCILE_GRACE_SECONDS = 20
"""``KOUZA_BANK_RECONCILE_GRACE_SECONDS`` for the harness: a movement the bank does not have is
voided when older than this (production: 900 s; the crash run waits this long instead)."""
LIMITS = {
    # Synthetic customers do in an hour what real ones do in months; the shipped caps would
    # refuse them (a refusal is not what this test measures). Every check still runs.
    "KOUZA_LIMIT_PER_DAY_YEN": "20000000",
    "KOUZA_LIMIT_ROLLING_30D_YEN": "200000000",
    "KOUZA_MAX_WALLET_BALANCE_YEN": "20000000",
    "KOUZA_LINK_MANDATE_MAX_PER_DEBIT_YEN": "1000000",
    "KOUZA_LINK_MANDATE_MAX_30_DAYS_YEN": "100000000",
}


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the stack: databases, Redis, processes ----------------------------------------------------


@dataclass
class Server:
    """One server process (its own process group)."""

    name: str
    args: list[str]
    url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str], cwd: Path) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "kouza"), *self.args],
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name} not healthy after {STARTUP_SECONDS}s")
            time.sleep(0.3)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def processes(self) -> list[psutil.Process]:
        """The server's processes: the master and (uvicorn) its workers."""
        if self.process is None or self.process.poll() is not None:
            return []
        master = psutil.Process(self.pid)
        return [master, *master.children(recursive=True)]

    def workers(self) -> list[psutil.Process]:
        """uvicorn's worker processes (spawned children running ``multiprocessing.spawn``)."""
        return [
            child
            for child in self.processes()[1:]
            if "spawn_main" in " ".join(child.cmdline())
            and "resource_tracker" not in " ".join(child.cmdline())
        ]

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # a worker whose master died first would keep the group alive
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None


@dataclass
class Stack:
    """Everything the load test starts, and how to tear it down."""

    work: Path
    env: dict[str, str]
    bank: Server
    wallet: Server
    prefix: str
    operator_token: str = ""
    seed_file: Path = Path()
    customers: int = 0
    bank_opening_yen: int = 0
    """What the seeded bank accounts held when they were opened."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def kouza(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / "kouza"), *args],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise SystemExit(f"kouza {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done


def _databases(action: str) -> None:
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for name in (WALLET_DB, BANK_DB):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                if action == "create":
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def _drop_redis_keys(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        client.close()


def _environment(var: Path, bank_url: str, wallet_url: str, prefix: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("KOUZA_")}
    env.update(
        {
            "KOUZA_DATABASE_URL": PG_URL.format(name=WALLET_DB),
            "KOUZA_BANK_DATABASE_URL": PG_URL.format(name=BANK_DB),
            "KOUZA_VAR_DIR": str(var / "wallet"),
            "KOUZA_BANK_VAR_DIR": str(var / "bank"),
            "KOUZA_BANK_ISSUER": bank_url,
            "KOUZA_BANK_API_URL": bank_url,
            "KOUZA_BANK_CLIENT_ID": CLIENT_ID,
            "KOUZA_BANK_STAFF_TOKEN": secrets.token_urlsafe(24),
            "KOUZA_BANK_OAUTH_REDIRECT_URI": wallet_url + "/app/bank-callback",
            "KOUZA_RISK_FEATURE_STORE": REDIS_URL,
            "KOUZA_RISK_FEATURE_PREFIX": prefix,
            "KOUZA_BANK_RECONCILE_GRACE_SECONDS": str(RECONCILE_GRACE_SECONDS),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
            ),
            **LIMITS,
        }
    )
    return env


@contextlib.contextmanager
def stack(customers: int, merchants: int) -> Iterator[Stack]:
    """Prepare, serve and seed; tear everything down on the way out."""
    work = Path(tempfile.mkdtemp(prefix="kouza-load-"))
    bank_url = f"http://127.0.0.1:{free_port()}"
    wallet_url = f"http://127.0.0.1:{free_port()}"
    prefix = f"kouza-load-{os.getpid()}:risk:"
    env = _environment(work / "var", bank_url, wallet_url, prefix)
    bank = Server(
        "bank", ["bank", "serve", "--port", bank_url.rsplit(":", 1)[1]], bank_url, work / "bank.log"
    )
    wallet = Server(
        "wallet",
        ["serve", "--workers", "2", "--no-access-log", "--port", wallet_url.rsplit(":", 1)[1]],
        wallet_url,
        work / "wallet.log",
    )
    the_stack = Stack(work, env, bank, wallet, prefix)
    try:
        log(f"preparing databases {WALLET_DB}, {BANK_DB} and Redis prefix {prefix} in {work}")
        _databases("create")
        jwks = work / "wallet-jwks.json"
        jwks.write_text(the_stack.kouza("banks", "oauth-jwks").stdout)
        the_stack.kouza(
            "bank", "register-client", CLIENT_ID, "--name", "kouza", "--webhook-url",
            wallet_url + "/v1/banks/webhooks", "--jwks-file", str(jwks), "--redirect-uri",
            env["KOUZA_BANK_OAUTH_REDIRECT_URI"],
        )  # fmt: skip
        created = the_stack.kouza("operators", "create", "load-analyst", "--role", "analyst")
        the_stack.operator_token = created.stdout.strip().splitlines()[-1].strip()
        bank.start(env, work)
        wallet.start(env, work)
        log(
            f"bank on {bank_url}, wallet on {wallet_url} (2 workers); seeding {customers} customers"
        )
        the_stack.seed_file = work / "seed.json"
        seeded = subprocess.run(
            [
                sys.executable, str(ROOT / "benchmarks" / "load_seed.py"),
                "--customers", str(customers), "--merchants", str(merchants),
                "--bank-url", bank_url, "--out", str(the_stack.seed_file),
            ],
            env=env, cwd=work, check=False, stdout=sys.stderr, stderr=sys.stderr, timeout=3600,
        )  # fmt: skip
        if seeded.returncode != 0:
            raise SystemExit("seeding failed")
        the_stack.customers = customers
        the_stack.bank_opening_yen = json.loads(the_stack.seed_file.read_text())["bank_opening_yen"]
        yield the_stack
    finally:
        log("tearing down: servers, databases, Redis keys, temporary folder")
        for server in (wallet, bank):
            server.stop()
        with contextlib.suppress(Exception):
            _databases("drop")
        with contextlib.suppress(Exception):
            _drop_redis_keys(prefix)
        keep = os.environ.get("KOUZA_LOAD_KEEP_LOGS")
        if keep:
            for name in ("bank.log", "wallet.log"):
                with contextlib.suppress(FileNotFoundError):
                    shutil.copy(work / name, Path(keep) / name)
        shutil.rmtree(work, ignore_errors=True)


# --- driving locust -----------------------------------------------------------------------------


@dataclass
class Step:
    """One locust run at one offered rate, and what came of it."""

    label: str
    offered: float
    seconds: float
    achieved: float = 0.0
    requests: int = 0
    failures: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    per_name: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    load_average: float = 0.0

    @property
    def sustainable(self) -> bool:
        return (
            self.failures == 0
            and self.p99_ms < P99_LIMIT_MS
            and self.achieved >= ACHIEVED_MIN * self.offered
        )

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "offered_ops_per_s": round(self.offered, 1),
            "achieved_ops_per_s": round(self.achieved, 1),
            "requests": self.requests,
            "failures": self.failures,
            "p50_ms": round(self.p50_ms, 1),
            "p99_ms": round(self.p99_ms, 1),
            "max_ms": round(self.max_ms, 1),
            "sustainable": self.sustainable,
            "load_average_1m": round(self.load_average, 2),
            "per_operation": self.per_name,
            "errors": self.errors,
        }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run_locust(
    the_stack: Stack,
    *,
    label: str,
    rate: float,
    seconds: float,
    during: Callable[[float], None] | None = None,
) -> Step:
    """Offer ``rate`` operations/s for ``seconds``; ``during(elapsed)`` is called about every
    second while locust runs (RSS sampling, crashes)."""
    users = the_stack.customers
    record = the_stack.work / f"record-{label}.json"
    env = the_stack.env | {
        "KOUZA_LOAD_SEED": str(the_stack.seed_file),
        "KOUZA_LOAD_RATE": str(rate),
        "KOUZA_LOAD_OPERATOR_TOKEN": the_stack.operator_token,
        "KOUZA_LOAD_RECORD": str(record),
    }
    spawn_rate = max(1, users // 2)
    warmup = users / spawn_rate + 3.0
    command = [
        str(BIN / "locust"), "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless",
        "--host", the_stack.wallet.url, "-u", str(users), "-r", str(spawn_rate),
        "--run-time", f"{int(seconds + warmup)}s", "--stop-timeout", "35", "--only-summary",
        "--loglevel", "ERROR", "--skip-log-setup",
    ]  # fmt: skip
    log(f"{label}: offering {rate:.1f} ops/s for {seconds:.0f}s (+{warmup:.0f}s warm-up)")
    started = time.time()
    with (the_stack.work / f"locust-{label}.log").open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=the_stack.work, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = started + seconds + warmup + 120
        while process.poll() is None:
            if during is not None:
                during(time.time() - started)
            if time.time() > deadline:
                raise SystemExit(f"locust did not finish ({label})")
            time.sleep(1.0)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if not record.exists():
        tail = (the_stack.work / f"locust-{label}.log").read_text()[-3000:]
        raise SystemExit(f"locust wrote no record ({label}):\n{tail}")
    rows = json.loads(record.read_text())
    record.unlink()
    return _step(label, rate, seconds, rows, started + warmup)


def _step(label: str, rate: float, seconds: float, rows: list[Any], window_start: float) -> Step:
    step = Step(label, rate, seconds, load_average=os.getloadavg()[0])
    window_end = window_start + seconds
    inside = [row for row in rows if window_start <= row[0] < window_end]
    operations = [row for row in inside if not row[1].startswith(("(aux) ", "(retry) "))]
    step.achieved = len(operations) / seconds
    step.requests = len(rows)
    failed = [row for row in rows if not row[3]]
    step.failures = len(failed)
    for row in failed:
        key = f"{row[1]}: {row[4][:120]}"
        step.errors[key] = step.errors.get(key, 0) + 1
    latencies = [row[2] for row in inside]
    step.p50_ms = percentile(latencies, 0.50)
    step.p99_ms = percentile(latencies, 0.99)
    step.max_ms = max(latencies, default=0.0)
    for name in sorted({row[1] for row in inside}):
        times = [row[2] for row in inside if row[1] == name]
        step.per_name[name] = {
            "count": len(times),
            "p50_ms": round(percentile(times, 0.5), 1),
            "p99_ms": round(percentile(times, 0.99), 1),
        }
    return step


def ramp(
    the_stack: Stack, start: float, seconds: float, max_steps: int
) -> tuple[float, list[Step]]:
    """Step the offered rate up until it is no longer sustainable; the highest that was."""
    steps: list[Step] = []
    rate, best, worst = start, 0.0, math.inf
    for _ in range(max_steps):
        step = run_locust(the_stack, label=f"ramp-{rate:.0f}", rate=rate, seconds=seconds)
        steps.append(step)
        _log_step(step)
        if step.sustainable:
            best = rate
            rate = rate * RAMP_FACTOR
            if rate >= worst:
                break
        else:
            worst = rate
            if best == 0:
                rate = rate / 2  # not even the first rate: look below it
                if rate < 1:
                    break
                continue
            middle = round((best + worst) / 2)
            if middle <= best or middle >= worst or len(steps) >= max_steps:
                break
            rate = middle
    return best, steps


def _log_step(step: Step) -> None:
    verdict = "sustainable" if step.sustainable else "NOT sustainable"
    log(
        f"  {step.label}: achieved {step.achieved:.1f}/{step.offered:.1f} ops/s, "
        f"p50 {step.p50_ms:.0f} ms, p99 {step.p99_ms:.0f} ms, {step.failures} failures "
        f"→ {verdict} (load {step.load_average:.1f})"
    )
    for error, count in sorted(step.errors.items(), key=lambda item: -item[1])[:5]:
        log(f"    {count} × {error}")


# --- checks: ledger, reconciliation, accounting -------------------------------------------------


def verify_and_reconcile(the_stack: Stack, label: str) -> dict[str, Any]:
    """``kouza ledger verify`` and ``kouza banks reconcile`` over the whole run."""
    verify = the_stack.kouza("ledger", "verify", check=False)
    since = (the_stack.started_at - timedelta(minutes=5)).isoformat()
    until = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    reconcile = the_stack.kouza(
        "banks", "reconcile", "--since", since, "--until", until, check=False
    )
    result: dict[str, Any] = {
        "ledger_verify_exit": verify.returncode,
        "ledger_verify": " ".join(verify.stdout.split())[-400:],
        "reconcile_exit": reconcile.returncode,
        "reconcile": " ".join(reconcile.stdout.split())[-600:],
    }
    log(f"{label}: ledger verify exit {verify.returncode}; reconcile exit {reconcile.returncode}")
    log(f"  reconcile: {result['reconcile'][:300]}")
    return result


def accounts(the_stack: Stack) -> dict[str, Any]:
    """Movements and holds by state, and the yen on each side."""
    wallet = create_engine(the_stack.env["KOUZA_DATABASE_URL"])
    bank = create_engine(the_stack.env["KOUZA_BANK_DATABASE_URL"])
    try:
        with wallet.connect() as db:
            movements = {
                f"{direction}/{status}": int(count)
                for direction, status, count in db.execute(
                    text(
                        "SELECT direction, status, count(*) FROM bank_movements "
                        "GROUP BY direction, status ORDER BY 1, 2"
                    )
                )
            }
            holds = {
                f"{kind}/{status}": int(count)
                for kind, status, count in db.execute(
                    text("SELECT kind, status, count(*) FROM holds GROUP BY 1, 2 ORDER BY 1, 2")
                )
            }
            by_kind = {
                kind: (int(cached), int(posted))
                for kind, cached, posted in db.execute(
                    text(
                        "SELECT a.kind, sum(a.balance), "
                        "coalesce(sum((SELECT sum(p.amount) FROM postings p "
                        "WHERE p.account_id = a.id)), 0) "
                        "FROM ledger_accounts a GROUP BY a.kind"
                    )
                )
            }
            posted_topups = int(
                db.execute(
                    text(
                        "SELECT coalesce(sum(amount), 0) FROM bank_movements "
                        "WHERE direction = 'debit' AND status = 'posted'"
                    )
                ).scalar_one()
            )
            pending_holds_yen = int(
                db.execute(
                    text("SELECT coalesce(sum(amount), 0) FROM holds WHERE status = 'pending'")
                ).scalar_one()
            )
        with bank.connect() as db:
            bank_debits = int(
                db.execute(
                    text("SELECT coalesce(sum(amount), 0) FROM transfers WHERE kind = 'debit'")
                ).scalar_one()
            )
            bank_credits = int(
                db.execute(
                    text("SELECT coalesce(sum(amount), 0) FROM transfers WHERE kind = 'credit'")
                ).scalar_one()
            )
            now = int(db.execute(text("SELECT sum(balance) FROM accounts")).scalar_one())
    finally:
        wallet.dispose()
        bank.dispose()
    customer = by_kind.get("customer_wallet", (0, 0))
    merchant = by_kind.get("merchant", (0, 0))
    clearing = by_kind.get("bank_clearing", (0, 0))
    floating = by_kind.get("operator_float", (0, 0))
    return {
        "bank_movements": movements,
        "holds": holds,
        "pending_holds_yen": pending_holds_yen,
        "customer_wallets_yen": {"balances": customer[0], "postings": customer[1]},
        "merchants_yen": {"balances": merchant[0], "postings": merchant[1]},
        "bank_clearing_yen": clearing[0],
        "operator_float_yen": floating[0],
        "all_accounts_sum_yen": sum(cached for cached, _ in by_kind.values()),
        "wallet_posted_topups_yen": posted_topups,
        "bank_debits_yen": bank_debits,
        "bank_credits_yen": bank_credits,
        "bank_accounts_decrease_yen": the_stack.bank_opening_yen - now,
    }


def money_is_whole(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What would show yen created, lost or stuck; empty when everything adds up."""
    problems = []
    unresolved = {
        key: count for key, count in after["bank_movements"].items()
        if key.endswith(("/pending", "/unknown"))
    }  # fmt: skip
    if unresolved:
        problems.append(f"movements still unresolved: {unresolved}")
    if after["pending_holds_yen"]:
        problems.append(f"¥{after['pending_holds_yen']:,} still held")
    for side in ("customer_wallets_yen", "merchants_yen"):
        if after[side]["balances"] != after[side]["postings"]:
            problems.append(f"{side}: balances {after[side]} differ from the postings")
    if after["all_accounts_sum_yen"] != 0:
        problems.append(f"the ledger sums to ¥{after['all_accounts_sum_yen']:,}, not 0")
    if after["wallet_posted_topups_yen"] != after["bank_debits_yen"]:
        problems.append(
            f"wallet posted top-ups ¥{after['wallet_posted_topups_yen']:,} ≠ bank debits "
            f"¥{after['bank_debits_yen']:,}"
        )
    if -after["bank_clearing_yen"] != after["bank_debits_yen"] - after["bank_credits_yen"]:
        problems.append("the bank clearing account does not mirror the bank's transfers")
    decrease = after["bank_accounts_decrease_yen"]
    if decrease != after["bank_debits_yen"] - after["bank_credits_yen"]:
        problems.append(f"the bank's accounts fell by ¥{decrease:,}, not by its transfers")
    return problems


# --- soak and crash -----------------------------------------------------------------------------


@dataclass
class RssSampler:
    """RSS of every server process, sampled every :data:`RSS_EVERY_SECONDS`."""

    servers: list[Server]
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    last: float = -math.inf

    def __call__(self, elapsed: float) -> None:
        if elapsed - self.last < RSS_EVERY_SECONDS:
            return
        self.last = elapsed
        for server in self.servers:
            for index, process in enumerate(server.processes()):
                with contextlib.suppress(psutil.Error):
                    command = " ".join(process.cmdline())
                    role = (
                        "master" if index == 0
                        else "resource tracker" if "resource_tracker" in command
                        else f"worker pid {process.pid}"
                    )  # fmt: skip
                    name = server.name if server.name == "bank" else f"wallet {role}"
                    mib = process.memory_info().rss / 2**20
                    self.samples.setdefault(name, []).append((elapsed, mib))

    def summary(self) -> dict[str, dict[str, float]]:
        result = {}
        for name, points in self.samples.items():
            if len(points) < 2:
                continue
            minutes = [t / 60 for t, _ in points]
            values = [v for _, v in points]
            slope = statistics.linear_regression(minutes, values).slope
            result[name] = {
                "samples": len(points),
                "first_mib": round(values[0], 1),
                "last_mib": round(values[-1], 1),
                "max_mib": round(max(values), 1),
                "slope_mib_per_min": round(slope, 3),
            }
        return result


def soak(the_stack: Stack, rate: float, minutes: float) -> dict[str, Any]:
    sampler = RssSampler([the_stack.wallet, the_stack.bank])
    step = run_locust(the_stack, label="soak", rate=rate, seconds=minutes * 60, during=sampler)
    _log_step(step)
    memory = sampler.summary()
    for name, figures in memory.items():
        log(f"  RSS {name}: {figures}")
    return {"step": step.summary(), "rss": memory}


def crash(the_stack: Stack, rate: float, seconds: float) -> dict[str, Any]:
    """kill -9 of one API worker, then of the bank, each in the middle of the load."""
    killed: dict[str, Any] = {}

    def kill_worker(elapsed: float) -> None:
        if "worker" in killed or elapsed < seconds / 2:
            return
        workers = the_stack.wallet.workers()
        if not workers:
            return
        victim = workers[0]
        killed["worker"] = {"pid": victim.pid, "at_s": round(elapsed, 1)}
        log(f"  kill -9 API worker {victim.pid} at {elapsed:.0f}s")
        os.kill(victim.pid, signal.SIGKILL)

    worker_step = run_locust(
        the_stack, label="crash-worker", rate=rate, seconds=seconds, during=kill_worker
    )
    _log_step(worker_step)
    killed["workers_after"] = [p.pid for p in the_stack.wallet.workers()]

    def kill_bank(elapsed: float) -> None:
        if "bank" not in killed and elapsed >= seconds / 3:
            killed["bank"] = {"pid": the_stack.bank.pid, "at_s": round(elapsed, 1)}
            log(f"  kill -9 bank {the_stack.bank.pid} at {elapsed:.0f}s")
            os.killpg(the_stack.bank.pid, signal.SIGKILL)
            assert the_stack.bank.process is not None
            the_stack.bank.process.wait()
        elif (
            "bank" in killed
            and "bank_restarted_at_s" not in killed
            and elapsed >= killed["bank"]["at_s"] + 5
        ):
            the_stack.bank.start(the_stack.env, the_stack.work)
            killed["bank_restarted_at_s"] = round(time.time() - started, 1)
            log(f"  bank restarted (pid {the_stack.bank.pid}), up at {elapsed:.0f}s")

    started = time.time()
    bank_step = run_locust(
        the_stack, label="crash-bank", rate=rate, seconds=seconds, during=kill_bank
    )
    _log_step(bank_step)
    log(f"  waiting {RECONCILE_GRACE_SECONDS + 5}s (the reconciliation grace) before reconciling")
    time.sleep(RECONCILE_GRACE_SECONDS + 5)
    before = accounts(the_stack)
    checks = verify_and_reconcile(the_stack, "crash")
    after = accounts(the_stack)
    problems = money_is_whole(before, after)
    for when, figures in (("before", before), ("after", after)):
        log(f"  {when} reconcile: movements {figures['bank_movements']}, holds {figures['holds']}")
    log(
        f"  wallet posted top-ups ¥{after['wallet_posted_topups_yen']:,}, bank debits "
        f"¥{after['bank_debits_yen']:,}, customers ¥{after['customer_wallets_yen']['balances']:,} "
        f"(postings ¥{after['customer_wallets_yen']['postings']:,})"
    )
    log("  money whole: yes" if not problems else f"  PROBLEMS: {problems}")
    return {
        "killed": killed,
        "worker_step": worker_step.summary(),
        "bank_step": bank_step.summary(),
        "before_reconcile": before,
        "after_reconcile": after,
        "checks": checks,
        "problems": problems,
        "money_whole": not problems and checks["ledger_verify_exit"] == 0,
    }


# --- main ---------------------------------------------------------------------------------------


def _table(result: dict[str, Any]) -> str:
    lines = [
        "| run | offered ops/s | achieved ops/s | requests | failures | p50 ms | p99 ms | "
        "sustainable | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    steps = [*result["ramp"], *result["measured"]]
    if result.get("soak"):
        steps.append(result["soak"]["step"])
    if result.get("crash"):
        steps += [result["crash"]["worker_step"], result["crash"]["bank_step"]]
    for step in steps:
        lines.append(
            f"| {step['label']} | {step['offered_ops_per_s']:.1f} | "
            f"{step['achieved_ops_per_s']:.1f} | {step['requests']:,} | {step['failures']} | "
            f"{step['p50_ms']:.0f} | {step['p99_ms']:.0f} | "
            f"{'yes' if step['sustainable'] else 'no'} | {step['load_average_1m']:.1f} |"
        )
    lines.append(f"\nmaximum sustainable rate: {result['max_sustainable_ops_per_s']:.0f} ops/s")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short steps (development)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--customers", type=int, help="seeded customers = locust users")
    parser.add_argument("--merchants", type=int, default=20)
    parser.add_argument("--start-rate", type=float, default=5.0, help="first offered ops/s")
    parser.add_argument("--step-seconds", type=float, help="measured seconds per ramp step")
    parser.add_argument("--measure-seconds", type=float, help="seconds at 50%% and 80%%")
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="soak at 50%% (minutes)")
    parser.add_argument("--crash", action="store_true", help="kill -9 a worker, then the bank")
    parser.add_argument("--crash-seconds", type=float, help="seconds of load per crash phase")
    parser.add_argument(
        "--rate", type=float, help="skip the ramp: take this as the maximum sustainable rate"
    )
    args = parser.parse_args()
    customers = args.customers or (40 if args.quick else 80)
    step_seconds = args.step_seconds or (20.0 if args.quick else 45.0)
    measure_seconds = args.measure_seconds or (20.0 if args.quick else 60.0)
    soak_minutes = args.soak if args.soak is not None else (0.0 if args.quick else 10.0)
    crash_seconds = args.crash_seconds or (30.0 if args.quick else 60.0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "customers": customers,
        "definition": (
            f"sustainable: achieved ≥ {ACHIEVED_MIN:.0%} of offered, p99 of all requests "
            f"< {P99_LIMIT_MS:.0f} ms, 0 failed requests; an operation is one row of the "
            "locustfile's mix (a signed one is two requests)"
        ),
    }
    with stack(customers, args.merchants) as the_stack:
        # first requests on fresh processes fill caches (the bank's keys, the risk engine,
        # connection pools): not measured
        _log_step(run_locust(the_stack, label="warm-up", rate=args.start_rate, seconds=15))
        if args.rate:
            best, steps = args.rate, list[Step]()
        else:
            best, steps = ramp(the_stack, args.start_rate, step_seconds, args.max_steps)
        result["ramp"] = [step.summary() for step in steps]
        result["max_sustainable_ops_per_s"] = best
        if best <= 0:
            log("no offered rate was sustainable")
            result["measured"] = []
        else:
            measured = []
            for share in (0.5, 0.8):
                step = run_locust(
                    the_stack, label=f"{share:.0%}", rate=best * share, seconds=measure_seconds
                )
                _log_step(step)
                measured.append(step.summary())
            result["measured"] = measured
        result["after_measured"] = verify_and_reconcile(the_stack, "after the measured runs")
        result["accounts_after_measured"] = accounts(the_stack)
        if soak_minutes > 0 and best > 0:
            result["soak"] = soak(the_stack, best * 0.5, soak_minutes)
            result["after_soak"] = verify_and_reconcile(the_stack, "after the soak")
        if args.crash and best > 0:
            result["crash"] = crash(the_stack, best * 0.5, crash_seconds)
    result["elapsed_s"] = round(time.monotonic() - began)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(_table(result))
        for key in ("after_measured", "after_soak"):
            if key in result:
                print(f"{key}: {result[key]}")
        if "soak" in result:
            for name, figures in result["soak"]["rss"].items():
                print(f"RSS {name}: {figures}")
        if "crash" in result:
            print(json.dumps(result["crash"], ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
