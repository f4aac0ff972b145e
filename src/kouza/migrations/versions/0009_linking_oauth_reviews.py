"""linking: OAuth link flows and tokens, top-ups held for review

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bank_oauth_flows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("wallet_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("bank_code", sa.String(length=4), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("token_endpoint", sa.String(length=300), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure", sa.String(length=200), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'completed', 'failed')",
            name=op.f("ck_bank_oauth_flows_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_bank_oauth_flows_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["bank_links.id"], name=op.f("fk_bank_oauth_flows_link_id_bank_links")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_bank_oauth_flows_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_bank_oauth_flows_wallet_id_wallets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_oauth_flows")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_bank_oauth_flows_state_hash")),
    )
    op.create_index(
        "ix_bank_oauth_flows_wallet", "bank_oauth_flows", ["wallet_id", "created_at"], unique=False
    )
    op.create_table(
        "bank_link_tokens",
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("token_endpoint", sa.String(length=300), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("expires_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["link_id"], ["bank_links.id"], name=op.f("fk_bank_link_tokens_link_id_bank_links")
        ),
        sa.PrimaryKeyConstraint("link_id", name=op.f("pk_bank_link_tokens")),
    )
    op.create_table(
        "bank_movement_reviews",
        sa.Column("movement_id", sa.Uuid(), nullable=False),
        sa.Column("wallet_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=120), nullable=False),
        sa.Column("decision_reason", sa.String(length=500), nullable=False),
        sa.Column("refund_movement_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "status IN ('held', 'released', 'rejected', 'cancelled')",
            name=op.f("ck_bank_movement_reviews_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["movement_id"],
            ["bank_movements.id"],
            name=op.f("fk_bank_movement_reviews_movement_id_bank_movements"),
        ),
        sa.ForeignKeyConstraint(
            ["refund_movement_id"],
            ["bank_movements.id"],
            name=op.f("fk_bank_movement_reviews_refund_movement_id_bank_movements"),
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_bank_movement_reviews_wallet_id_wallets")
        ),
        sa.PrimaryKeyConstraint("movement_id", name=op.f("pk_bank_movement_reviews")),
    )
    op.create_index(
        "ix_bank_movement_reviews_status",
        "bank_movement_reviews",
        ["status", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_bank_movement_reviews_status", table_name="bank_movement_reviews")
    op.drop_table("bank_movement_reviews")
    op.drop_table("bank_link_tokens")
    op.drop_index("ix_bank_oauth_flows_wallet", table_name="bank_oauth_flows")
    op.drop_table("bank_oauth_flows")
