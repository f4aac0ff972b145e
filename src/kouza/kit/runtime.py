"""The runtime: what a unit of work needs besides its SQL.

A runtime bundles settings, the clock, the database, the outward senders and the server secret.
The database stamps it into every session's ``info``, so a service that receives a ``Session``
can reach the right clock and settings with :func:`runtime_of` — which is how the simulator runs
several isolated kouza instances, each on its own database and simulated clock, in one process,
and how tests inject a :class:`~kouza.kit.clock.ManualClock`.

:class:`BaseRuntime` is the part both systems share: the wallet's :class:`Runtime` and the bank's
``kouza.bank.runtime.BankRuntime`` differ only in their settings and in the session key they are
stamped under, so a bank unit of work can never reach the wallet's runtime or the reverse. The
wallet's typed collaborators (limits, eKYC, bank client, risk engine, hooks) are fields of
``kouza.assembly.KouzaRuntime``, the composition root: kit names no business object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from sqlalchemy.orm import Session

from kouza.kit.clock import Clock, SystemClock
from kouza.kit.db import Database, make_engine
from kouza.kit.notify import FileMailbox, Sender, SmtpEndpoint, SmtpSender, smtp_ssl_context
from kouza.kit.settings import BaseServiceSettings

if TYPE_CHECKING:
    from kouza.config import Settings

SettingsT = TypeVar("SettingsT", bound=BaseServiceSettings)


@dataclass(eq=False)
class BaseRuntime(Generic[SettingsT]):
    """Everything a unit of work may need beyond SQL, for either system."""

    SESSION_KEY: ClassVar[str] = "runtime"
    """Under which key of ``Session.info`` the database stamps this runtime."""

    settings: SettingsT
    db: Database = field(init=False)
    clock: Clock = field(default_factory=SystemClock)
    senders: dict[str, Sender] = field(default_factory=dict)
    secret: bytes = b""

    def now(self) -> datetime:
        return self.clock.now()

    def sender(self, channel: str) -> Sender:
        """The sender for ``channel`` (``"email"``, ``"sms"``, the bank's ``"post"``)."""
        try:
            return self.senders[channel]
        except KeyError:
            raise LookupError(f"no sender configured for channel {channel!r}") from None

    def open_database(
        self, url: str, *, after_commit: Sequence[Callable[[Session], None]] = ()
    ) -> None:
        """Open this runtime's database at ``url``: every session it makes carries the runtime
        under :attr:`SESSION_KEY`, and ``after_commit`` hooks run after each commit."""
        self.db = Database(make_engine(url), info={self.SESSION_KEY: self})
        self.db.after_commit_hooks.extend(after_commit)


@dataclass(eq=False)
class Runtime(BaseRuntime["Settings"]):
    """The wallet's runtime as kit and every domain see it (``kouza.assembly`` extends it)."""


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
