"""The bank's runtime: kit's runtime on bank settings, plus the webhook transport.

:class:`BankRuntime` is :class:`~kouza.kit.runtime.BaseRuntime` (settings, clock, database,
holder-notice senders, secret) parametrised by :class:`BankSettings` and stamped into each
session's ``info`` under its own key, so a bank unit of work can never reach the wallet's runtime
or database; services get it back with :func:`bank_runtime_of`. It is built in
:mod:`kouza.bank.assembly`. Tests inject a ``ManualClock``, a ``MemoryMailbox`` and an
``httpx.MockTransport`` (or the wallet's ASGI app) for webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import httpx
from sqlalchemy.orm import Session

from kouza.bank.settings import BankSettings
from kouza.kit.logs import carry_request_id
from kouza.kit.metrics import Metrics
from kouza.kit.runtime import BaseRuntime
from kouza.kit.security import hash_password, random_digits
from kouza.kit.tracing import instrument_http_client


class BankMetrics(Metrics):
    """The bank's counters beside the HTTP metrics (``docs/observability.md`` lists them)."""

    def __init__(self) -> None:
        super().__init__()
        self.legacy_link_attempts = self.counter(
            "kouza_bank_legacy_link_attempts",
            "Legacy-form link attempts that reached the checks, by bank code.",
            ("bank",),
        )
        self.legacy_link_refusals = self.counter(
            "kouza_bank_legacy_link_refusals",
            "Legacy-form link attempts refused, by bank code and the true reason (the operator "
            "is told only 'refused'): unknown_account, wrong_pin, name_mismatch, "
            "birth_date_mismatch, account_locked, source_blocked, already_linked.",
            ("bank", "reason"),
        )
        self.debits = self.counter(
            "kouza_bank_debits",
            "Debit requests under mandates, by outcome: executed, replayed (same key again), "
            "or refused with the error code.",
            ("outcome",),
        )
        self.debited_yen = self.counter(
            "kouza_bank_debited_yen", "Yen debited from holders' accounts under mandates."
        )


@dataclass(eq=False)
class BankRuntime(BaseRuntime[BankSettings]):
    """Everything a bank unit of work may need beyond SQL."""

    SESSION_KEY: ClassVar[str] = "bank_runtime"

    webhook_transport: httpx.BaseTransport | None = None
    """Transport for webhook POSTs; None means real sockets."""
    metrics: BankMetrics = field(default_factory=BankMetrics)
    _dummy_pin_hash: str = field(default="", repr=False)

    def dummy_pin_hash(self) -> str:
        """A PIN hash of a random PIN, verified against for unknown accounts (equal timing)."""
        if not self._dummy_pin_hash:
            self._dummy_pin_hash = hash_password(random_digits(4))
        return self._dummy_pin_hash

    def http_client(self) -> httpx.Client:
        """A client for outgoing webhooks, on the injected transport if any."""
        client = httpx.Client(
            transport=self.webhook_transport, timeout=self.settings.webhook_timeout_seconds
        )
        instrument_http_client(client)
        return carry_request_id(client)


def bank_runtime_of(session: Session) -> BankRuntime:
    """The bank runtime bound to ``session``."""
    runtime = session.info.get(BankRuntime.SESSION_KEY)
    if not isinstance(runtime, BankRuntime):
        raise RuntimeError("session has no bank runtime; open it through BankRuntime.db")
    return runtime
