"""Ledger throughput and latency on SQLite and PostgreSQL, against plain INSERTs.

Usage::

    python benchmarks/ledger.py                 # SQLite, plus PostgreSQL if configured
    python benchmarks/ledger.py --json          # one JSON object of the figures
    KOUZA_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python benchmarks/ledger.py

PostgreSQL is taken from ``KOUZA_BENCH_POSTGRES_URL`` (or ``KOUZA_TEST_POSTGRES_URL``); the
benchmark works in its own schema ``kouza_bench`` and drops it first.

What is measured, per database, each through the real ledger service and real migrations:

* ``single``: one transfer per unit of work (validate, lock, balance update, entry, postings,
  commit with the zero-sum trigger), from 8 concurrent clients on PostgreSQL as behind an API
  server (one on SQLite, which has a single writer) — transfers/s and p50/p99 latency;
* ``batched``: ``post_batch`` of 1,000 transfers per unit of work — transfers/s; on PostgreSQL
  from two writers (one per core), each posting among its own half of the accounts, as a
  high-rate caller sharded by account would (``--writers 1`` for one writer);
* ``hot``: batched, with 90% of transfers going to one of 10 hot accounts;
* ``raw``: the same entry and posting rows written the same way (one statement per batch on
  PostgreSQL, ``executemany`` on SQLite) into copies of the two tables with the same columns,
  indexes and unique keys but no foreign keys, CHECKs or triggers, and no balance updates or
  account locks — what the hardware does with no ledger logic — and the ratio ledger/raw;
* ``raw + FKs``: the same, into copies that also keep the three foreign keys the real tables
  had until migration 0010 (posting → entry, posting → account, reversal → entry): how much of
  the gap per-row referential integrity alone costs, before any ledger logic (ADR 0014). The
  real ``postings`` now checks its two references per statement instead (ADR 0017).

On SQLite the plain write is the fastest the driver allows (ADR 0029): one ``executemany`` per
table of positional tuples on the raw ``sqlite3`` cursor of the ledger engine's own connection,
in the engine's transaction (``BEGIN IMMEDIATE``, the same pragmas), no SQLAlchemy in between.

Every measurement runs ``--rounds`` times (default 3) in one invocation, the floors beside the
ledger in each round, and each printed figure is the median of the rounds (a ratio: the median
of the rounds' ratios; ``*_runs`` lists them). Before the rounds, an SQLAlchemy event hook counts
the statements, transactions and round trips of one transfer, one batch and their plain writes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    event,
    text,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from kouza.assembly import build_runtime
from kouza.config import Settings
from kouza.kit.clock import SystemClock
from kouza.kit.migrate import upgrade
from kouza.ledger.models import AccountKind, EntryKind
from kouza.ledger.service import EntrySpec, ledger, transfer_spec
from kouza.runtime import Runtime

ACCOUNTS = 10_000
HOT = 10
BATCH = 1_000


def _runtime(url: str, var: Path) -> Runtime:
    settings = Settings(var_dir=var, secret_key="benchmark")
    return build_runtime(settings, clock=SystemClock(), database_url=url)


def _prepare_postgres(base: str) -> str:
    from sqlalchemy import create_engine

    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS kouza_bench CASCADE"))
        connection.execute(text("CREATE SCHEMA kouza_bench"))
    engine.dispose()
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3Dkouza_bench"


def _open_accounts(rt: Runtime) -> list[int]:
    with rt.db.unit_of_work() as session:
        source = ledger.system_account(session, AccountKind.OPERATOR_FLOAT)
        ids = [
            ledger.open_account(
                session, kind=AccountKind.CUSTOMER_WALLET, code=f"wallet:{i}", name=f"bench {i}"
            ).id
            for i in range(ACCOUNTS)
        ]
    funding = [
        transfer_spec(kind=EntryKind.TOPUP, source=source, destination=account, amount=100_000_000)
        for account in ids
    ]
    with rt.db.unit_of_work() as session:
        ledger.post_batch(session, funding)
    if rt.db.dialect == "postgresql":  # what autovacuum would do on a live system
        with rt.db.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
    return ids


def _specs(ids: list[int], count: int, rng: random.Random, hot: int = 0) -> list[EntrySpec]:
    """Random transfers among ``ids``; with ``hot``, 90% go to one of the first ``hot`` ids."""
    specs = []
    for _ in range(count):
        source, destination = rng.sample(ids, 2)
        if hot and rng.random() < 0.9:
            destination = ids[rng.randrange(hot)]
            if destination == source:
                source = ids[hot + rng.randrange(len(ids) - hot)]
        specs.append(
            transfer_spec(
                kind=EntryKind.TRANSFER,
                source=source,
                destination=destination,
                amount=rng.randint(1, 500),
            )
        )
    return specs


def _partition(
    ids: list[int], count: int, writers: int, rng: random.Random, hot: int = 0
) -> list[list[EntrySpec]]:
    """Transfers for ``writers`` callers, each on its own disjoint share of the accounts (as a
    high-rate caller sharded by account would be); ``hot`` hot accounts in all."""
    return [_specs(ids[w::writers], count // writers, rng, hot // writers) for w in range(writers)]


def _settle(rt: Runtime) -> None:
    """SQLite: write the WAL back into the database before a timed phase, so no phase pays
    for the checkpoint of the pages the previous one wrote (the ledger's phases run first and
    write more pages; their checkpoint fell into the plain INSERTs' time)."""
    if rt.db.dialect != "sqlite":
        return
    raw = rt.db.engine.raw_connection()  # no BEGIN IMMEDIATE: a checkpoint runs outside one
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # type: ignore[union-attr]
    finally:
        raw.close()


def _single(rt: Runtime, specs: list[EntrySpec], clients: int) -> dict[str, float]:
    """One transfer per unit of work, from ``clients`` concurrent clients (as an API would)."""
    _settle(rt)
    latencies: list[float] = []
    queue = iter(specs)
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                spec = next(queue, None)
            if spec is None:
                return
            t0 = time.perf_counter()
            with rt.db.unit_of_work() as session:
                ledger.post_entry(session, spec)
            elapsed_ms = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(elapsed_ms)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if len(latencies) != len(specs):
        raise SystemExit(f"{len(specs) - len(latencies)} single transfers failed")
    latencies.sort()
    return {
        "tps": len(specs) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
    }


def _parallel(rt: Runtime, work: Any, partitions: list[list[EntrySpec]]) -> float:
    """Run ``work(partition)`` in one thread per partition; transfers/s over all of them (a
    failure in any thread fails the benchmark)."""
    failures: list[BaseException] = []
    _settle(rt)

    def run(part: list[EntrySpec]) -> None:
        try:
            work(part)
        except BaseException as exc:
            failures.append(exc)
            raise

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(part,)) for part in partitions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"benchmark writer failed: {failures[0]!r}")
    return sum(len(p) for p in partitions) / (time.perf_counter() - started)


def _batched(rt: Runtime, partitions: list[list[EntrySpec]]) -> float:
    """``post_batch`` of BATCH transfers per unit of work, one writer per partition."""

    def writer(specs: list[EntrySpec]) -> None:
        for start in range(0, len(specs), BATCH):
            with rt.db.unit_of_work() as session:
                ledger.post_batch(session, specs[start : start + BATCH])

    return _parallel(rt, writer, partitions)


def _raw_tables(rt: Runtime, *, foreign_keys: bool = False) -> tuple[Table, Table]:
    """Copies of ``journal_entries`` and ``postings``: the same columns, indexes and unique keys,
    but no CHECKs or triggers — and nobody updates balances or locks accounts. Without
    ``foreign_keys`` they have no foreign keys either; with it, the three of the real tables."""
    metadata = MetaData()
    big_id = BigInteger().with_variant(Integer(), "sqlite")
    prefix = "bench_raw_fk" if foreign_keys else "bench_raw"

    def key(column: str, target: str) -> Column[Any]:
        if foreign_keys:
            return Column(column, big_id, ForeignKey(target), nullable=column == "reverses_id")
        return Column(column, big_id, nullable=column == "reverses_id")

    # a stand-in so the foreign key can name ledger_accounts; it is never created or dropped
    Table("ledger_accounts", metadata, Column("id", big_id, primary_key=True))
    entries = Table(
        f"{prefix}_entries",
        metadata,
        Column("id", big_id, primary_key=True),
        Column("kind", String(32), nullable=False),
        Column("description", String(500), nullable=False),
        Column("idempotency_key", String(255), unique=True),
        Column("request_hash", String(64)),
        key("reverses_id", f"{prefix}_entries.id"),
        Column("reference", JSON),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Index(f"ix_{prefix}_entries_created_at", "created_at"),
    )
    entries.c.reverses_id.unique = True
    postings = Table(
        f"{prefix}_postings",
        metadata,
        Column("id", big_id, primary_key=True),
        key("entry_id", f"{prefix}_entries.id"),
        key("account_id", "ledger_accounts.id"),
        Column("amount", BigInteger, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Index(f"ix_{prefix}_postings_account_created", "account_id", "created_at"),
        Index(f"ix_{prefix}_postings_entry", "entry_id"),
    )
    metadata.drop_all(rt.db.engine, tables=[postings, entries])
    metadata.create_all(rt.db.engine, tables=[entries, postings])
    return entries, postings


_RAW_PG = (
    "WITH source AS (SELECT * FROM ROWS FROM (json_to_recordset(CAST(:entries AS json)) AS ("
    " kind varchar, description varchar)) WITH ORDINALITY AS s(kind, description, ord)),"
    " numbered AS (SELECT nextval(pg_get_serial_sequence('{entries}', 'id')) AS id,"
    " source.* FROM source ORDER BY ord),"
    " e AS (INSERT INTO {entries} (id, kind, description, created_at)"
    " SELECT id, kind, description, :now FROM numbered),"
    " p AS (INSERT INTO {postings} (entry_id, account_id, amount, created_at)"
    " SELECT numbered.id, leg.account_id, leg.amount, :now"
    " FROM json_to_recordset(CAST(:postings AS json)) AS leg(ord bigint, account_id bigint,"
    " amount bigint) JOIN numbered ON numbered.ord = leg.ord)"
    " SELECT id FROM numbered ORDER BY ord"
)


def _raw(
    rt: Runtime, partitions: list[list[EntrySpec]], batch: int, *, foreign_keys: bool = False
) -> float:
    """The same rows written the same way (one statement per batch on PostgreSQL, executemany
    on SQLite) into tables with no constraints, triggers or balance updates: no ledger logic
    (with ``foreign_keys``, the real tables' foreign keys and nothing else)."""
    entries, postings = _raw_tables(rt, foreign_keys=foreign_keys)
    ids = itertools.count(1)
    lock = threading.Lock()

    def writer(specs: list[EntrySpec]) -> None:
        for start in range(0, len(specs), batch):
            chunk = specs[start : start + batch]
            with lock:
                first = next(ids)
                for _ in range(len(chunk) - 1):
                    next(ids)
            with rt.db.engine.begin() as connection:
                _raw_write(connection, entries, postings, chunk, first)

    return _parallel(rt, writer, partitions)


def _raw_write(
    connection: Connection, entries: Table, postings: Table, chunk: list[EntrySpec], first_id: int
) -> None:
    now = datetime.now(UTC)
    if connection.dialect.name == "postgresql":
        connection.execute(
            text(_RAW_PG.format(entries=entries.name, postings=postings.name)),
            {
                "entries": json.dumps(
                    [{"kind": s.kind.value, "description": s.description} for s in chunk]
                ),
                "postings": json.dumps(
                    [
                        {"ord": n, "account_id": leg.account_id, "amount": leg.amount}
                        for n, spec in enumerate(chunk, start=1)
                        for leg in spec.legs
                    ]
                ),
                "now": now,
            },
        ).scalars().all()
        return
    _raw_write_sqlite(connection, entries, postings, chunk, first_id, now)


def _raw_write_sqlite(
    connection: Connection,
    entries: Table,
    postings: Table,
    chunk: list[EntrySpec],
    first_id: int,
    now: datetime,
) -> None:
    """The fastest plain write of these rows that the driver allows: one ``executemany`` per
    table of positional tuples on the raw ``sqlite3`` cursor of the engine's own connection,
    inside the transaction the engine began (``BEGIN IMMEDIATE``, the ledger's pragmas), with
    the timestamp as the text SQLAlchemy stores — no SQLAlchemy parameter processing."""
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    _DRIVER_STATEMENTS[0] += 2  # the raw cursor is invisible to SQLAlchemy's event hooks
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    ids = range(first_id, first_id + len(chunk))
    cursor.executemany(
        f"INSERT INTO {entries.name} (id, kind, description, created_at) VALUES (?, ?, ?, ?)",
        [(i, s.kind.value, s.description, stamp) for i, s in zip(ids, chunk, strict=True)],
    )
    cursor.executemany(
        f"INSERT INTO {postings.name} (entry_id, account_id, amount, created_at) "
        "VALUES (?, ?, ?, ?)",
        [
            (i, leg.account_id, leg.amount, stamp)
            for i, spec in zip(ids, chunk, strict=True)
            for leg in spec.legs
        ],
    )
    cursor.close()


_DRIVER_STATEMENTS = [0]
"""Statements sent on a raw DB-API cursor (the SQLite floor), for :class:`_Counter`."""


class _Counter:
    """Counts the SQL statements and transactions an engine runs (an SQLAlchemy event hook),
    switched on only around the calls it counts, never while a figure is timed."""

    def __init__(self, rt: Runtime) -> None:
        self.statements = 0
        self.transactions = 0
        self.engine = rt.db.engine

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE, issued by kit.db
            self.statements += 1

    def _commit(self, _conn: Any) -> None:
        self.transactions += 1

    def count(self, work: Any, calls: int) -> dict[str, float]:
        """Statements, transactions and round trips per call of ``work()``."""
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        self.statements = -_DRIVER_STATEMENTS[0]
        try:
            for _ in range(calls):
                work()
        finally:
            event.remove(self.engine, "before_cursor_execute", self._statement)
            event.remove(self.engine, "commit", self._commit)
        self.statements += _DRIVER_STATEMENTS[0]
        statements, transactions = self.statements / calls, self.transactions / calls
        self.statements = self.transactions = 0
        # psycopg sends BEGIN and COMMIT as round trips of their own; SQLite is in-process
        trips = statements + 2 * transactions if self.engine.dialect.name == "postgresql" else 0
        return {"statements": statements, "transactions": transactions, "round_trips": trips}


def _costs(rt: Runtime, ids: list[int], rng: random.Random) -> dict[str, float]:
    """Statements, transactions and round trips of one single transfer, one batch, and the
    plain writes of the same rows (the floors)."""
    counter = _Counter(rt)
    singles = iter(_specs(ids, 100, rng))
    batch = _specs(ids, BATCH, rng)

    def single() -> None:
        with rt.db.unit_of_work() as session:
            ledger.post_entry(session, next(singles))

    def batched() -> None:
        with rt.db.unit_of_work() as session:
            ledger.post_batch(session, batch)

    entries, postings = _raw_tables(rt)
    first = itertools.count(1, BATCH)

    def raw(chunk: list[EntrySpec]) -> Any:
        def write() -> None:
            with rt.db.engine.begin() as connection:
                _raw_write(connection, entries, postings, chunk, next(first))

        return write

    figures = {}
    for label, work, calls in (
        ("single", single, 100),
        ("batched", batched, 1),
        ("raw_single", raw(batch[:1]), 100),
        ("raw_batched", raw(batch), 1),
    ):
        for key, value in counter.count(work, calls).items():
            figures[f"{label}_{key}_per_call"] = value
    return figures


def _round(
    rt: Runtime,
    ids: list[int],
    rng: random.Random,
    *,
    single: int,
    batched: int,
    clients: int,
    writers: int,
    log: Any,
    name: str,
    number: int,
) -> dict[str, float]:
    """One run of every measurement, the floors beside the ledger (same specs)."""
    single_specs = _specs(ids, single, rng)
    batch_parts = _partition(ids, batched, writers, rng)
    hot_parts = _partition(ids, batched, writers, rng, hot=HOT)
    log(f"[{name} {number}] single transfers ({single:,}, {clients} concurrent clients) …")
    one = _single(rt, single_specs, clients)
    log(f"[{name} {number}] batched ({batched:,}, {BATCH:,} per batch, {writers} writers) …")
    many = _batched(rt, batch_parts)
    log(f"[{name} {number}] batched, 90% on {HOT} hot accounts …")
    hot = _batched(rt, hot_parts)
    log(f"[{name} {number}] plain INSERTs of the same rows (with and without FKs) …")
    raw_batched = _raw(rt, batch_parts, BATCH)
    raw_single = _raw(rt, [single_specs[c::clients] for c in range(clients)], 1)
    raw_fk_batched = _raw(rt, batch_parts, BATCH, foreign_keys=True)
    return {
        "single_tps": one["tps"],
        "single_p50_ms": one["p50_ms"],
        "single_p99_ms": one["p99_ms"],
        "batched_tps": many,
        "hot_batched_tps": hot,
        "raw_insert_tps": raw_batched,
        "raw_insert_single_tps": raw_single,
        "raw_insert_fk_tps": raw_fk_batched,
        "batched_vs_raw_ratio": many / raw_batched,
        "single_vs_raw_ratio": one["tps"] / raw_single,
        "raw_fk_vs_raw_ratio": raw_fk_batched / raw_batched,
    }


def run(
    name: str,
    url: str,
    *,
    single: int,
    batched: int,
    clients: int,
    writers: int,
    rounds: int,
    log: Any,
) -> dict[str, Any]:
    """Every measurement on one database, ``rounds`` times; returns the median of each figure
    (a ratio is the median of the rounds' ratios), prefixed with ``name``."""
    with tempfile.TemporaryDirectory() as var:
        rt = _runtime(url, Path(var))
        upgrade(rt.db.engine)
        log(f"[{name}] opening and funding {ACCOUNTS:,} accounts …")
        ids = _open_accounts(rt)
        rng = random.Random(7)
        costs = _costs(rt, ids, rng)
        runs = [
            _round(
                rt,
                ids,
                rng,
                single=single,
                batched=batched,
                clients=clients,
                writers=writers,
                log=log,
                name=name,
                number=n + 1,
            )
            for n in range(rounds)
        ]
        with rt.db.unit_of_work() as session:
            report = ledger.verify(session)
        if not report.ok:
            raise SystemExit(f"ledger verification failed after the benchmark: {report.problems}")
        rt.db.dispose()
    figures: dict[str, Any] = {
        f"{name}_rounds": rounds,
        f"{name}_single_clients": clients,
        f"{name}_batched_writers": writers,
    }
    figures |= {f"{name}_{key}": value for key, value in costs.items()}
    for key in runs[0]:
        figures[f"{name}_{key}"] = statistics.median(r[key] for r in runs)
    for key in ("single_vs_raw_ratio", "batched_vs_raw_ratio"):
        figures[f"{name}_{key}_runs"] = [round(r[key], 3) for r in runs]
    return figures


def _print_table(figures: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    table = RichTable(
        "database",
        "clients",
        "single tx/s",
        "p50 ms",
        "p99 ms",
        "batched tx/s",
        "hot batched tx/s",
        "plain INSERT tx/s",
        "plain + FKs tx/s",
        "ledger/plain (batched)",
        "ledger/plain (single)",
        title="kouza ledger benchmark",
    )
    for name in ("sqlite", "postgres"):
        if f"{name}_single_tps" not in figures:
            continue
        f = {k.removeprefix(name + "_"): v for k, v in figures.items() if k.startswith(name)}
        table.add_row(
            name,
            f"{f['single_clients']:.0f}",
            f"{f['single_tps']:,.0f}",
            f"{f['single_p50_ms']:.2f}",
            f"{f['single_p99_ms']:.2f}",
            f"{f['batched_tps']:,.0f}",
            f"{f['hot_batched_tps']:,.0f}",
            f"{f['raw_insert_tps']:,.0f}",
            f"{f['raw_insert_fk_tps']:,.0f}",
            f"{f['batched_vs_raw_ratio']:.0%}",
            f"{f['single_vs_raw_ratio']:.0%}",
        )
    Console().print(table)
    costs = RichTable(
        "database",
        "per call",
        "statements",
        "transactions",
        "round trips",
        title="what one call costs",
    )
    for name in ("sqlite", "postgres"):
        if f"{name}_single_tps" not in figures:
            continue
        for label, what in (
            ("single", "ledger: one transfer"),
            ("raw_single", "plain INSERT: one transfer"),
            ("batched", f"ledger: a batch of {BATCH:,}"),
            ("raw_batched", f"plain INSERT: a batch of {BATCH:,}"),
        ):
            costs.add_row(
                name,
                what,
                *(
                    f"{figures[f'{name}_{label}_{key}_per_call']:.1f}"
                    for key in ("statements", "transactions", "round_trips")
                ),
            )
    Console().print(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--single", type=int, default=3_000, help="single transfers")
    parser.add_argument("--batched", type=int, default=50_000, help="batched transfers")
    parser.add_argument(
        "--clients",
        type=int,
        default=8,
        help="concurrent clients for single transfers on PostgreSQL "
        "(SQLite has one writer: one client)",
    )
    parser.add_argument(
        "--writers",
        type=int,
        default=2,
        help="concurrent batch writers on PostgreSQL, each on its own accounts (SQLite: one)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of every measurement; medians are printed"
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()

    def log(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr)

    figures: dict[str, Any] = {}
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            figures |= run(
                "sqlite",
                url,
                single=args.single,
                batched=args.batched,
                clients=1,
                writers=1,
                rounds=args.rounds,
                log=log,
            )
    postgres = os.environ.get("KOUZA_BENCH_POSTGRES_URL") or os.environ.get(
        "KOUZA_TEST_POSTGRES_URL"
    )
    if postgres:
        url = _prepare_postgres(postgres)
        figures |= run(
            "postgres",
            url,
            single=args.single,
            batched=args.batched,
            clients=args.clients,
            writers=args.writers,
            rounds=args.rounds,
            log=log,
        )
    else:
        log("PostgreSQL skipped: set KOUZA_BENCH_POSTGRES_URL")
    if args.json:
        print(
            json.dumps({k: v if isinstance(v, list) else round(v, 3) for k, v in figures.items()})
        )
    else:
        _print_table(figures)


if __name__ == "__main__":
    main()
