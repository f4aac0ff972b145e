"""Apply Alembic migrations programmatically (start-up, CLI, tests), for either system.

A :class:`Migrations` is one system's scripts directory and the table its revision is kept in:
the wallet's ``kouza/migrations`` with Alembic's ``alembic_version`` (:data:`WALLET`, behind the
module functions :func:`upgrade`, :func:`current` and :func:`alembic_config`), the bank's
``kouza/bank/migrations`` with ``bank_alembic_version`` (``kouza.bank.migrate``). Both systems'
``env.py`` are :meth:`Migrations.run_env`, so they configure Alembic the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection, Engine

from kouza.kit.db import make_engine


@dataclass(frozen=True)
class Migrations:
    """One system's Alembic migrations: where its scripts are, where its revision is kept."""

    system: str
    """Named in errors (``kouza``, ``bank``)."""
    directory: Path
    version_table: str = "alembic_version"

    def alembic_config(self) -> Config:
        """An Alembic config pointing at this system's scripts."""
        config = Config()
        config.set_main_option("script_location", str(self.directory))
        config.set_main_option("path_separator", "os")
        return config

    def upgrade(self, engine: Engine, revision: str = "head") -> None:
        """Bring the database of ``engine`` up to ``revision``."""
        config = self.alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def head(self) -> str | None:
        """The newest revision the package's migrations define."""
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current(self, engine: Engine) -> str | None:
        """The revision the database is at (None if never migrated)."""
        with engine.connect() as connection:
            migration = MigrationContext.configure(
                connection, opts={"version_table": self.version_table}
            )
            return migration.get_current_revision()

    def run_env(self, target_metadata: MetaData, database_url: Callable[[], str]) -> None:
        """The body of this system's ``env.py``: migrate the connection Alembic was handed
        (:meth:`upgrade`), else a database at ``database_url()`` (``alembic -c alembic.ini``).
        The URL is asked for only then, since resolving it may create ``var/``."""
        if context.is_offline_mode():
            raise SystemExit(f"{self.system} migrations run online only")
        connection = context.config.attributes.get("connection")
        if connection is not None:
            self._run(connection, target_metadata)
            return
        engine = make_engine(database_url())
        with engine.connect() as connection:
            self._run(connection, target_metadata)
        engine.dispose()

    def _run(self, connection: Connection, target_metadata: MetaData) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            version_table=self.version_table,
        )
        with context.begin_transaction():
            context.run_migrations()


WALLET = Migrations("kouza", Path(__file__).resolve().parent.parent / "migrations")
"""The wallet operator's migrations (``alembic.ini`` at the repository root points there too)."""


def alembic_config() -> Config:
    """An Alembic config pointing at the wallet's migrations."""
    return WALLET.alembic_config()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the wallet database of ``engine`` up to ``revision``."""
    WALLET.upgrade(engine, revision)


def current(engine: Engine) -> str | None:
    """The revision the wallet database is at (None if never migrated)."""
    return WALLET.current(engine)


def head() -> str | None:
    """The newest revision of the wallet's migrations."""
    return WALLET.head()
