"""The bank's migrations produce exactly its models' schema, and go down and up cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from kouza.bank.migrate import VERSION_TABLE, alembic_config, current, upgrade
from kouza.bank.models import BankBase
from kouza.bank.runtime import BankRuntime


def test_schema_matches_models(bank_rt: BankRuntime) -> None:
    with bank_rt.db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        differences = compare_metadata(context, BankBase.metadata)

    assert differences == []


def test_downgrade_and_upgrade(bank_rt: BankRuntime) -> None:
    config = alembic_config()
    with bank_rt.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert current(bank_rt.db.engine) is None

    upgrade(bank_rt.db.engine)

    assert current(bank_rt.db.engine) == "0006"
    tables = set(inspect(bank_rt.db.engine).get_table_names())
    assert {"banks", "accounts", "links", "movements", "portal_sessions", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # never the wallet's version table
