"""Alembic environment of the bank database: migrates the connection it is handed."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from kouza.bank.migrate import VERSION_TABLE
from kouza.bank.models import BankBase
from kouza.bank.settings import BankSettings
from kouza.kit.db import make_engine

target_metadata = BankBase.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(BankSettings().resolved_database_url())
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("bank migrations run online only")
run_migrations_online()
