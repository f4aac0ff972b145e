"""The wallet's runtime: :class:`~kouza.kit.runtime.BaseRuntime` with the wallet's settings.

Every wallet-side service reaches its runtime from a session with :func:`runtime_of`, and every
wallet endpoint through :data:`RuntimeDep` / :data:`SessionDep`. It sits just above ``kit`` and
``kouza.config`` (the settings it carries) and below every domain; kit itself only knows the
generic base, so it names no wallet setting. The typed collaborators each domain needs (limits,
eKYC, bank client, risk engine, hooks) are fields of ``kouza.assembly.KouzaRuntime``, the
composition root, which extends :class:`Runtime`. :class:`WalletMetrics` is what the wallet
counts for its operators and fraud desk; domains count through it (``runtime_of(session).metrics``)
and never import Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from kouza.config import Settings
from kouza.kit import zengin
from kouza.kit.metrics import Metrics
from kouza.kit.notify import FileMailbox, Sender, SmtpEndpoint, SmtpSender, smtp_ssl_context
from kouza.kit.runtime import BaseRuntime

OTHER_BANK = "other"
"""The ``bank`` label of a code that is not in the Zengin list (callers type bank codes)."""


class WalletMetrics(Metrics):
    """The wallet's counters beside the HTTP metrics (``docs/observability.md`` lists them);
    the gauges read at scrape time are registered by the app (``kouza.ops.watch``)."""

    def __init__(self) -> None:
        super().__init__()
        self.link_attempts = self.counter(
            "kouza_link_attempts",
            "Bank link attempts (a legacy form submitted, an OAuth flow started), by bank code "
            "and method.",
            ("bank", "method"),
        )
        self.link_refusals = self.counter(
            "kouza_link_refusals",
            "Bank link attempts refused (by kouza's policy, its risk engine or the bank), by "
            "bank code, method and reason (the error code).",
            ("bank", "method", "reason"),
        )
        self.links_created = self.counter(
            "kouza_links_created",
            "Bank links created, by bank code and method.",
            ("bank", "method"),
        )
        self.topups = self.counter(
            "kouza_topups",
            "Top-ups from linked bank accounts by bank code and outcome: posted (in the "
            "wallet), held (the bank paid, the money waits for an operator's review), refused, "
            "unknown (no answer from the bank; reconciliation settles it).",
            ("bank", "outcome"),
        )
        self.withdrawals = self.counter(
            "kouza_withdrawals",
            "Withdrawals to linked bank accounts, by bank code and outcome (posted, refused, "
            "unknown).",
            ("bank", "outcome"),
        )
        self.risk_decisions = self.counter(
            "kouza_risk_decisions",
            "Risk decisions recorded, by event type and outcome (allow, step_up, review, "
            "block, lock).",
            ("event", "outcome"),
        )
        self.risk_rules_fired = self.counter(
            "kouza_risk_rules_fired",
            "Rules that fired in recorded decisions, by rule id, the rule's outcome, and "
            "whether it runs in shadow mode (counted, not enforced).",
            ("rule", "outcome", "shadow"),
        )

    @staticmethod
    def bank(code: str) -> str:
        """The ``bank`` label of a bank code: the code if the Zengin list has it (a bounded
        set), else :data:`OTHER_BANK`."""
        return code if zengin.find_bank(code) is not None else OTHER_BANK


@dataclass(eq=False)
class Runtime(BaseRuntime[Settings]):
    """The wallet's runtime as every domain sees it (``kouza.assembly`` extends it)."""

    metrics: WalletMetrics = field(default_factory=WalletMetrics)


def runtime_of(session: Session) -> Runtime:
    """The wallet runtime bound to ``session``."""
    runtime = session.info.get(Runtime.SESSION_KEY)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("session has no kouza runtime; open it through Runtime.db")
    return runtime


def build_email_sender(settings: Settings) -> Sender:
    """SMTP when ``KOUZA_SMTP_URL`` is set, else the development mailbox file."""
    url = settings.smtp_url.get_secret_value()
    if not url:
        return FileMailbox(settings.var_dir / "mailbox" / "email.jsonl")
    return SmtpSender(
        SmtpEndpoint.from_url(url),
        from_address=settings.smtp_from,
        ssl_context=smtp_ssl_context(settings.smtp_ca_file),
        timeout_seconds=settings.smtp_timeout_seconds,
    )


def get_runtime(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.db.unit_of_work() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
"""The request's unit of work, committed when the endpoint returns and *before* the response is
sent (``scope="function"``). FastAPI's default scope closes a dependency with ``yield`` only
after the response has gone out, so a client could hold a login token, or a 201 for a payment,
whose transaction had not committed yet — and use it on another worker before it existed, or
keep it although the commit then failed (found by ``benchmarks/load.py``: a fresh token
answered 401 on the next request)."""
