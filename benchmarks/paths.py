"""What each customer operation costs: SQL statements, transactions, bank round trips, CPU, and
its throughput against a same-run floor of plain SQL writing the same rows.

Usage::

    python benchmarks/paths.py                         # SQLite (wallet and bank each a file)
    python benchmarks/paths.py --json                  # one JSON object
    python benchmarks/paths.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    KOUZA_BENCH_POSTGRES_URL=... python benchmarks/paths.py

Each run builds a wallet and a bank with the production runtimes (``build_runtime``,
``build_bank_runtime``) on fresh, migrated databases — on SQLite two files, on PostgreSQL two
databases of their own on the given server (``kouza_paths_<pid>_wallet`` and ``…_bank``, dropped
at the end) — wired only by HTTP: the wallet's ``BankClient`` reaches the bank's FastAPI app
through an in-process ASGI transport, and the benchmark drives the wallet's own FastAPI app the
same way, as the customer's app would (bearer token, Idempotency-Key, device signature). So an
operation is one request to the wallet's public API with everything it sets off: the
authentication, the idempotency record, the service, the risk decision, the bank's endpoint
and the holder's notice. The defaults are kouza's (verified level to link, device signature
for money out, the shipped risk rules) and argon2 runs with its production parameters.

Per operation, summed over the wallet's and the bank's engines (SQLAlchemy event hooks):

* ``statements``: ``before_cursor_execute`` calls, transaction control (BEGIN/COMMIT/ROLLBACK)
  left out, savepoints counted;
* ``transactions``: the engines' ``begin`` events (read-only ones too: each costs a BEGIN and a
  COMMIT round trip on PostgreSQL), and ``commits`` (``commit`` events);
* ``round trips``: requests the wallet sent to the bank's API (an httpx transport that counts);
  the linking flow also counts the holder's browser requests to the bank's pages apart;
* ``CPU ms``: process CPU time (every thread: the apps' sync endpoints run in worker threads).

The floor: the INSERT, UPDATE and DELETE statements the operation's committed transactions
issued (exactly as sent to the driver, with their parameters; rolled-back savepoints left out),
replayed with the plain DB-API cursor in **one** transaction per database, on a copy of the
databases taken before the measured operations (every write after the copy is replayed in
order, so each replay meets the same rows; UPDATE/DELETE row counts are checked against the
originals). ``floor/s`` is one over the median replay time of an operation (wallet + bank), and
``share`` the operation's rate (one over its median wall time) as a fraction of it. The floor
replays the statements the operation sends, so a redundant UPDATE is in the floor too.

Each figure is the median over the operations of a run, then the median of three runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
warnings.simplefilter("ignore", DeprecationWarning)

import httpx  # noqa: E402
import pyotp  # noqa: E402
from joserfc import jws  # noqa: E402
from joserfc.jwk import ECKey  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

from kouza.api.app import create_app  # noqa: E402
from kouza.assembly import build_runtime  # noqa: E402
from kouza.bank.app import create_bank_app  # noqa: E402
from kouza.bank.assembly import build_bank_runtime  # noqa: E402
from kouza.bank.core import BankConfig, CustomerData, core  # noqa: E402
from kouza.bank.migrate import upgrade as upgrade_bank  # noqa: E402
from kouza.bank.models import AccountType, AuthProfile  # noqa: E402
from kouza.bank.runtime import BankRuntime  # noqa: E402
from kouza.bank.settings import BankSettings  # noqa: E402
from kouza.config import Settings  # noqa: E402
from kouza.controls.models import OperatorRole  # noqa: E402
from kouza.controls.service import controls  # noqa: E402
from kouza.identity.devices import signing_payload  # noqa: E402
from kouza.identity.levels import promote  # noqa: E402
from kouza.identity.models import EkycVerification, User, VerifiedIdentity  # noqa: E402
from kouza.identity.service import identity  # noqa: E402
from kouza.kit import zengin  # noqa: E402
from kouza.kit.clock import ManualClock  # noqa: E402
from kouza.kit.migrate import upgrade  # noqa: E402
from kouza.kit.notify import Message, Sender  # noqa: E402
from kouza.linking.client import BankClient  # noqa: E402
from kouza.linking.keys import Signer, client_jwks  # noqa: E402
from kouza.runtime import Runtime  # noqa: E402
from kouza.wallet.models import MerchantCategory  # noqa: E402
from kouza.wallet.service import wallets  # noqa: E402

BANK_URL = "http://bank.paths.kouza.test"
WALLET_URL = "http://wallet.paths.kouza.test"
REDIRECT_URI = "https://wallet.paths.kouza.test/bank-callback"
CLIENT_ID = "kouza-wallet"
STAFF = "paths-staff"
OAUTH_BANK = "0010"
PASSWORD = "correct horse battery staple 42"
IB_PASSWORD = "internet banking 2024"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")

OPERATIONS = (
    "sign-up",
    "login",
    "device challenge",
    "link via OAuth",
    "top-up",
    "withdrawal",
    "QR payment",
    "transfer",
    "risk assess",
)
TARGETS: dict[str, dict[str, float]] = {
    "top-up": {"transactions": 4, "statements": 16},
    "QR payment": {"transactions": 1, "statements": 8},
    "transfer": {"transactions": 1, "statements": 8},
}
TARGET_SHARE = 0.25
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")
WRITES = ("INSERT", "UPDATE", "DELETE")
WRITE_WORDS = re.compile(r"\b(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.IGNORECASE)


# --- counting ----------------------------------------------------------------------------------


@dataclass
class Written:
    """One write statement as the driver got it, and how many rows it touched."""

    statement: str
    parameters: Any
    many: bool
    rowcount: int = -1


@dataclass
class Committed:
    """The writes of one committed transaction, and the operation it belonged to."""

    tag: str | None
    writes: list[Written]


class Meter:
    """SQLAlchemy event hooks on one engine: statements, transactions, commits, and the writes of
    every committed transaction (for the floor's replay)."""

    def __init__(self, engine: Engine) -> None:
        self.statements = 0
        self.transactions = 0
        self.commits = 0
        self.tag: str | None = None
        self.capturing = False
        self.trace: list[tuple[str, str]] | None = None
        """(tag, statement) of every measured statement, when asked for (``--statements``)."""
        self.committed: list[Committed] = []
        self._open: dict[int, list[Written]] = {}
        self._savepoints: dict[int, dict[str, int]] = {}
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        event.listen(engine, "savepoint", self._savepoint)
        event.listen(engine, "rollback_savepoint", self._rollback_savepoint)

    def _before(
        self, conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        head = statement.lstrip()[:8].upper()
        if head.startswith(TRANSACTION_CONTROL):
            return
        with self._lock:
            self.statements += 1
            if self.tag is not None and self.trace is not None:
                stats = context._get_cache_stats() if context is not None else ""
                self.trace.append((self.tag, f"[{stats}] " + " ".join(statement.split())))
            if self.capturing and _writes(head, statement):
                self._open.setdefault(id(conn), []).append(Written(statement, parameters, many))

    def _after(self, conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if not self.capturing:
            return
        writes = self._open.get(id(conn))
        if writes and writes[-1].statement is statement and "RETURNING" not in statement:
            writes[-1].rowcount = cursor.rowcount  # (before a RETURNING's rows are read: unknown)

    def _begin(self, conn: Any) -> None:
        with self._lock:
            self.transactions += 1
            if self.tag is not None and self.trace is not None:
                self.trace.append((self.tag, "BEGIN"))
            self._open[id(conn)] = []
            self._savepoints[id(conn)] = {}

    def _commit(self, conn: Any) -> None:
        with self._lock:
            self.commits += 1
            writes = self._open.pop(id(conn), [])
            if self.capturing and writes:
                self.committed.append(Committed(self.tag, writes))

    def _rollback(self, conn: Any) -> None:
        self._open.pop(id(conn), None)

    def _savepoint(self, conn: Any, name: str) -> None:
        self._savepoints.setdefault(id(conn), {})[name] = len(self._open.get(id(conn), []))

    def _rollback_savepoint(self, conn: Any, name: str, _context: Any) -> None:
        mark = self._savepoints.get(id(conn), {}).get(name)
        if mark is not None and id(conn) in self._open:
            del self._open[id(conn)][mark:]

    def counts(self) -> tuple[int, int, int]:
        return self.statements, self.transactions, self.commits


def _writes(head: str, statement: str) -> bool:
    """An INSERT, UPDATE or DELETE, or a WITH … that runs one (the ledger's PostgreSQL CTEs)."""
    if head.startswith(WRITES):
        return True
    return head.startswith("WITH") and WRITE_WORDS.search(statement) is not None


class ToApp(httpx.BaseTransport):
    """An ASGI app in this process (httpx's ASGITransport, driven synchronously), counting the
    requests. Each calling thread keeps one event loop: the wallet's sync endpoints run in
    worker threads and call the bank from there."""

    def __init__(self, app: Any) -> None:
        self.asgi = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        self.loops = threading.local()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests += 1

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self.asgi.handle_async_request(request)
            return response.status_code, response.headers.raw, await response.aread()

        loop = getattr(self.loops, "loop", None)
        if loop is None:
            loop = self.loops.loop = asyncio.new_event_loop()
        status, headers, content = loop.run_until_complete(call())
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """The bank opens and closes a client per webhook; the loops stay."""


class Mailbox:
    """Keeps the last message per recipient (codes are read from it)."""

    def __init__(self) -> None:
        self.last: dict[str, Message] = {}

    def send(self, message: Message) -> None:
        self.last[message.recipient] = message

    def code(self, recipient: str) -> str:
        found = CODE.search(self.last[recipient].body)
        assert found is not None, f"no code sent to {recipient}"
        return found.group(1)


# --- the world ---------------------------------------------------------------------------------


@dataclass
class Customer:
    """A verified wallet customer with a device key, and the bank holder they will link."""

    index: int
    user_id: uuid.UUID
    wallet_id: uuid.UUID
    email: str
    device_id: uuid.UUID
    key: ECKey
    account_number: str
    totp: pyotp.TOTP
    ip: str = ""
    token: str = ""
    link_id: str = ""


@dataclass
class Bench:
    rt: Runtime
    bank_rt: BankRuntime
    clock: ManualClock
    mailbox: Mailbox
    wallet: httpx.Client
    browser: httpx.Client
    to_wallet: ToApp
    to_bank: ToApp
    to_pages: ToApp
    meters: dict[str, Meter]
    customers: list[Customer]
    qr: str
    operator_token: str
    floor_urls: dict[str, str]
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        self.wallet.close()
        self.browser.close()
        self.rt.db.dispose()
        self.bank_rt.db.dispose()
        for step in self.cleanup:
            step()


class Databases:
    """Where a run's two databases live, and how the floor gets its copy of them."""

    def __init__(self, folder: Path, postgres: str | None) -> None:
        self.folder = folder
        self.postgres = postgres
        self.prefix = f"kouza_paths_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.made: list[str] = []

    def url(self, name: str) -> str:
        if self.postgres is None:
            return f"sqlite:///{self.folder / name}.db"
        database = f"{self.prefix}_{name}"
        self._admin(f"CREATE DATABASE {database}")
        self.made.append(database)
        return make_url(self.postgres).set(database=database).render_as_string(hide_password=False)

    def copy(self, name: str, source_url: str) -> str:
        """A copy of database ``name`` as it is now (the engines must hold no connection)."""
        if self.postgres is None:
            target = self.folder / f"{name}-floor.db"
            source = create_engine(source_url)
            with source.connect() as connection:
                connection.exec_driver_sql(f"VACUUM INTO '{target}'")
            source.dispose()
            return f"sqlite:///{target}"
        database = f"{self.prefix}_{name}_floor"
        self._admin(f"CREATE DATABASE {database} TEMPLATE {self.prefix}_{name}")
        self.made.append(database)
        return make_url(self.postgres).set(database=database).render_as_string(hide_password=False)

    def drop(self) -> None:
        for database in reversed(self.made):
            self._admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    def _admin(self, sql: str) -> None:
        assert self.postgres is not None
        admin = create_engine(self.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(sql))
        admin.dispose()


def build(folder: Path, count: int, postgres: str | None) -> Bench:
    databases = Databases(folder, postgres)
    clock = ManualClock()
    mailbox = Mailbox()
    senders: dict[str, Sender] = {"email": mailbox, "sms": mailbox, "post": mailbox}
    wallet_url, bank_url = databases.url("wallet"), databases.url("bank")
    settings = Settings(
        _env_file=None,
        var_dir=folder / "wallet-var",
        secret_key="paths-wallet-secret",
        bank_api_url=BANK_URL,
        bank_client_id=CLIENT_ID,
        bank_oauth_redirect_uri=REDIRECT_URI,
    )
    rt = build_runtime(settings, clock=clock, senders=senders, database_url=wallet_url)
    upgrade(rt.db.engine)
    to_wallet = ToApp(create_app(rt))
    bank_settings = BankSettings(
        _env_file=None, var_dir=folder / "bank-var", secret_key="paths-bank", staff_token=STAFF
    )
    rt.settings.bank_issuer = bank_settings.issuer
    bank_rt = build_bank_runtime(
        bank_settings,
        clock=clock,
        senders=senders,
        webhook_transport=to_wallet,
        database_url=bank_url,
    )
    upgrade_bank(bank_rt.db.engine)
    with bank_rt.db.unit_of_work() as session:
        bank = core.create_bank(
            session,
            code=OAUTH_BANK,
            name="みずほ銀行",
            name_kana="ミズホ",
            config=BankConfig(auth_profile=AuthProfile.OAUTH),
        )
        home = zengin.branch(OAUTH_BANK, zengin.home_branch(OAUTH_BANK))
        core.add_branch(session, bank, code=home.code, name=home.name)
        _, secret = core.register_client(
            session,
            client_id=CLIENT_ID,
            name="kouza",
            webhook_url=f"{WALLET_URL}/v1/banks/webhooks",
        )
    to_bank = ToApp(create_bank_app(bank_rt))
    bank_api = httpx.Client(base_url=BANK_URL, transport=to_bank)
    rt.bank_client = BankClient(
        bank_api, client_id=CLIENT_ID, client_secret=secret, signer=Signer(rt)
    )
    registered = bank_api.put(
        f"/v1/counter/operators/{CLIENT_ID}/oauth-registration",
        json={"redirect_uris": [REDIRECT_URI], "jwks": client_jwks(rt)},
        headers={"Authorization": f"Bearer {STAFF}"},
    )
    assert registered.status_code == 201, registered.text
    to_pages = ToApp(create_bank_app(bank_rt))
    browser = httpx.Client(base_url=bank_settings.issuer, transport=to_pages)
    customers = [_customer(rt, bank_rt, mailbox, index, home.code) for index in range(count)]
    with rt.db.unit_of_work() as session:
        merchant = wallets.create_merchant(
            session, name="コンビニ", category=MerchantCategory.CONVENIENCE_STORE
        )
        qr = wallets.merchant_qr(session, merchant_id=merchant.id)
        _, operator_token = controls.create_operator(
            session, name="paths", role=OperatorRole.ANALYST, actor="benchmark"
        )
    # established customers: linking within three days of opening a wallet asks for a step-up
    clock.advance(timedelta(days=4))
    # the floor's copy: both databases as they stand before the measured operations
    rt.db.dispose()
    bank_rt.db.dispose()
    floor_urls = {
        "wallet": databases.copy("wallet", wallet_url),
        "bank": databases.copy("bank", bank_url),
    }
    meters = {"wallet": Meter(rt.db.engine), "bank": Meter(bank_rt.db.engine)}
    bench = Bench(
        rt,
        bank_rt,
        clock,
        mailbox,
        httpx.Client(base_url=WALLET_URL, transport=to_wallet),
        browser,
        to_wallet,
        to_bank,
        to_pages,
        meters,
        customers,
        qr,
        operator_token,
        floor_urls,
    )
    if postgres is not None:
        bench.cleanup.append(databases.drop)
    return bench


def _customer(
    rt: Runtime, bank_rt: BankRuntime, mailbox: Mailbox, index: int, branch: str
) -> Customer:
    """A customer verified by e-mail, phone (with a device key) and eKYC, with a wallet; and
    their account at the bank with internet banking and a TOTP token, not linked yet."""
    email = f"customer{index}@paths.example.jp"
    national = f"0907{index:07d}"
    born = date(1970, 1, 1) + timedelta(days=37 * index)
    key = ECKey.generate_key("P-256")
    ip = f"198.51.{index % 250}.{index // 250 + 10}"
    with rt.db.unit_of_work() as session:
        identity.signup(session, email=email, password=PASSWORD)
    with rt.db.unit_of_work() as session:
        user = identity.verify_email(session, email=email, code=mailbox.code(email))
    with rt.db.unit_of_work() as session:
        user = session.get_one(User, user.id)
        challenge = identity.start_phone_verification(session, user, phone=national, ip=ip)
    with rt.db.unit_of_work() as session:
        user = session.get_one(User, user.id)
        device = identity.complete_phone_verification(
            session,
            user,
            challenge_id=challenge.id,
            code=mailbox.code("+81" + national[1:]),
            device_jwk=dict(key.as_dict(private=False)),
            device_name="phone",
        )
    now = rt.now()
    with rt.db.unit_of_work() as session:
        user = session.get_one(User, user.id)
        check = EkycVerification(
            user_id=user.id,
            method="jpki",
            ok=True,
            failure=None,
            message="ok",
            certificate_der=b"benchmark",
            signature=b"benchmark",
            nonce=uuid.uuid4().hex,
            declared_kana="サトウ ハナコ",
            checked_at=now,
        )
        session.add(check)
        session.flush()
        session.add(
            VerifiedIdentity(
                user_id=user.id,
                verification_id=check.id,
                name="佐藤　花子",
                kana_name="サトウ ハナコ",
                address="東京都千代田区1-1",
                birth_date=born,
                verified_at=now,
            )
        )
        session.flush()
        promote(session, user)
        wallet = wallets.open_wallet(session, user=user, ip=ip)
    number = f"{7000000 + index:07d}"
    with bank_rt.db.unit_of_work() as session:
        bank = core.bank(session, OAUTH_BANK)
        holder = core.add_customer(
            session,
            bank,
            CustomerData(
                name_kanji="佐藤 花子",
                name_kana="ｻﾄｳ ﾊﾅｺ",
                birth_date=born,
                address="東京都千代田区1-1",
                phone="+81" + national[1:],
                email=f"holder{index}@paths.example.jp",
            ),
            internet_banking_password=IB_PASSWORD,
        )
        _, seed = core.add_otp_device(session, holder, label="token")
        core.open_account(
            session,
            holder,
            branch=core.branch(session, bank, branch),
            account_type=AccountType.ORDINARY,
            number=number,
            pin="2020",
            balance=1_000_000,
        )
    return Customer(index, user.id, wallet.id, email, device.id, key, number, pyotp.TOTP(seed), ip)


# --- the operations ----------------------------------------------------------------------------


@dataclass
class Sample:
    statements: int
    transactions: int
    commits: int
    round_trips: int
    pages: int
    cpu_ms: float
    wall_s: float


class Driver:
    """The customer's app against the wallet's API, one measured operation at a time."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.samples: dict[str, list[Sample]] = {name: [] for name in OPERATIONS}
        self.serial = 0

    @contextmanager
    def measure(self, operation: str) -> Iterator[None]:
        self.serial += 1
        tag = f"{operation}#{self.serial}"
        meters = self.bench.meters.values()
        for meter in meters:
            meter.tag = tag
        before = [meter.counts() for meter in meters]
        trips, pages = self.bench.to_bank.requests, self.bench.to_pages.requests
        cpu, wall = time.process_time(), time.perf_counter()
        yield
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        after = [meter.counts() for meter in meters]
        for meter in meters:
            meter.tag = None
        delta = [sum(a[i] - b[i] for a, b in zip(after, before, strict=True)) for i in range(3)]
        self.samples[operation].append(
            Sample(
                delta[0],
                delta[1],
                delta[2],
                self.bench.to_bank.requests - trips,
                self.bench.to_pages.requests - pages,
                1000 * cpu,
                wall,
            )
        )

    def post(
        self, path: str, body: Any, *, token: str = "", key: str = "", ok: int = 201, ip: str = ""
    ) -> Any:
        self.bench.to_wallet.asgi.client = (ip or "203.0.113.7", 50000)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if key:
            headers["Idempotency-Key"] = key
        answer = self.bench.wallet.post(path, json=body, headers=headers)
        if answer.status_code != ok:
            raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text}")
        return answer.json()

    def signed(self, customer: Customer, action: str) -> dict[str, str]:
        """The app asks for a challenge (measured as its own operation) and signs it."""
        with self.measure("device challenge"):
            nonce = self.post(
                f"/v1/devices/{customer.device_id}/challenges",
                {"action": action},
                token=customer.token,
                ip=customer.ip,
            )["nonce"]
        payload = signing_payload(
            nonce=nonce, action=action, device_id=customer.device_id, user_id=customer.user_id
        )
        signature = jws.serialize_compact(
            {"alg": "ES256"}, json.dumps(payload).encode(), customer.key, algorithms=["ES256"]
        )
        return {"device_id": str(customer.device_id), "nonce": nonce, "signature": signature}

    def sign_up(self, index: int) -> None:
        email = f"new{self.serial}-{index}@paths.example.jp"
        with self.measure("sign-up"):
            self.post("/v1/auth/signup", {"email": email, "password": PASSWORD}, ok=202)
            code = self.bench.mailbox.code(email)
            self.post("/v1/auth/verify-email", {"email": email, "code": code}, ok=200)

    def login(self, customer: Customer) -> None:
        with self.measure("login"):
            answer = self.post(
                "/v1/auth/login",
                {"email": customer.email, "password": PASSWORD},
                ok=200,
                ip=customer.ip,
            )
        customer.token = answer["access_token"]

    def link(self, customer: Customer) -> None:
        wallet = f"/v1/wallets/{customer.wallet_id}/bank-links/oauth"
        proof = self.signed(customer, "bank.link")
        browser = self.bench.browser
        browser.cookies.clear()
        base = f"/v1/banks/{OAUTH_BANK}/oauth/authorize"
        with self.measure("link via OAuth"):
            started = self.post(wallet, {"bank_code": OAUTH_BANK} | proof, token=customer.token)
            page = browser.get(started["authorization_url"])
            otp_page = browser.post(
                f"{base}/login",
                data={
                    "csrf_token": _csrf(page.text),
                    "branch_code": zengin.home_branch(OAUTH_BANK),
                    "account_number": customer.account_number,
                    "password": IB_PASSWORD,
                },
            )
            consent = browser.post(
                f"{base}/otp",
                data={
                    "csrf_token": _csrf(otp_page.text),
                    "otp": customer.totp.at(self.bench.clock.now()),
                },
            )
            answer = browser.post(
                f"{base}/consent",
                data={"csrf_token": _csrf(consent.text), "decision": "approve"},
            )
            if answer.status_code != 303:
                raise RuntimeError(f"consent: {answer.status_code} {answer.text[:300]}")
            query = parse_qs(urlsplit(answer.headers["location"]).query)
            linked = self.post(
                f"{wallet}/callback",
                {name: values[0] for name, values in query.items()}
                | {"device_id": str(customer.device_id)},
                token=customer.token,
                ip=customer.ip,
            )
        customer.link_id = linked["id"]

    def move(self, customer: Customer, operation: str, amount: int) -> None:
        top_up = operation == "top-up"
        proof = self.signed(customer, "charge" if top_up else "withdraw")
        path = f"/v1/wallets/{customer.wallet_id}/{'topups' if top_up else 'withdrawals'}"
        with self.measure(operation):
            answer = self.post(
                path,
                {"link_id": customer.link_id, "amount": amount} | proof,
                token=customer.token,
                ip=customer.ip,
                key=uuid.uuid4().hex,
            )
        if answer["status"] != "posted":
            raise RuntimeError(f"{operation}: {answer}")

    def pay(self, customer: Customer, amount: int) -> None:
        with self.measure("QR payment"):
            self.post(
                f"/v1/wallets/{customer.wallet_id}/payments",
                {"qr": self.bench.qr, "amount": amount},
                token=customer.token,
                ip=customer.ip,
                key=uuid.uuid4().hex,
            )

    def transfer(self, customer: Customer, to: Customer, amount: int) -> None:
        proof = self.signed(customer, "transfer")
        with self.measure("transfer"):
            self.post(
                f"/v1/wallets/{customer.wallet_id}/transfers",
                {"to_wallet_id": str(to.wallet_id), "amount": amount} | proof,
                token=customer.token,
                ip=customer.ip,
                key=uuid.uuid4().hex,
            )

    def assess(self, customer: Customer, amount: int) -> None:
        with self.measure("risk assess"):
            self.post(
                "/v1/ops/risk/assess",
                {
                    "type": "payment",
                    "at": self.bench.clock.now().isoformat(),
                    "wallet": str(customer.wallet_id),
                    "user": str(customer.user_id),
                    "device": str(customer.device_id),
                    "ip": "203.0.113.7",
                    "merchant": "m-1",
                    "category": "convenience_store",
                    "amount": amount,
                },
                token=self.bench.operator_token,
                ok=200,
            )


def _csrf(page: str) -> str:
    found = CSRF.search(page)
    if found is None:
        raise RuntimeError(f"no CSRF token on the bank's page: {page[:300]}")
    return found.group(1)


def drive(bench: Bench, *, trace: bool = False) -> Driver:
    """Every operation once per customer, in the order a customer's first day takes them."""
    driver = Driver(bench)
    customers = bench.customers
    for meter in bench.meters.values():
        meter.capturing = True
        meter.trace = [] if trace else None
    for customer in customers:
        driver.sign_up(customer.index)
        driver.login(customer)
        driver.link(customer)
        bench.clock.advance(timedelta(seconds=30))
    for customer in customers:
        driver.move(customer, "top-up", 20_000)
        driver.pay(customer, 1_000)
        bench.clock.advance(timedelta(seconds=30))
    for position, customer in enumerate(customers):
        driver.transfer(customer, customers[(position + 1) % len(customers)], 500)
        driver.move(customer, "withdrawal", 2_000)
        driver.assess(customer, 1_000)
        bench.clock.advance(timedelta(seconds=30))
    for meter in bench.meters.values():
        meter.capturing = False
    return driver


# --- the floor ---------------------------------------------------------------------------------


def replay(url: str, committed: list[Committed]) -> tuple[dict[str, float], int]:
    """Replay the writes on the copy at ``url``: each measured operation's in one transaction
    (timed), the others' as they were. Returns seconds per tag and how many writes touched a
    different number of rows than the original did."""
    engine = create_engine(url)
    raw = engine.raw_connection()
    sqlite = url.startswith("sqlite")
    if sqlite:
        raw.driver_connection.isolation_level = None  # type: ignore[union-attr]
        raw.cursor().execute("PRAGMA foreign_keys=ON")
        raw.cursor().execute("PRAGMA journal_mode=WAL")
        raw.cursor().execute("PRAGMA synchronous=NORMAL")
    groups: list[tuple[str | None, list[Written]]] = []
    for transaction in committed:
        if transaction.tag is not None and groups and groups[-1][0] == transaction.tag:
            groups[-1][1].extend(transaction.writes)
        else:
            groups.append((transaction.tag, list(transaction.writes)))
    seconds: dict[str, float] = {}
    mismatches = 0
    cursor = raw.cursor()
    for tag, writes in groups:
        started = time.perf_counter()
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        for written in writes:
            if written.many:
                cursor.executemany(written.statement, written.parameters)
            else:
                cursor.execute(written.statement, written.parameters)
            if cursor.description is not None:
                cursor.fetchall()
            if written.rowcount >= 0 and cursor.rowcount != written.rowcount:
                mismatches += 1
        if sqlite:
            cursor.execute("COMMIT")
        else:
            raw.commit()
        if tag is not None:
            seconds[tag] = seconds.get(tag, 0.0) + time.perf_counter() - started
    raw.close()
    engine.dispose()
    return seconds, mismatches


def floor(bench: Bench) -> tuple[dict[str, list[float]], int]:
    """Seconds of plain SQL per operation (wallet + bank), by operation name."""
    total: dict[str, float] = {}
    mismatches = 0
    for name, meter in bench.meters.items():
        seconds, missed = replay(bench.floor_urls[name], meter.committed)
        mismatches += missed
        for tag, spent in seconds.items():
            total[tag] = total.get(tag, 0.0) + spent
    by_operation: dict[str, list[float]] = {}
    for tag, spent in total.items():
        by_operation.setdefault(tag.rpartition("#")[0], []).append(spent)
    return by_operation, mismatches


# --- figures -----------------------------------------------------------------------------------


def one_run(count: int, postgres: str | None, *, trace: str = "") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kouza-paths-") as folder:
        bench = build(Path(folder), count, postgres)
        try:
            driver = drive(bench, trace=bool(trace))
            if trace:
                _print_trace(bench, trace)
            floors, mismatches = floor(bench)
        finally:
            bench.close()
    figures: dict[str, Any] = {}
    for operation in OPERATIONS:
        samples = driver.samples[operation]
        floor_s = statistics.median(floors.get(operation, [0.0])) if operation in floors else 0.0
        wall = statistics.median(s.wall_s for s in samples)
        figures[operation] = {
            "count": len(samples),
            "statements": statistics.median(s.statements for s in samples),
            "transactions": statistics.median(s.transactions for s in samples),
            "commits": statistics.median(s.commits for s in samples),
            "round_trips": statistics.median(s.round_trips for s in samples),
            "browser_requests": statistics.median(s.pages for s in samples),
            "cpu_ms": statistics.median(s.cpu_ms for s in samples),
            "ops_per_s": 1 / wall,
            "floor_ops_per_s": 1 / floor_s if floor_s else None,
            "share_of_floor": (floor_s / wall) if floor_s else None,
        }
    return {"operations": figures, "floor_mismatches": mismatches}


def _print_trace(bench: Bench, operation: str) -> None:
    """The statements of the last ``operation`` of the run, database by database, in order."""
    for name, meter in bench.meters.items():
        assert meter.trace is not None
        tags = [tag for tag, _ in meter.trace if tag.rpartition("#")[0] == operation]
        if not tags:
            continue
        print(f"-- {name}", file=sys.stderr)
        for tag, statement in meter.trace:
            if tag == tags[-1]:
                print(f"   {statement[:200]}", file=sys.stderr)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for operation in OPERATIONS:
        merged: dict[str, Any] = {}
        for name in runs[0]["operations"][operation]:
            values = [run["operations"][operation][name] for run in runs]
            if any(value is None for value in values):
                merged[name] = None
                continue
            value = statistics.median(values)
            merged[name] = round(value, 3) if isinstance(value, float) else value
        target = TARGETS.get(operation, {})
        merged["targets"] = target
        share = merged["share_of_floor"]
        merged["targets_met"] = (
            None  # nothing written: no floor to compare with
            if share is None and not target
            else all(merged[name] <= limit for name, limit in target.items())
            and (share is None or share >= TARGET_SHARE)
        )
        result[operation] = merged
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--customers", type=int, default=8, help="operations of each kind per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("KOUZA_BENCH_POSTGRES_URL"),
        help="a PostgreSQL server URL (two databases of the run's own are made on it)",
    )
    parser.add_argument(
        "--statements",
        metavar="OPERATION",
        default="",
        choices=["", *OPERATIONS],
        help="also print (on stderr) the SQL statements of one such operation of the first run",
    )
    args = parser.parse_args()
    if args.customers < 2 or args.runs < 1:
        parser.error("--customers must be at least 2 and --runs at least 1")
    console = Console(stderr=True)
    runs = []
    for number in range(args.runs):
        if not args.json:
            console.print(f"run {number + 1}/{args.runs} …")
        trace = args.statements if number == 0 else ""
        runs.append(one_run(args.customers, args.postgres, trace=trace))
    figures = {
        "database": "postgresql" if args.postgres else "sqlite",
        "bank_database": "postgresql (a database of its own)" if args.postgres else "sqlite",
        "runs": args.runs,
        "operations_per_run": args.customers,
        "floor_mismatches": sum(run["floor_mismatches"] for run in runs),
        "target_share_of_floor": TARGET_SHARE,
        "operations": median_of(runs),
    }
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
        return
    table = Table(
        "operation",
        "stmts",
        "tx",
        "commits",
        "bank trips",
        "CPU ms",
        "ops/s",
        "floor/s",
        "share",
        "targets",
        title=f"per-operation costs on {figures['database']} (median of {args.runs} runs, "
        f"{args.customers} each)",
    )
    for operation, row in figures["operations"].items():
        trips = f"{row['round_trips']:g}"
        if row["browser_requests"]:
            trips += f" (+{row['browser_requests']:g} browser)"
        target = ", ".join(f"{name[:2]} ≤ {limit:g}" for name, limit in row["targets"].items())
        share = row["share_of_floor"]
        table.add_row(
            operation,
            f"{row['statements']:g}",
            f"{row['transactions']:g}",
            f"{row['commits']:g}",
            trips,
            f"{row['cpu_ms']:.2f}",
            f"{row['ops_per_s']:,.0f}",
            f"{row['floor_ops_per_s']:,.0f}" if row["floor_ops_per_s"] else "—",
            f"{100 * share:.1f} %" if share is not None else "—",
            (f"{target}, " if target else "")
            + "share ≥ 25 %: "
            + {True: "[green]met[/]", False: "[red]not met[/]", None: "no writes"}[
                row["targets_met"]
            ],
        )
    out = Console(width=max(Console().width, 150))
    out.print(table)
    out.print("tx: transactions (st: statements) over both databases; share: ops/s ÷ floor/s")
    if figures["floor_mismatches"]:
        out.print(f"[red]{figures['floor_mismatches']} replayed writes touched other rows[/]")


if __name__ == "__main__":
    main()
