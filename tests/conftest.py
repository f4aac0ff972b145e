"""Test fixtures: a migrated database per test, on SQLite and (when configured) PostgreSQL.

Every database test runs once per dialect (``rt`` is parametrised). The schema comes from the
real Alembic migrations: SQLite migrates a template file once per session and copies it for each
test; PostgreSQL migrates one schema per test worker once and truncates it before each test.
Tests commit for real (idempotency claims, the outbox and concurrency need that).

``KOUZA_TEST_POSTGRES_URL`` enables PostgreSQL; without it those cases skip with the reason —
unless ``KOUZA_REQUIRE_POSTGRES=1`` (set by ``.ci/run`` in CI), where a missing server fails.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text

from kouza.assembly import build_runtime
from kouza.config import Settings
from kouza.kit import security
from kouza.kit.clock import ManualClock
from kouza.kit.db import make_engine
from kouza.kit.migrate import upgrade
from kouza.kit.notify import MemoryMailbox
from kouza.models import Base
from kouza.risk.engine import RiskEngine
from kouza.risk.rules import parse_rule_set
from kouza.runtime import Runtime

POSTGRES_URL = os.environ.get("KOUZA_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("KOUZA_REQUIRE_POSTGRES") == "1"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TEST_SECRET = "test-secret-key-not-for-production"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if POSTGRES_URL or REQUIRE_POSTGRES:
        return
    skip = pytest.mark.skip(reason="PostgreSQL tests need KOUZA_TEST_POSTGRES_URL")
    for item in items:
        if "postgres" in item.keywords or "[postgres" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "kouza.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


def _worker_schema() -> str:
    """One schema per test process, so parallel runs on one server never share tables."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return "kouza_test_" + re.sub(r"\W", "_", worker) + f"_{os.getpid()}"


def _schema_url(base: str, schema: str) -> str:
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("KOUZA_REQUIRE_POSTGRES=1 but KOUZA_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL tests need KOUZA_TEST_POSTGRES_URL")
    schema = _worker_schema()
    admin_url = (
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        if POSTGRES_URL.startswith("postgresql://")
        else POSTGRES_URL
    )
    admin = create_engine(admin_url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    url = _schema_url(POSTGRES_URL, schema)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    admin = create_engine(admin_url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def make_runtime(
    url: str, tmp_path: Path, clock: ManualClock, mailbox: MemoryMailbox, **settings: object
) -> Runtime:
    """A runtime on ``url``. Its risk engine starts with no rules, so tests of other domains
    do not depend on fraud thresholds; risk tests install the shipped rule set explicitly."""
    config = Settings(var_dir=tmp_path / "var", secret_key=TEST_SECRET, **settings)  # type: ignore[arg-type]
    runtime = build_runtime(
        config, clock=clock, senders={"email": mailbox, "sms": mailbox}, database_url=url
    )
    runtime.risk_engine = RiskEngine(parse_rule_set("rules: []", source="tests"))
    return runtime


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with tiny parameters: the tests exercise the logic, not the hash cost
    (0.27 s per hash with the production parameters on this machine)."""
    monkeypatch.setattr(
        security, "_password_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def mailbox() -> MemoryMailbox:
    return MemoryMailbox()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / f"kouza-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def rt(
    db_url: str, tmp_path: Path, clock: ManualClock, mailbox: MemoryMailbox
) -> Iterator[Runtime]:
    runtime = make_runtime(db_url, tmp_path, clock, mailbox)
    yield runtime
    runtime.db.dispose()
