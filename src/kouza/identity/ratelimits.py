"""Sliding-window rate limits stored in the database, so they hold across API processes.

Each counted event is a row (key hash, time). A limit of ``n`` per ``window`` refuses when ``n``
events of that key lie in ``(now - window, now]``; rows older than the window are deleted as the
key is used. Keys name a subject (phone number, IP address, user) and are stored as keyed
hashes: the table tells nobody which numbers or addresses asked for codes.

**Precision under concurrency.** Counting and then inserting is a check-then-insert race: two
requests could both see ``n - 1`` and both pass. So every key has a row in
``rate_limit_keys`` (created on first use, ``ON CONFLICT DO NOTHING``), and :func:`check` locks
the rows of all its keys (``SELECT … FOR UPDATE``, sorted, through :mod:`kouza.kit.locking`)
before counting. Requests on one key therefore count one after another, each seeing the hits
the previous ones committed (PostgreSQL's READ COMMITTED re-reads after the lock is granted);
SQLite serialises writers with ``BEGIN IMMEDIATE`` anyway. Proven with threads on PostgreSQL in
``tests/identity/test_concurrency.py``. A caller that must also read other state under the same
serialisation (the SMS resend throttle) does so after :func:`check` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kouza.identity.errors import RateLimited
from kouza.identity.models import RateLimitHit, RateLimitKey
from kouza.kit.locking import lock_rows
from kouza.kit.security import keyed_hash
from kouza.runtime import runtime_of


@dataclass(frozen=True)
class Limit:
    """At most ``count`` events per ``window`` for one subject of one scope."""

    scope: str
    subject: str
    count: int
    window: timedelta


def _key(session: Session, limit: Limit) -> str:
    runtime = runtime_of(session)
    return keyed_hash(runtime.secret, f"{limit.scope}\x00{limit.subject}", purpose="rate-limit")


def _lock_keys(session: Session, keys: list[str]) -> None:
    """Create the keys' rows if missing (never failing on a racing creator), then lock them."""
    rows = [{"key_hash": key, "created_at": runtime_of(session).now()} for key in sorted(set(keys))]
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(RateLimitKey).values(rows).on_conflict_do_nothing())
    lock_rows(session, RateLimitKey, keys)


def check(session: Session, limits: list[Limit]) -> None:
    """Refuse if any limit is reached, otherwise count one event against each."""
    if not limits:
        return
    refuse_if_reached(session, limits)
    record(session, limits)


def record(session: Session, limits: list[Limit]) -> None:
    """Count one event against each limit (after :func:`refuse_if_reached` locked the keys)."""
    now = runtime_of(session).now()
    session.add_all(RateLimitHit(key_hash=_key(session, limit), at=now) for limit in limits)
    session.flush()


def refuse_if_reached(session: Session, limits: list[Limit]) -> None:
    """Lock the limits' keys and refuse if any is reached, counting nothing (a caller that
    counts only failures calls :func:`record` once it knows the outcome)."""
    if not limits:
        return
    now = runtime_of(session).now()
    keys = [_key(session, limit) for limit in limits]
    _lock_keys(session, keys)
    for key, limit in zip(keys, limits, strict=True):
        since = now - limit.window
        session.execute(
            delete(RateLimitHit).where(RateLimitHit.key_hash == key, RateLimitHit.at <= since)
        )
        used, oldest = session.execute(
            select(func.count(), func.min(RateLimitHit.at)).where(RateLimitHit.key_hash == key)
        ).one()
        if used >= limit.count and oldest is not None:
            retry = max(1, int((oldest + limit.window - now).total_seconds()))
            raise RateLimited(
                f"too many requests for this {limit.scope}; try again in {retry} seconds",
                scope=limit.scope,
                retry_after=retry,
            )
