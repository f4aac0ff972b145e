"""risk_rule_sets: the rule sets made live or set as candidate at run time, with their text
(ADR 0041)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "risk_rule_sets",
        sa.Column("id", kouza.kit.db.BigId, autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("loaded_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('live', 'candidate')", name=op.f("ck_risk_rule_sets_role_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_rule_sets")),
    )
    op.create_index("ix_risk_rule_sets_loaded_at", "risk_rule_sets", ["loaded_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_risk_rule_sets_loaded_at", table_name="risk_rule_sets")
    op.drop_table("risk_rule_sets")
