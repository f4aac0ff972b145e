"""Apply the bank's own Alembic migrations programmatically (start-up, CLI, tests).

The bank keeps its revision in ``bank_alembic_version`` so that it never confuses the wallet's
``alembic_version`` even if both were pointed at one database by mistake.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "bank_alembic_version"


def alembic_config() -> Config:
    """An Alembic config pointing at the bank's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the bank database of ``engine`` up to ``revision``."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current(engine: Engine) -> str | None:
    """The revision the bank database is at (None if never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
