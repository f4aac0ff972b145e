"""The audit trail as a hash chain: an edited, deleted or reordered record is found.

Each ``audit_events`` row carries ``prev_hash`` (the ``row_hash`` of the row before it in id
order, :data:`GENESIS` for the first) and ``row_hash`` = SHA-256 over ``prev_hash`` and a
canonical encoding of the row (:func:`canonical`: its id, actor, action, subject, reason,
details and time as sorted, compact JSON). Changing any field of a row breaks its own hash;
removing or reordering rows breaks the next row's link. ``prev_hash`` is unique, so even a
writer that bypassed the lock could not fork the chain: its insert would fail.

Appending must see the true tail, so :func:`append` holds a named lock
(:func:`kouza.kit.locking.lock_named`: an advisory lock on PostgreSQL; SQLite writers are
serialised already) from reading the tail until commit, and the id is allocated under it, so
id order is chain order. To keep that lock short and last — a transaction holding it never
waits for another lock, so it cannot take part in a deadlock — :meth:`ControlsService.audit` only
queues the record; :func:`_append_queued` writes the queue just before the unit of work commits.

The chain proves the rows were not changed *after* one another; someone able to rewrite the
whole table could recompute every hash from the edit onwards, or drop the newest rows. Against
that, record the head ``kouza audit verify`` prints somewhere else (a ticket, the daily report)
and check it later with ``--anchor ID:HASH`` (ADR 0024).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from kouza.controls.models import AuditEvent
from kouza.kit.locking import lock_named

GENESIS = "0" * 64
"""``prev_hash`` of the first record."""
_QUEUE = "kouza.audit.queue"
_LOCK = "kouza.audit_events.append"


class Record(Protocol):
    """What a record's hash covers (an :class:`AuditEvent`, or a row in a migration)."""

    @property
    def id(self) -> int: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def details(self) -> dict[str, Any] | None: ...
    @property
    def created_at(self) -> datetime: ...


def canonical(record: Record) -> bytes:
    """The bytes a record's hash covers (besides the previous hash)."""
    at = record.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {
        "id": record.id,
        "actor": record.actor,
        "action": record.action,
        "subject": record.subject,
        "reason": record.reason,
        "details": record.details,
        "created_at": at,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, record: Record) -> str:
    """SHA-256 (hex) of the previous hash and the record's canonical encoding."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(record)).hexdigest()


def queue(session: Session, record: AuditEvent) -> None:
    """Append ``record`` to the chain when ``session`` commits."""
    session.info.setdefault(_QUEUE, []).append(record)


@event.listens_for(Session, "before_commit")
def _append_queued(session: Session) -> None:
    records: list[AuditEvent] = session.info.pop(_QUEUE, [])
    if records:
        append(session, records)


@event.listens_for(Session, "after_rollback")
def _forget_queued(session: Session) -> None:
    session.info.pop(_QUEUE, None)


def append(session: Session, records: list[AuditEvent]) -> None:
    """Link ``records`` after the current tail and write them (holding the append lock)."""
    lock_named(session, _LOCK)
    prev = session.scalar(select(AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1))
    prev = prev or GENESIS
    for record in records:
        record.prev_hash, record.row_hash = prev, ""
        session.add(record)
        session.flush()  # the id, allocated under the lock
        record.row_hash = prev = chain_hash(prev, record)
    session.flush()


@dataclass(frozen=True)
class Break:
    """The first record where the chain does not hold."""

    id: int
    reason: str


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found."""

    checked: int
    head_id: int | None
    head_hash: str
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify(session: Session, *, anchors: dict[int, str] | None = None) -> Verification:
    """Walk the chain in id order; stop at the first record that breaks it. ``anchors``
    (id → hash recorded earlier elsewhere) must still be there, unchanged."""
    expected, checked, last_id = GENESIS, 0, None
    missing = dict(anchors or {})
    for record in _in_order(session):
        if record.prev_hash != expected:
            return Verification(
                checked,
                last_id,
                expected,
                Break(
                    record.id,
                    "its previous hash does not match the record before it: a record "
                    "was removed or records were reordered",
                ),
            )
        if chain_hash(record.prev_hash, record) != record.row_hash:
            return Verification(
                checked,
                last_id,
                expected,
                Break(record.id, "its contents do not match its hash: the record was changed"),
            )
        anchored = missing.pop(record.id, None)
        if anchored is not None and anchored != record.row_hash:
            return Verification(
                checked,
                last_id,
                expected,
                Break(
                    record.id,
                    "its hash differs from the anchor recorded for it: the chain was rewritten",
                ),
            )
        expected, checked, last_id = record.row_hash, checked + 1, record.id
    if missing:
        first = min(missing)
        return Verification(
            checked,
            last_id,
            expected,
            Break(first, "an anchored record is no longer in the chain: records were removed"),
        )
    return Verification(checked, last_id, expected, None)


def _in_order(session: Session) -> Iterator[AuditEvent]:
    statement = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1_000)
    for record in session.scalars(statement):
        yield record
        session.expunge(record)  # keep memory flat on a long trail


def normalised(details: dict[str, Any] | None) -> dict[str, Any] | None:
    """``details`` as the JSON column gives it back, so the hash is over what is stored."""
    return None if details is None else dict(json.loads(json.dumps(details)))
