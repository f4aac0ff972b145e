"""alerts raised by operators' signed notices (wallet locked for suspected fraud)

An alert now names the account, the operator client and the notice's event id; UNIQUE
(client, event id) makes a redelivered notice return the first alert (ADR 0011).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "client_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("event_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_alerts_account_id"), ["account_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_alerts_client_pk_event_id"), ["client_pk", "event_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_client_pk_operator_clients"),
            "operator_clients",
            ["client_pk"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_account_id_accounts"), "accounts", ["account_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_alerts_account_id_accounts"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_alerts_client_pk_operator_clients"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_alerts_client_pk_event_id"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_alerts_account_id"))
        batch_op.drop_column("event_id")
        batch_op.drop_column("client_pk")
        batch_op.drop_column("account_id")
