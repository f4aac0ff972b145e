"""risk: recorded events and decisions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "risk_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("wallet", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("email_domain", sa.String(length=255), nullable=False),
        sa.Column("bank", sa.String(length=4), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("holder_name", sa.String(length=100), nullable=False),
        sa.Column("merchant", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_events")),
    )
    op.create_index("ix_risk_events_at", "risk_events", ["at"])
    op.create_index("ix_risk_events_wallet_at", "risk_events", ["wallet", "at"])
    op.create_table(
        "risk_decisions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", BIG_ID, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("rule_set_version", sa.String(length=64), nullable=False),
        sa.Column("fired", sa.JSON(), nullable=False),
        sa.Column("created_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["risk_events.id"], name=op.f("fk_risk_decisions_event_id_risk_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_decisions")),
        sa.UniqueConstraint("event_id", name=op.f("uq_risk_decisions_event_id")),
    )
    op.create_index("ix_risk_decisions_outcome", "risk_decisions", ["outcome", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_risk_decisions_outcome", table_name="risk_decisions")
    op.drop_table("risk_decisions")
    op.drop_index("ix_risk_events_wallet_at", table_name="risk_events")
    op.drop_index("ix_risk_events_at", table_name="risk_events")
    op.drop_table("risk_events")
