"""A wallet and a bank, both in-process, talking only HTTP — on SQLite and on PostgreSQL.

The bank database follows the wallet's dialect (one parametrisation, not four): SQLite copies a
migrated bank template; PostgreSQL migrates its own schema per test process
(``kouza_link_bank_<worker>_<pid>``, distinct from ``tests/bank``' schema so both can run in one
session) and truncates it before each test.

Wiring (ADR 0010): the wallet's :class:`BankClient` uses an ``httpx.Client`` whose transport is
:class:`FaultyTransport`, forwarding to ``TestClient(bank_app)`` (sync; ``httpx.ASGITransport``
is async-only) and able to lose a response or drop a request. The bank's webhook transport
forwards to ``TestClient(wallet_app)``, so a revocation at the bank counter reaches the wallet's
receiver for real.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from kouza.api.app import create_app
from kouza.bank.app import create_bank_app
from kouza.bank.assembly import build_bank_runtime
from kouza.bank.migrate import upgrade
from kouza.bank.models import AuthProfile, BankBase
from kouza.bank.runtime import BankRuntime
from kouza.bank.settings import BankSettings
from kouza.kit.clock import ManualClock
from kouza.kit.db import make_engine
from kouza.kit.notify import MemoryMailbox
from kouza.linking.client import BankClient
from kouza.runtime import Runtime
from tests.bank.helpers import Holder, make_bank, make_client, make_holder
from tests.conftest import POSTGRES_URL

BANK_SECRET = "linking-bank-secret-not-for-production"
STAFF_TOKEN = "linking-staff-token"
BANK_URL = "http://bank.kouza.test"
WALLET_URL = "http://wallet.kouza.test"
LEGACY_BANK = "0125"
OAUTH_BANK = "0010"


class FaultyTransport(httpx.BaseTransport):
    """Forwards to the bank app; can lose the answer or drop the request of matching calls."""

    def __init__(self, bank: TestClient) -> None:
        self.bank = bank
        self.lose_response: Callable[[httpx.Request], bool] = lambda _request: False
        self.drop_request: Callable[[httpx.Request], bool] = lambda _request: False
        self.forwarded: list[str] = []
        self.requests: list[httpx.Request] = []
        """Every request forwarded (headers and body), for tests that inspect the wire."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if self.drop_request(request):
            raise httpx.ConnectError("connection refused (injected)", request=request)
        answer = self.bank.request(
            request.method,
            request.url.raw_path.decode(),
            content=request.content,
            headers=dict(request.headers),
        )
        self.forwarded.append(f"{request.method} {request.url.path}")
        self.requests.append(request)
        if self.lose_response(request):
            raise httpx.ReadTimeout("response lost (injected)", request=request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def is_transfer(request: httpx.Request) -> bool:
    """A debit or credit POST."""
    return request.method == "POST" and request.url.path.endswith(("/debits", "/credits"))


@pytest.fixture(scope="session")
def linking_bank_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("linking-bank-template") / "bank.db"
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
def linking_bank_postgres() -> Iterator[str]:
    worker = re.sub(r"\W", "_", os.environ.get("PYTEST_XDIST_WORKER", "main"))
    schema = f"kouza_link_bank_{worker}_{os.getpid()}"
    _set_schema(schema, create=True)
    joiner = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    _set_schema(schema, create=False)


@pytest.fixture
def bank_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if db_url.startswith("sqlite"):
        template: Path = request.getfixturevalue("linking_bank_template")
        target = tmp_path / f"bank-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("linking_bank_postgres")
    engine = make_engine(url)
    tables = ", ".join(table.name for table in BankBase.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@dataclass
class World:
    """The wallet, the bank, and the wires between them."""

    rt: Runtime
    bank_rt: BankRuntime
    wallet: TestClient
    bank: TestClient
    transport: FaultyTransport
    mailbox: MemoryMailbox
    clock: ManualClock
    victim: Holder
    oauth_holder: Holder
    webhook_answers: list[int] = field(default_factory=list)
    webhook_tokens: list[str] = field(default_factory=list)

    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {STAFF_TOKEN}"}


@pytest.fixture
def world(
    rt: Runtime, bank_url: str, tmp_path: Path, clock: ManualClock, mailbox: MemoryMailbox
) -> Iterator[World]:
    wallet = TestClient(create_app(rt), base_url=WALLET_URL)
    answers: list[int] = []
    tokens: list[str] = []

    def to_wallet(request: httpx.Request) -> httpx.Response:
        tokens.append(request.read().decode())
        answer = wallet.post(
            request.url.path,
            content=request.read(),
            headers={"Content-Type": request.headers["Content-Type"]},
        )
        answers.append(answer.status_code)
        return httpx.Response(answer.status_code, content=answer.content)

    settings = BankSettings(
        var_dir=tmp_path / "bank-var", secret_key=BANK_SECRET, staff_token=STAFF_TOKEN
    )
    bank_rt = build_bank_runtime(
        settings,
        clock=clock,
        senders={"email": mailbox, "sms": mailbox, "post": mailbox},
        webhook_transport=httpx.MockTransport(to_wallet),
        database_url=bank_url,
    )
    make_bank(bank_rt, LEGACY_BANK)
    make_bank(bank_rt, OAUTH_BANK, profile=AuthProfile.OAUTH)
    victim = make_holder(
        bank_rt,
        bank_code=LEGACY_BANK,
        number="1234567",
        pin="4321",
        balance=500_000,
        name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
        email="taro@example.jp",
    )
    oauth_holder = make_holder(
        bank_rt,
        bank_code=OAUTH_BANK,
        number="7654321",
        pin="1111",
        balance=500_000,
        name_kana="ｻﾄｳ ﾊﾅｺ",
        email="hanako@example.jp",
    )
    client_id, secret = make_client(bank_rt, webhook_url=f"{WALLET_URL}/v1/banks/webhooks")
    rt.settings.bank_client_id = client_id
    rt.settings.bank_client_secret = secret
    rt.settings.bank_issuer = settings.issuer
    bank = TestClient(create_bank_app(bank_rt), base_url=BANK_URL)
    transport = FaultyTransport(bank)
    rt.bank_client = BankClient(
        httpx.Client(base_url=BANK_URL, transport=transport),
        client_id=client_id,
        client_secret=secret,
    )
    yield World(
        rt, bank_rt, wallet, bank, transport, mailbox, clock, victim, oauth_holder, answers, tokens
    )
    bank_rt.db.dispose()
