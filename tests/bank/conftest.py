"""Bank fixtures: a bank runtime on a fresh, migrated bank database per test, both dialects.

SQLite: the bank migrations run once into a template file, copied for each test. PostgreSQL
(``KOUZA_TEST_POSTGRES_URL``): one schema per test process (``kouza_bank_test_<worker>_<pid>``),
migrated once, truncated before each test and dropped at the end. The root conftest's cheap
argon2 parameters apply: the bank hashes through ``kouza.kit.security``.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from kouza.bank.assembly import build_bank_runtime
from kouza.bank.migrate import upgrade
from kouza.bank.models import BankBase
from kouza.bank.runtime import BankRuntime
from kouza.bank.settings import BankSettings
from kouza.kit.clock import ManualClock
from kouza.kit.db import make_engine
from kouza.kit.notify import MemoryMailbox
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES

BANK_SECRET = "bank-test-secret-not-for-production"
STAFF_TOKEN = "staff-test-token"


class WebhookReceiver:
    """The operator's webhook endpoint, as an httpx transport that records what it got."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.status_code = 204

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(self.status_code)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def tokens(self) -> list[str]:
        return [request.content.decode() for request in self.requests]


@pytest.fixture(scope="session")
def bank_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bank-template") / "bank.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _admin_url() -> str:
    if POSTGRES_URL.startswith("postgresql://"):
        return POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return POSTGRES_URL


def _set_schema(schema: str, *, create: bool) -> None:
    admin = create_engine(_admin_url())
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        if create:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()


@pytest.fixture(scope="session")
def bank_postgres_url() -> Iterator[tuple[str, Engine]]:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("KOUZA_REQUIRE_POSTGRES=1 but KOUZA_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL tests need KOUZA_TEST_POSTGRES_URL")
    worker = re.sub(r"\W", "_", os.environ.get("PYTEST_XDIST_WORKER", "main"))
    schema = f"kouza_bank_test_{worker}_{os.getpid()}"
    _set_schema(schema, create=True)
    joiner = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    yield url, engine  # the engine stays open to truncate between tests
    engine.dispose()
    _set_schema(schema, create=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def bank_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("bank_sqlite_template")
        target = tmp_path / f"bank-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url, engine = request.getfixturevalue("bank_postgres_url")
    tables = ", ".join(table.name for table in BankBase.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return str(url)


@pytest.fixture
def webhooks() -> WebhookReceiver:
    return WebhookReceiver()


@pytest.fixture
def bank_rt(
    bank_db_url: str,
    tmp_path: Path,
    clock: ManualClock,
    mailbox: MemoryMailbox,
    webhooks: WebhookReceiver,
) -> Iterator[BankRuntime]:
    settings = BankSettings(
        var_dir=tmp_path / "var", secret_key=BANK_SECRET, staff_token=STAFF_TOKEN
    )
    runtime = build_bank_runtime(
        settings,
        clock=clock,
        senders={"email": mailbox, "sms": mailbox, "post": mailbox},
        webhook_transport=webhooks.transport,
        database_url=bank_db_url,
    )
    yield runtime
    runtime.db.dispose()
