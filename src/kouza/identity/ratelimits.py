"""Sliding-window rate limits stored in the database, so they hold across API processes.

Each counted event is a row (key hash, time). A limit of ``n`` per ``window`` refuses when ``n``
events of that key lie in ``(now - window, now]``; rows older than the window are deleted as the
key is used. Keys name a subject (phone number, IP address, user) and are stored as keyed
hashes: the table tells nobody which numbers or addresses asked for codes.

Two requests racing on PostgreSQL can both pass a nearly full window (the count does not lock);
the limits are a cost on abuse, and the per-code attempt counter, which is row-locked, is the
control that stops guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kouza.identity.errors import RateLimited
from kouza.identity.models import RateLimitHit
from kouza.kit.runtime import runtime_of
from kouza.kit.security import keyed_hash


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


def check(session: Session, limits: list[Limit]) -> None:
    """Refuse if any limit is reached, otherwise count one event against each."""
    now = runtime_of(session).now()
    keys = [_key(session, limit) for limit in limits]
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
    session.add_all(RateLimitHit(key_hash=key, at=now) for key in keys)
    session.flush()
