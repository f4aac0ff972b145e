"""Alembic environment of the bank database (kit's shared routine on the bank's tables)."""

from __future__ import annotations

from kouza.bank.migrate import BANK
from kouza.bank.models import BankBase
from kouza.bank.settings import BankSettings

BANK.run_env(BankBase.metadata, database_url=lambda: BankSettings().resolved_database_url())
