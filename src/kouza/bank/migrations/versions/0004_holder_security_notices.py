"""holder security notices: failed identity checks and repeated failed legacy attempts

An alert about a failed identity check (OAuth: login + OTP right, the wallet's identity not the
holder's) or about repeated failed legacy-form attempts on one account now names the customer
and carries the "not me" reference printed on the notice the holder was sent (ADR 0022).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("notice_reference", sa.String(length=20), nullable=True))
        batch_op.create_index(batch_op.f("ix_alerts_customer_id"), ["customer_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_alerts_notice_reference"), ["notice_reference"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_customer_id_customers"), "customers", ["customer_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_alerts_customer_id_customers"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_alerts_notice_reference"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_alerts_customer_id"))
        batch_op.drop_column("notice_reference")
        batch_op.drop_column("customer_id")
