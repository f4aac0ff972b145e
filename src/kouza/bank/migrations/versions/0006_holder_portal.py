"""holder portal sessions

``portal_sessions``: a holder signed in to the bank's holder portal with internet-banking
password and one-time password (ADR 0040). The cookie is random and only its HMAC is stored;
a session ends on sign-out, after ten idle minutes, or an hour after sign-in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
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
        "portal_sessions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("bank_id", BIG_ID, nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=10), nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("password_matched", sa.Boolean(), nullable=False),
        sa.Column("created_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "stage IN ('otp', 'active', 'ended')", name=op.f("ck_portal_sessions_stage_valid")
        ),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["banks.id"], name=op.f("fk_portal_sessions_bank_id_banks")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_portal_sessions_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_sessions")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_portal_sessions_session_hash")),
    )
    op.create_index(
        op.f("ix_portal_sessions_customer_id"), "portal_sessions", ["customer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_portal_sessions_customer_id"), table_name="portal_sessions")
    op.drop_table("portal_sessions")
