"""Alembic environment: migrates the connection it is handed, or the configured database."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from kouza.config import get_settings
from kouza.kit.db import make_engine
from kouza.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(get_settings().resolved_database_url())
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("kouza migrations run online only")
run_migrations_online()
