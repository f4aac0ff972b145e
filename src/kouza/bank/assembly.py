"""The bank's composition root: the one place a :class:`BankRuntime` is built.

It mirrors ``kouza.assembly`` on the wallet's side. Building lives here rather than in
:mod:`kouza.bank.runtime` because the runtime's after-commit hook is the outbox's delivery, and
the outbox needs the runtime: with the builder beside the runtime, the two modules imported each
other. Now the runtime imports nothing of the bank's services and this module sits above both.
"""

from __future__ import annotations

import httpx

from kouza.bank.outbox import deliver_after_commit
from kouza.bank.runtime import BankRuntime
from kouza.bank.settings import BankSettings
from kouza.kit.clock import Clock, SystemClock
from kouza.kit.notify import FileMailbox, Sender


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
    runtime.open_database(
        database_url or settings.resolved_database_url(), after_commit=[deliver_after_commit]
    )
    return runtime
