"""Idempotency keys for every externally caused write.

Protocol (the Stripe/IETF ``Idempotency-Key`` semantics):

* same key + same request → the first result, replayed, and nothing happens twice;
* same key + a different request → :class:`~kouza.errors.IdempotencyConflict` (409);
* same key while the first request is still running → :class:`~kouza.errors.IdempotencyInFlight`
  (409).

:func:`claim` records the key as *in flight* in its own short, committed transaction so that a
concurrent duplicate sees it at once; the business write and :func:`complete` then commit
together in the caller's unit of work, so a stored result always matches what was done. If the
operation fails — with a caller error or any other exception — :func:`release` forgets the key
so a corrected retry can run (a failed request changed nothing, so there is nothing to replay).
A concurrent duplicate that collides with a claim released in the meantime simply claims again.
A crashed process leaves its claim, which expires after a lease; a later retry takes it over.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from kouza.errors import BadRequest, IdempotencyConflict, IdempotencyInFlight
from kouza.kit.db import Base, BigId, Database


class IdempotencyRecord(Base):
    """A claimed idempotency key and, once done, the response it produced."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(100))
    """Whose key space this is (a user id, ``operator``, a bank client id)."""
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    """``in_flight`` or ``completed``."""
    response_status: Mapped[int | None]
    response_body: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    locked_until: Mapped[datetime]


@dataclass(frozen=True)
class Replay:
    """The stored result of a completed request."""

    status_code: int
    body: Any


def request_hash(payload: Any) -> str:
    """A stable hash of a request (canonical JSON)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str) -> str:
    """Keys are 1–255 printable ASCII characters."""
    if not 0 < len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters")
    return key


def claim(
    db: Database, *, scope: str, key: str, fingerprint: str, now: datetime, lease: timedelta
) -> Replay | None:
    """Claim ``key``; returns ``None`` if the caller should run, or the first result to replay."""
    with db.session() as session:
        for _attempt in range(_CLAIM_ATTEMPTS):
            record = IdempotencyRecord(
                scope=scope,
                key=key,
                request_hash=fingerprint,
                status="in_flight",
                created_at=now,
                locked_until=now + lease,
            )
            session.add(record)
            try:
                session.commit()
                return None
            except IntegrityError:
                session.rollback()
            outcome = _resolve_existing(
                session, scope=scope, key=key, fingerprint=fingerprint, now=now, lease=lease
            )
            if not isinstance(outcome, _Gone):
                return outcome
    # The key was claimed and released again on every attempt: other requests with this key
    # keep failing right now. Tell this one to retry rather than run a fourth race.
    raise IdempotencyInFlight("a request with this Idempotency-Key is still in progress", key=key)


class _Gone:
    """The record that blocked our insert was released before we could read it."""


_GONE = _Gone()
_CLAIM_ATTEMPTS = 3


def _resolve_existing(
    session: Session, *, scope: str, key: str, fingerprint: str, now: datetime, lease: timedelta
) -> Replay | _Gone | None:
    existing = session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
    ).one_or_none()
    if existing is None:  # released by a failed first attempt between our insert and this read
        session.rollback()
        return _GONE
    if existing.request_hash != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request", key=key
        )
    if existing.status == "completed":
        return Replay(existing.response_status or 200, existing.response_body)
    taken_over = session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == existing.id, IdempotencyRecord.locked_until < now)
        .values(locked_until=now + lease)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    if taken_over:
        return None
    raise IdempotencyInFlight("a request with this Idempotency-Key is still in progress", key=key)


def complete(session: Session, *, scope: str, key: str, status_code: int, body: Any) -> None:
    """Store the result, in the caller's unit of work (commits with the business write)."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        .values(status="completed", response_status=status_code, response_body=body)
    )


def release(db: Database, *, scope: str, key: str) -> None:
    """Forget an in-flight claim whose request failed without changing anything."""
    with db.session() as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope,
                IdempotencyRecord.key == key,
                IdempotencyRecord.status == "in_flight",
            )
        )
        session.commit()
