"""Apply the bank's own Alembic migrations programmatically (start-up, CLI, tests).

The bank keeps its revision in ``bank_alembic_version`` so that it never confuses the wallet's
``alembic_version`` even if both were pointed at one database by mistake. The machinery is kit's
(:class:`~kouza.kit.migrate.Migrations`); only the directory and the version table are the bank's.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import Engine

from kouza.kit.migrate import Migrations

VERSION_TABLE = "bank_alembic_version"
BANK = Migrations("bank", Path(__file__).resolve().parent / "migrations", VERSION_TABLE)
"""The bank's migrations (its ``migrations/env.py`` runs :meth:`Migrations.run_env` of this)."""


def alembic_config() -> Config:
    """An Alembic config pointing at the bank's migrations."""
    return BANK.alembic_config()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the bank database of ``engine`` up to ``revision``."""
    BANK.upgrade(engine, revision)


def current(engine: Engine) -> str | None:
    """The revision the bank database is at (None if never migrated)."""
    return BANK.current(engine)
