"""Row locks, in one place and in a fixed order.

Every path that locks more than one row locks them here, sorted by primary key, so two
transactions can never wait on each other in opposite orders. PostgreSQL gets ``SELECT … FOR
UPDATE``; SQLite has no row locks (SQLAlchemy compiles ``FOR UPDATE`` to nothing) but every
kouza transaction there is ``BEGIN IMMEDIATE`` (see :mod:`kouza.kit.db`), which serialises
writers, so the same code is correct on both. Concurrency is therefore proven on PostgreSQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.orm import Session

T = TypeVar("T")


def lock_rows(session: Session, model: type[T], ids: Iterable[Any]) -> Sequence[T]:
    """Lock the rows of ``model`` with these primary keys, in key order; return them."""
    keys = sorted(set(ids), key=str)
    if not keys:
        return []
    primary_key = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    statement = select(model).where(primary_key.in_(keys)).order_by(primary_key).with_for_update()
    return session.scalars(statement).all()


def lock_row(session: Session, model: type[T], key: Any) -> T | None:
    """Lock one row of ``model`` by primary key."""
    rows = lock_rows(session, model, [key])
    return rows[0] if rows else None


def lock_named(session: Session, name: str) -> None:
    """Hold the transaction-scoped lock called ``name`` until commit or rollback.

    PostgreSQL: an advisory lock keyed by the name's hash. SQLite: nothing to do, every kouza
    transaction there already holds the database's write lock (``BEGIN IMMEDIATE``).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
