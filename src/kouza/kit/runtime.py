"""The runtime: what a unit of work needs besides its SQL.

A :class:`Runtime` bundles settings, the clock, the database and the outward providers (e-mail,
SMS, bank transport, …). The database stamps it into every session's ``info``, so a service that
receives a ``Session`` can reach the right clock and settings with :func:`runtime_of` — which is
how the simulator runs several isolated kouza instances, each on its own database and simulated
clock, in one process, and how tests inject a :class:`~kouza.kit.clock.ManualClock`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from kouza.kit.clock import Clock, SystemClock
from kouza.kit.db import Database, make_engine
from kouza.kit.notify import (
    FileMailbox,
    Sender,
    SmtpEndpoint,
    SmtpSender,
    require_production_senders,
    smtp_ssl_context,
)

if TYPE_CHECKING:
    from kouza.config import Settings


@dataclass
class Runtime:
    """Everything a unit of work may need beyond SQL."""

    settings: Settings
    db: Database = field(init=False)
    clock: Clock = field(default_factory=SystemClock)
    senders: dict[str, Sender] = field(default_factory=dict)
    providers: dict[str, Any] = field(default_factory=dict)
    secret: bytes = b""

    def now(self) -> datetime:
        return self.clock.now()

    def sender(self, channel: str) -> Sender:
        """The sender for ``channel`` (``"email"``, ``"sms"``)."""
        try:
            return self.senders[channel]
        except KeyError:
            raise LookupError(f"no sender configured for channel {channel!r}") from None


def runtime_of(session: Session) -> Runtime:
    """The runtime bound to ``session``."""
    runtime = session.info.get("runtime")
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


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    senders: dict[str, Sender] | None = None,
    database_url: str | None = None,
) -> Runtime:
    """A runtime with its database opened and development senders as defaults; the SMS gateway
    and the eKYC trust configuration come from settings (:mod:`kouza.identity.providers`)."""
    runtime = Runtime(settings=settings, clock=clock or SystemClock())
    runtime.secret = settings.resolved_secret_key()
    runtime.senders = dict(senders or {})
    if "email" not in runtime.senders:
        runtime.senders["email"] = build_email_sender(settings)
    if "sms" not in runtime.senders:
        runtime.senders["sms"] = FileMailbox(settings.var_dir / "mailbox" / "sms.jsonl")
    url = database_url or settings.resolved_database_url()
    runtime.db = Database(make_engine(url), info={"runtime": runtime})
    from kouza.identity import providers as identity_providers  # settings → SMS gateway, eKYC

    identity_providers.configure(runtime, sms_sender_given=bool(senders and "sms" in senders))
    if settings.env == "production":
        require_production_senders(runtime.senders)
    from kouza.kit.outbox import deliver_after_commit  # avoid an import cycle

    runtime.db.after_commit_hooks.append(deliver_after_commit)
    return runtime
