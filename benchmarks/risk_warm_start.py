"""How long a restarted process takes to warm its in-memory risk feature store.

Usage::

    python benchmarks/risk_warm_start.py                 # 200,000 events on SQLite
    python benchmarks/risk_warm_start.py --events 500000 --postgres URL

Stores ``--events`` risk events spread over 30 days (the shipped rule set reads ``age()``, so
the whole 31-day retention is replayed) across 20,000 wallets and devices, then times
:func:`kouza.risk.service.warm` — the one streamed query a new process runs before its first
decision — and prints events/s.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from kouza.assembly import build_runtime
from kouza.config import Settings
from kouza.kit.clock import ManualClock
from kouza.kit.migrate import upgrade
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.models import RiskEventRecord
from kouza.risk.service import warm

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL (an empty schema)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(var_dir=Path(tmp) / "var", secret_key="bench")  # type: ignore[call-arg]
        runtime = build_runtime(settings, clock=ManualClock(NOW), database_url=url)
        upgrade(runtime.db.engine)
        rng = random.Random(7)
        rows = [
            {
                "type": rng.choice(["signup", "link_attempt", "topup", "payment"]),
                "at": NOW - timedelta(seconds=rng.randrange(30 * 86400)),
                "wallet": f"w{rng.randrange(20_000)}",
                "device": f"d{rng.randrange(20_000)}",
                "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.1",
                "bank": "0005",
                "account": f"fp{rng.randrange(20_000)}",
                "amount": rng.randrange(100_000),
            }
            for _ in range(args.events)
        ]
        with runtime.db.engine.begin() as connection:
            connection.execute(insert(RiskEventRecord), rows)
        store = InMemoryFeatureStore()
        started = time.perf_counter()
        replayed = warm(store, runtime, since=NOW - timedelta(days=31))
        seconds = time.perf_counter() - started
        print(
            f"{replayed:,} events replayed in {seconds:.2f} s "
            f"({replayed / seconds:,.0f} events/s) on {runtime.db.dialect}"
        )
        runtime.db.dispose()


if __name__ == "__main__":
    main()
