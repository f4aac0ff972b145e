"""The wallet's runtime: :class:`~kouza.kit.runtime.BaseRuntime` with the wallet's settings.

Every wallet-side service reaches its runtime from a session with :func:`runtime_of`, and every
wallet endpoint through :data:`RuntimeDep` / :data:`SessionDep`. It sits just above ``kit`` and
``kouza.config`` (the settings it carries) and below every domain; kit itself only knows the
generic base, so it names no wallet setting. The typed collaborators each domain needs (limits,
eKYC, bank client, risk engine, hooks) are fields of ``kouza.assembly.KouzaRuntime``, the
composition root, which extends :class:`Runtime`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from kouza.config import Settings
from kouza.kit.notify import FileMailbox, Sender, SmtpEndpoint, SmtpSender, smtp_ssl_context
from kouza.kit.runtime import BaseRuntime


@dataclass(eq=False)
class Runtime(BaseRuntime[Settings]):
    """The wallet's runtime as every domain sees it (``kouza.assembly`` extends it)."""


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
