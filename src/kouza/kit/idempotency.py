"""Idempotency keys for every externally caused write: the one place that decides.

Protocol (the Stripe/IETF ``Idempotency-Key`` semantics):

* same key + same request → the first result, replayed, and nothing happens twice;
* same key + a different request → :class:`~kouza.errors.IdempotencyConflict` (409);
* same key while the first request is still running → :class:`~kouza.errors.IdempotencyInFlight`
  (409);
* same key after the first request made something and then failed (a remote system's answer
  was lost) → the retry *resumes* what the first one made instead of starting again.

One row of ``idempotency_keys`` per (scope, key) holds the request's one fingerprint
(``request_hash``), where it stands (``status``, :class:`ClaimStatus`) and, once the request has
made something a retry must come back to, a reference to it (``resource``: an opaque string the
caller chose, e.g. ``<kind>:<uuid>``). :func:`claim` reads that row and decides; the callers only
act on its typed answer: ``None`` (run: the key is yours), :class:`Replay` (the stored answer) or
:class:`Resume` (carry on with ``resource``).

:func:`claim` records the key as *in flight* in its own short, committed transaction so that a
concurrent duplicate sees it at once. A first request can instead claim the key *inside* the unit
of work that does its work (:func:`claimed`): nothing uncommitted is visible, but a concurrent
duplicate's insert waits on the unique key until that unit of work commits or rolls back, so
the outcome is the same with one transaction fewer (ADR 0028). :func:`run_in_one` is that for a
one-step request: scope, key, work and stored answer in one transaction.

A request that works in one unit of work stores its result with :func:`complete` in that same unit
of work, so a stored result always matches what was done. A request that must commit part of its
work before it can finish (a record, then a call to another system, then a settlement) names what it
recorded with :func:`attach`, in the unit of work that records it. If the request then fails,
:func:`release` decides by that reference: with none, nothing was committed, so the key is forgotten
and a corrected retry can run; with one, the key becomes ``open`` and the same request retried
resumes it (a different one still conflicts). A concurrent duplicate that collides with a claim
released in the meantime simply claims again. A crashed process leaves its claim, which expires
after a lease; a later retry takes it over — and resumes, if the crashed request had attached
something.

:func:`run` is that whole sequence for one request; :func:`kouza.kit.web.run_idempotent` is it
for an HTTP endpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import JSON, CheckConstraint, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from kouza.errors import BadRequest, IdempotencyConflict, IdempotencyInFlight, KouzaError
from kouza.kit.db import Base, BigId, Database
from kouza.kit.runtime import BaseRuntime

T = TypeVar("T")


class ClaimStatus(StrEnum):
    """Where the request behind an idempotency key stands."""

    IN_FLIGHT = "in_flight"
    """A request holds the key under a lease (it may already have attached a resource)."""
    OPEN = "open"
    """A request attached a resource and failed before it finished: a retry resumes it."""
    COMPLETED = "completed"
    """The request finished; its answer is stored and every retry replays it."""


class IdempotencyRecord(Base):
    """A claimed idempotency key: the request's fingerprint, where it stands, what it made."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "key"),
        UniqueConstraint("resource"),
        CheckConstraint("status IN ('in_flight', 'open', 'completed')", name="status_valid"),
        CheckConstraint("status <> 'open' OR resource IS NOT NULL", name="open_has_resource"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(100))
    """Whose key space this is (``user:<id>``, ``operator:<id>``)."""
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    """The request's fingerprint (:func:`request_hash`): the only one stored for it."""
    status: Mapped[str] = mapped_column(String(16))
    """A :class:`ClaimStatus`."""
    resource: Mapped[str | None] = mapped_column(String(100))
    """What the request made that a retry must resume (the caller's reference), or None."""
    response_status: Mapped[int | None]
    response_body: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    locked_until: Mapped[datetime]


@dataclass(frozen=True)
class Replay:
    """The stored result of a completed request (and what it made, if it attached anything)."""

    status_code: int
    body: Any
    resource: str | None = None


@dataclass(frozen=True)
class Resume:
    """The key is yours again: carry on with what the first attempt made."""

    resource: str


@dataclass(frozen=True)
class IdempotentRequest:
    """One externally caused request: whose key space, its key, its fingerprint."""

    scope: str
    key: str
    fingerprint: str


def request_hash(payload: Any) -> str:
    """A stable hash of a request (canonical JSON)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str) -> str:
    """Keys are 1–255 printable ASCII characters."""
    if not 0 < len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters")
    return key


def _in_flight(key: str) -> IdempotencyInFlight:
    return IdempotencyInFlight("a request with this Idempotency-Key is still in progress", key=key)


def claim(
    db: Database, *, scope: str, key: str, fingerprint: str, now: datetime, lease: timedelta
) -> Replay | Resume | None:
    """Claim ``key``: ``None`` if the caller should run, the first result to replay, or what an
    earlier attempt made to resume. Raises IdempotencyConflict or IdempotencyInFlight."""
    with db.session() as session:
        for _attempt in range(_CLAIM_ATTEMPTS):
            record = IdempotencyRecord(
                scope=scope,
                key=key,
                request_hash=fingerprint,
                status=ClaimStatus.IN_FLIGHT.value,
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
    raise _in_flight(key)


class _Gone:
    """The record that blocked our insert changed before we could take it (released, or an
    open one resumed by another request): look again."""


_GONE = _Gone()
_CLAIM_ATTEMPTS = 3


def _resolve_existing(
    session: Session, *, scope: str, key: str, fingerprint: str, now: datetime, lease: timedelta
) -> Replay | Resume | _Gone | None:
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
    if existing.status == ClaimStatus.COMPLETED.value:
        return Replay(existing.response_status or 200, existing.response_body, existing.resource)
    resource = existing.resource
    if existing.status == ClaimStatus.OPEN.value:
        taken = _take(session, existing.id, now=now, lease=lease, only_open=True)
        return Resume(resource) if taken and resource is not None else _GONE
    if _take(session, existing.id, now=now, lease=lease, only_open=False):
        return Resume(resource) if resource is not None else None  # a crashed attempt's claim
    raise _in_flight(key)


def _take(
    session: Session, record_id: int, *, now: datetime, lease: timedelta, only_open: bool
) -> bool:
    """Make the record ours under a new lease: an open one, or an in-flight one whose lease ran
    out. One conditional UPDATE, so two retries can never both take it."""
    if only_open:
        free = IdempotencyRecord.status == ClaimStatus.OPEN.value
    else:
        free = (IdempotencyRecord.status == ClaimStatus.IN_FLIGHT.value) & (
            IdempotencyRecord.locked_until < now
        )
    taken = session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, free)
        .values(status=ClaimStatus.IN_FLIGHT.value, locked_until=now + lease)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return bool(taken)


def attach(session: Session, *, scope: str, key: str, resource: str) -> None:
    """Name what this request made, in the unit of work that makes it: from its commit on, a
    failure leaves the key open for a retry to resume rather than releasing it.

    Raises IdempotencyInFlight if another attempt with this key attached first (it took the
    claim over after our lease ran out): the unit of work rolls back, and nothing is made twice.
    """
    attached = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
            IdempotencyRecord.status == ClaimStatus.IN_FLIGHT.value,
            IdempotencyRecord.resource.is_(None),
        )
        .values(resource=resource)
    ).rowcount  # type: ignore[attr-defined]
    if not attached:
        raise _in_flight(key)


def complete(session: Session, *, scope: str, key: str, status_code: int, body: Any) -> None:
    """Store the result, in the caller's unit of work (commits with the business write)."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        .values(status=ClaimStatus.COMPLETED.value, response_status=status_code, response_body=body)
    )


def release(db: Database, *, scope: str, key: str) -> None:
    """End an in-flight claim whose request failed: forget it if it made nothing (nothing to
    replay, a corrected retry may run), leave it open for a retry to resume if it did."""
    mine = (
        IdempotencyRecord.scope == scope,
        IdempotencyRecord.key == key,
        IdempotencyRecord.status == ClaimStatus.IN_FLIGHT.value,
    )
    with db.session() as session:
        session.execute(
            delete(IdempotencyRecord).where(*mine, IdempotencyRecord.resource.is_(None))
        )
        session.execute(
            update(IdempotencyRecord)
            .where(*mine, IdempotencyRecord.resource.is_not(None))
            .values(status=ClaimStatus.OPEN.value)
        )
        session.commit()


class KeyHeld(Exception):
    """Inserting the key's record met an existing one: another request holds (or held) the key.
    :func:`run` decides what that means (replay, conflict, in flight, take over, resume)."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


@contextmanager
def claimed(
    session: Session,
    request: IdempotentRequest,
    *,
    now: datetime,
    lease: timedelta,
    resource: str | None = None,
) -> Iterator[IdempotencyRecord]:
    """Claim the key *inside* the caller's unit of work: its record, in flight (already naming
    ``resource`` if the unit of work makes it), inserted first — or :class:`KeyHeld`.

    Nothing uncommitted is visible, so a concurrent duplicate's insert waits on the unique key
    (PostgreSQL; SQLite serialises writers) until this unit of work commits — and then finds the
    record — or rolls back — and then claims the key itself. A refusal that keeps its changes (a
    lock, a counted attempt) drops the record before they commit: the key is forgotten, as
    :func:`release` would have it.
    """
    record = IdempotencyRecord(
        scope=request.scope,
        key=request.key,
        request_hash=request.fingerprint,
        status=ClaimStatus.IN_FLIGHT.value,
        resource=resource,
        created_at=now,
        locked_until=now + lease,
    )
    session.add(record)
    try:
        session.flush()
    except IntegrityError:
        raise KeyHeld(request.scope) from None
    try:
        yield record
    except KouzaError as refusal:
        if refusal.keep_changes:
            session.delete(record)
        raise


def run_in_one(
    runtime: BaseRuntime[Any],
    *,
    key: str,
    fingerprint: str,
    scope_of: Callable[[Session], str],
    operation: Callable[[Session], T],
    answer: Callable[[T], Any],
    status_code: int = 201,
) -> T | Replay:
    """A one-step request (it makes nothing a retry could resume) in **one** transaction:
    ``scope_of`` (e.g. authenticating the caller), the key's record (:func:`claimed`), the
    operation, and the record completed with its answer — committed together or not at all.
    When the key's record already exists, :func:`run` decides."""
    validate_key(key)
    now = runtime.now()
    lease = timedelta(seconds=runtime.settings.idempotency_lease_seconds)
    try:
        with runtime.db.unit_of_work() as session:
            request = IdempotentRequest(scope=scope_of(session), key=key, fingerprint=fingerprint)
            with claimed(session, request, now=now, lease=lease) as record:
                result = operation(session)
                record.status = ClaimStatus.COMPLETED.value
                record.response_status = status_code
                record.response_body = answer(result)
        return result
    except KeyHeld as held:

        def again(session: Session, _resumed: Resume | None) -> T:
            scope_of(session)
            return operation(session)

        request = IdempotentRequest(scope=held.scope, key=key, fingerprint=fingerprint)
        return run(runtime, request, operation=again, answer=answer, status_code=status_code)


def run(
    runtime: BaseRuntime[Any],
    request: IdempotentRequest,
    *,
    operation: Callable[[Session, Resume | None], T],
    answer: Callable[[T], Any],
    status_code: int = 201,
) -> T | Replay:
    """Run ``operation`` once per (scope, key), or return the stored :class:`Replay`.

    ``operation`` gets a unit of work whose commit stores its result (``answer(result)``) — a
    one-step request writes in it — and the :class:`Resume` of an earlier attempt, if any. Any
    failure releases the claim (:func:`release` decides whether it is forgotten or left open).
    """
    validate_key(request.key)
    lease = timedelta(seconds=runtime.settings.idempotency_lease_seconds)
    outcome = claim(
        runtime.db,
        scope=request.scope,
        key=request.key,
        fingerprint=request.fingerprint,
        now=runtime.now(),
        lease=lease,
    )
    if isinstance(outcome, Replay):
        return outcome
    try:
        with runtime.db.unit_of_work() as session:
            result = operation(session, outcome)
            complete(
                session,
                scope=request.scope,
                key=request.key,
                status_code=status_code,
                body=answer(result),
            )
    except BaseException:
        # Whatever failed (a refusal, a bug, a lost connection), nothing of this unit of work
        # was committed; only what the operation attached survives, for a retry to resume.
        release(runtime.db, scope=request.scope, key=request.key)
        raise
    return result
