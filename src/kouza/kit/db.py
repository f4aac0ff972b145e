"""Database engine, sessions and the unit of work.

One request, task or CLI command is one unit of work: :meth:`Database.unit_of_work` opens a
session, yields it, commits once at the end (or rolls back on any exception) and only then lets
the outbox deliver side effects. Services never commit; they ``flush()`` when they need ids.

SQLite is the embedded default. It is opened in WAL mode with foreign keys on, and every
transaction starts with ``BEGIN IMMEDIATE`` so that two writers never both read and then fail to
upgrade their lock (SQLite's classic ``database is locked`` deadlock); writers simply queue.
PostgreSQL is used through psycopg 3; row locks there are taken by :mod:`kouza.kit.locking`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Integer,
    MetaData,
    Uuid,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from kouza.errors import KouzaError

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit surrogate key (SQLite only autoincrements ``INTEGER PRIMARY KEY``)."""


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use the injected clock")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every kouza table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), uuid.UUID: Uuid()}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` with kouza's dialect settings applied. Statement parameters never
    appear in its log lines or error messages (``hide_parameters``): they carry hashes,
    encrypted tokens and personal data, and an error message ends up in a log."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # no pre-ping: it would cost a round trip per unit of work; recycle stale connections instead
    return create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=20,
        max_overflow=20,
        pool_recycle=1800,
    )


def add_unique(session: Session, row: object, error: KouzaError) -> None:
    """Insert ``row``; if a unique constraint refuses it, raise ``error``.

    The insert runs in a savepoint, so the refusal leaves the session (and the rest of the unit
    of work) usable — no check-then-insert race, no half-added row.
    """
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise error from None


class Database:
    """An engine plus a session factory; the only place that commits."""

    def __init__(self, engine: Engine, *, info: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self._info = info or {}
        self._factory = sessionmaker(bind=engine, expire_on_commit=False)
        self.after_commit_hooks: list[Callable[[Session], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A new session carrying this database's ``info`` (the runtime)."""
        session = self._factory()
        session.info.update(self._info)
        return session

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """Open a session, commit once on success, roll back on error, then run hooks."""
        session = self.session()
        try:
            yield session
            session.commit()
        except KouzaError as exc:
            # a refused request changes nothing, except what it must record (failed attempts,
            # a lock and the notices it queued): that part is committed and its hooks run
            if not exc.keep_changes:
                session.rollback()
                raise
            session.commit()
            session.close()
            self._after_commit(session)
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        self._after_commit(session)

    def _after_commit(self, session: Session) -> None:
        for hook in self.after_commit_hooks:
            hook(session)

    def dispose(self) -> None:
        self.engine.dispose()
