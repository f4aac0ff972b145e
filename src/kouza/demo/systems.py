"""The demo's two systems: runtimes on SQLite files under one folder, served by uvicorn.

Layout of the folder (default ``./var/demo``)::

    wallet/     the wallet's var_dir: kouza.db, secret.key, bank-oauth-key.jwk, mailbox/*.jsonl
    bank/       the bank's var_dir: bank.db, its secret, bank-mailbox/*.jsonl
    devca/      the development CA that plays J-LIS (eKYC cards), CRLs in devca/crl
    demo.json   what the demo printed (logins and secrets; mode 0600)
    wallet.env  bank.env   the demo's settings as KOUZA_* / KOUZA_BANK_* lines, so that any
                `kouza` command can work on the demo (``set -a; . var/demo/wallet.env``)

Both runtimes share one :class:`DemoClock`: while the world is built it reads a pinned time that
the builder moves forward over the last days (so the console's charts have hours and days to
show), then it is released and reads the wall clock. Every time the builder pins is in the past
and never goes backwards, so what the servers stamp afterwards is later than anything built.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from kouza.api.app import create_app
from kouza.assembly import build_runtime
from kouza.bank.app import create_bank_app
from kouza.bank.assembly import build_bank_runtime
from kouza.bank.migrate import upgrade as upgrade_bank
from kouza.bank.runtime import BankRuntime
from kouza.bank.settings import BankSettings
from kouza.config import Settings
from kouza.identity.ekyc.devca import DevCertificateAuthority
from kouza.identity.ekyc.devca_store import DEFAULT_PASSPHRASE, DevCaStore
from kouza.kit.migrate import upgrade
from kouza.kit.notify import FileMailbox, Message
from kouza.runtime import Runtime

CA_BACKDATE = timedelta(days=30)
CLIENT_ID = "kouza-wallet"
"""The wallet operator's client id at the bank."""


class DemoError(Exception):
    """The demo cannot run as asked (production, a folder built for other URLs, a port in use)."""


class DemoClock:
    """A pinned time while the world is built, the wall clock once released; thread-safe."""

    def __init__(self) -> None:
        self._pinned: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._pinned or datetime.now(UTC)

    def pin(self, when: datetime) -> None:
        """Read ``when`` from now on: after the current time and not after the wall clock."""
        with self._lock:
            current = self._pinned or datetime.now(UTC)
            if when < current and self._pinned is not None:
                raise ValueError("the demo's clock does not go backwards")
            self._pinned = min(when, datetime.now(UTC))

    def release(self) -> None:
        """Follow the wall clock from now on."""
        with self._lock:
            self._pinned = None


class Tee:
    """A development mailbox file that also keeps the last message per recipient (the builder
    reads e-mail and SMS codes and the bank's notice references from it)."""

    def __init__(self, path: Path) -> None:
        self.file = FileMailbox(path)
        self.last: dict[str, Message] = {}
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        self.file.send(message)
        with self._lock:
            self.last[message.recipient] = message

    def last_to(self, recipient: str) -> Message:
        with self._lock:
            try:
                return self.last[recipient]
            except KeyError:
                raise DemoError(f"no message was sent to {recipient}") from None

    def code_for(self, recipient: str) -> str:
        """The six-digit code of the last message to ``recipient``."""
        found = re.search(r"\b(\d{6})\b", self.last_to(recipient).body)
        if found is None:
            raise DemoError(f"the last message to {recipient} has no code")
        return found.group(1)


@dataclass
class Systems:
    """The wallet and the bank of one demo folder, served at their URLs."""

    folder: Path
    wallet_url: str
    bank_url: str
    clock: DemoClock
    rt: Runtime
    bank_rt: BankRuntime
    wallet_mail: dict[str, Tee]
    bank_mail: dict[str, Tee]
    devca: DevCaStore
    servers: list[uvicorn.Server] = field(default_factory=list)

    @property
    def state_file(self) -> Path:
        return self.folder / "demo.json"


def refuse_production() -> None:
    """The demo prints passwords, PINs and TOTP seeds: never where KOUZA_ENV=production (in the
    environment or in ``.env``)."""
    if Settings().env == "production":
        raise DemoError(
            "KOUZA_ENV=production: the demo prints passwords, PINs and TOTP seeds, so it runs "
            "only in development"
        )


def port_of(url: str) -> int:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise DemoError(f"{url!r} is not an http://HOST:PORT URL")
    return parts.port


def prepare_devca(folder: Path, now: datetime) -> DevCaStore:
    """The development CA of the demo (created once, dated a month back so that the days the
    builder replays fall inside its validity), with CRLs fresh at ``now``."""
    store = DevCaStore(folder / "devca", DEFAULT_PASSPHRASE)
    if not store.exists():
        store.create(DevCertificateAuthority.create(now=now - CA_BACKDATE))
    store.write_crls(store.load(), now=now)
    return store


def wallet_settings(folder: Path, wallet_url: str, bank_url: str, devca: DevCaStore) -> Settings:
    """The wallet's settings: the environment's, with the demo's folder, bank and eKYC trust."""
    return Settings(
        _env_file=None,
        env="development",
        var_dir=folder / "wallet",
        database_url="",
        bank_api_url=bank_url,
        bank_client_id=CLIENT_ID,
        bank_client_auth="private_key_jwt",
        bank_oauth_key_file="",
        bank_issuer=bank_url,  # the bank's public URL: OAuth metadata, PAR, DPoP ``htu``
        bank_oauth_redirect_uri=f"{wallet_url}/app/bank-callback",
        ekyc_jpki_root_certificates=[devca.directory / "root.cert.pem"],
        ekyc_revocation="crl",
        ekyc_revocation_url=f"file:{(devca.directory / 'crl').resolve()}",
    )


def write_env_files(folder: Path, settings: Settings, bank_settings: BankSettings) -> None:
    """``wallet.env`` and ``bank.env``: the settings a ``kouza`` command needs to work on the
    demo's systems (its folders, the bank's URL and issuer, the eKYC trust)."""
    wallet = {
        "KOUZA_VAR_DIR": settings.var_dir.resolve(),
        "KOUZA_BANK_API_URL": settings.bank_api_url,
        "KOUZA_BANK_ISSUER": settings.bank_issuer,
        "KOUZA_BANK_OAUTH_REDIRECT_URI": settings.bank_oauth_redirect_uri,
        "KOUZA_EKYC_JPKI_ROOT_CERTIFICATES": json.dumps(
            [str(path.resolve()) for path in settings.ekyc_jpki_root_certificates]
        ),
        "KOUZA_EKYC_REVOCATION": settings.ekyc_revocation,
        "KOUZA_EKYC_REVOCATION_URL": settings.ekyc_revocation_url,
    }
    bank = {
        "KOUZA_BANK_VAR_DIR": bank_settings.var_dir.resolve(),
        "KOUZA_BANK_ISSUER": bank_settings.issuer,
    }
    for name, values in (("wallet.env", wallet), ("bank.env", bank)):
        lines = [f"{key}={shlex.quote(str(value))}" for key, value in values.items()]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _mailboxes(folder: Path, channels: tuple[str, ...]) -> dict[str, Tee]:
    return {channel: Tee(folder / f"{channel}.jsonl") for channel in channels}


@contextmanager
def running(
    folder: Path, *, wallet_url: str, bank_url: str, host: str | None = None
) -> Iterator[Systems]:
    """Both systems on the demo folder's databases, served at their URLs until the block ends
    (bound to ``host``, by default the URLs' own host)."""
    refuse_production()
    folder.mkdir(parents=True, exist_ok=True)
    clock = DemoClock()
    devca = prepare_devca(folder, clock.now())
    bank_settings = BankSettings(
        _env_file=None, var_dir=folder / "bank", database_url="", issuer=bank_url
    )
    bank_mail = _mailboxes(bank_settings.var_dir / "bank-mailbox", ("email", "sms", "post"))
    bank_rt = build_bank_runtime(bank_settings, clock=clock, senders=dict(bank_mail))
    settings = wallet_settings(folder, wallet_url, bank_url, devca)
    wallet_mail = _mailboxes(settings.var_dir / "mailbox", ("email", "sms"))
    rt = build_runtime(settings, clock=clock, senders=dict(wallet_mail))
    write_env_files(folder, settings, bank_settings)
    upgrade_bank(bank_rt.db.engine)
    upgrade(rt.db.engine)
    systems = Systems(
        folder, wallet_url, bank_url, clock, rt, bank_rt, wallet_mail, bank_mail, devca
    )
    try:
        with ExitStack() as stack:
            for app, url in ((create_bank_app(bank_rt), bank_url), (create_app(rt), wallet_url)):
                bind = host or urlsplit(url).hostname or "127.0.0.1"
                systems.servers.append(
                    stack.enter_context(serve(app, host=bind, port=port_of(url)))
                )
            yield systems
    finally:
        rt.db.dispose()
        bank_rt.db.dispose()


@contextmanager
def serve(app: Any, *, host: str, port: int) -> Iterator[uvicorn.Server]:
    """``app`` served by uvicorn on ``host:port`` in a thread of this process until the block
    ends (our logging: no uvicorn access lines with raw paths)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise DemoError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"demo-uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise DemoError(f"the server on {host}:{port} did not start")
        time.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)
