"""The migrations produce exactly the models' schema, and go down and up again cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kouza.kit.migrate import alembic_config, current, upgrade
from kouza.models import Base
from kouza.runtime import Runtime


def test_schema_matches_models(rt: Runtime) -> None:
    with rt.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_downgrade_and_upgrade(rt: Runtime) -> None:
    from alembic import command

    config = alembic_config()
    with rt.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert current(rt.db.engine) is None
    upgrade(rt.db.engine)
    assert current(rt.db.engine) == "0015"
