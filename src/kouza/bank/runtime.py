"""The bank's runtime: settings, clock, database, holder-notice senders, webhook transport.

Like the wallet's runtime (``kouza.kit.runtime``) but its own type, so a bank unit of work can
never reach the wallet's database. The database stamps the runtime into each session's ``info``;
services get it back with :func:`bank_runtime_of`. Tests inject a ``ManualClock``, a
``MemoryMailbox`` and an ``httpx.MockTransport`` (or the wallet's ASGI app) for webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy.orm import Session

from kouza.bank.settings import BankSettings
from kouza.kit.clock import Clock, SystemClock
from kouza.kit.db import Database, make_engine
from kouza.kit.notify import FileMailbox, Sender
from kouza.kit.security import hash_password, random_digits


@dataclass
class BankRuntime:
    """Everything a bank unit of work may need beyond SQL."""

    settings: BankSettings
    db: Database = field(init=False)
    clock: Clock = field(default_factory=SystemClock)
    senders: dict[str, Sender] = field(default_factory=dict)
    webhook_transport: httpx.BaseTransport | None = None
    """Transport for webhook POSTs; None means real sockets."""
    secret: bytes = b""
    _dummy_pin_hash: str = field(default="", repr=False)

    def now(self) -> datetime:
        return self.clock.now()

    def sender(self, channel: str) -> Sender:
        """The sender for a notice channel (``email``, ``sms``, ``post``)."""
        try:
            return self.senders[channel]
        except KeyError:
            raise LookupError(f"no sender configured for channel {channel!r}") from None

    def dummy_pin_hash(self) -> str:
        """A PIN hash of a random PIN, verified against for unknown accounts (equal timing)."""
        if not self._dummy_pin_hash:
            self._dummy_pin_hash = hash_password(random_digits(4))
        return self._dummy_pin_hash

    def http_client(self) -> httpx.Client:
        """A client for outgoing webhooks, on the injected transport if any."""
        return httpx.Client(
            transport=self.webhook_transport, timeout=self.settings.webhook_timeout_seconds
        )


def bank_runtime_of(session: Session) -> BankRuntime:
    """The bank runtime bound to ``session``."""
    runtime = session.info.get("bank_runtime")
    if not isinstance(runtime, BankRuntime):
        raise RuntimeError("session has no bank runtime; open it through BankRuntime.db")
    return runtime


def build_bank_runtime(
    settings: BankSettings,
    *,
    clock: Clock | None = None,
    senders: dict[str, Sender] | None = None,
    webhook_transport: httpx.BaseTransport | None = None,
    database_url: str | None = None,
) -> BankRuntime:
    """A bank runtime with its database opened; development senders write under ``var/``."""
    runtime = BankRuntime(
        settings=settings, clock=clock or SystemClock(), webhook_transport=webhook_transport
    )
    runtime.secret = settings.resolved_secret_key()
    mail_dir = settings.var_dir / "bank-mailbox"
    runtime.senders = senders or {
        channel: FileMailbox(mail_dir / f"{channel}.jsonl") for channel in ("email", "sms", "post")
    }
    url = database_url or settings.resolved_database_url()
    runtime.db = Database(make_engine(url), info={"bank_runtime": runtime})
    from kouza.bank.outbox import deliver_after_commit  # avoid an import cycle

    runtime.db.after_commit_hooks.append(deliver_after_commit)
    return runtime
