"""The runtime: what a unit of work needs besides its SQL.

A runtime bundles settings, the clock, the database, the outward senders and the server secret.
The database stamps it into every session's ``info``, so a service that receives a ``Session``
can reach the right clock and settings (``kouza.runtime.runtime_of``) — which is how the
simulator runs several isolated kouza instances, each on its own database and simulated clock,
in one process, and how tests inject a :class:`~kouza.kit.clock.ManualClock`.

:class:`BaseRuntime` is the part both systems share: the wallet's ``kouza.runtime.Runtime``
and the bank's ``kouza.bank.runtime.BankRuntime`` differ only in their settings and in the
session key they are stamped under, so a bank unit of work can never reach the wallet's runtime
or the reverse. The wallet's typed collaborators (limits, eKYC, bank client, risk engine,
hooks) are fields of ``kouza.assembly.KouzaRuntime``, the composition root: kit names no
business object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.orm import Session

from kouza.kit.clock import Clock, SystemClock
from kouza.kit.db import Database, make_engine
from kouza.kit.metrics import Metrics
from kouza.kit.notify import Sender
from kouza.kit.settings import BaseServiceSettings
from kouza.kit.tracing import instrument_engine

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
    metrics: Metrics = field(default_factory=Metrics)
    """What this system counts (each system declares its counters on a subclass)."""

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
        instrument_engine(self.db.engine)  # a span per statement when this process traces


def runtime_in(session: Session, key: str = BaseRuntime.SESSION_KEY) -> BaseRuntime[Any]:
    """The runtime stamped into ``session`` under ``key`` (either system's: kit code such as
    the outbox needs only the clock, the database, the senders and the secret)."""
    runtime = session.info.get(key)
    if not isinstance(runtime, BaseRuntime):
        raise RuntimeError("session has no runtime; open it through the runtime's database")
    return runtime
