"""Alembic environment of the wallet database: migrates the connection it is handed, or the
configured database (``alembic -c alembic.ini``), through kit's shared routine."""

from __future__ import annotations

from kouza.config import get_settings
from kouza.kit.migrate import WALLET
from kouza.models import Base

WALLET.run_env(Base.metadata, database_url=lambda: get_settings().resolved_database_url())
