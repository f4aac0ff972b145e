"""restricted wallet links (probation) and credits that reverse a debit

``links.probation_until`` / ``links.hold_hours``: the operator holds the top-ups of a
restricted link for that long during probation, and the holder's notices say so.
``transfers.reverses_id`` (unique): a credit returning an earlier debit of the same link, the
one credit a revoked link accepts (ADR 0032 of the wallet). Columns are added in place, so the
immutability triggers on ``transfers`` stay as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "links",
        sa.Column("probation_until", kouza.kit.db.UtcDateTime(timezone=True), nullable=True),
    )
    op.add_column("links", sa.Column("hold_hours", sa.Integer(), nullable=True))
    op.add_column("transfers", sa.Column("reverses_id", sa.Uuid(), nullable=True))
    op.create_index(op.f("uq_transfers_reverses_id"), "transfers", ["reverses_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("uq_transfers_reverses_id"), table_name="transfers")
    op.drop_column("transfers", "reverses_id")
    op.drop_column("links", "hold_hours")
    op.drop_column("links", "probation_until")
