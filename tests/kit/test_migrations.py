"""The migrations produce exactly the models' schema, and go down and up again cleanly."""

from __future__ import annotations

import json
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from kouza.kit.migrate import alembic_config, current, head, upgrade
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
    assert current(rt.db.engine) == head() == "0022"


def test_kouza_models_alone_registers_every_migrated_table(rt: Runtime) -> None:
    """What Alembic sees (``kouza.models`` imported in a fresh interpreter, nothing else) is
    every table the migrations create: here the other test modules have imported all models."""
    script = "import json, kouza.models as m; print(json.dumps(sorted(m.Base.metadata.tables)))"
    seen = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    migrated = set(inspect(rt.db.engine).get_table_names()) - {"alembic_version"}
    assert set(json.loads(seen)) == migrated
