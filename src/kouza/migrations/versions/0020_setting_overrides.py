"""controls: run-time setting overrides (ADR 0035)

``setting_overrides`` holds an operator's value of a setting that may change while the wallet
runs (``kouza.controls.overrides.RUNTIME_SETTINGS``): one row per key, its JSON value and who
changed it, why and when. No row means the environment's value applies. The history of every
change is in the audit trail (``setting.set`` / ``setting.unset``).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "setting_overrides",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("changed_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_setting_overrides")),
    )


def downgrade() -> None:
    op.drop_table("setting_overrides")
