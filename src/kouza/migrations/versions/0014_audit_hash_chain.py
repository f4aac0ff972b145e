"""ops: the audit trail becomes a hash chain (prev_hash, row_hash), backfilled in id order

Each ``audit_events`` row gets ``prev_hash`` (the previous row's ``row_hash``, 64 zeros for the
first) and ``row_hash`` = SHA-256 over ``prev_hash`` and the row's canonical encoding
(:func:`kouza.controls.audit.chain_hash`, ADR 0024). Existing rows are chained here, in id order, so
``kouza audit verify`` holds for them from now on (it cannot prove what happened to them
before). ``prev_hash`` is unique: two rows claiming the same predecessor (a fork) cannot exist.

Revision ID: 0014
Revises: 0010
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db
from kouza.controls.audit import GENESIS, chain_hash

revision: str = "0014"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT = sa.table(
    "audit_events",
    sa.column("id", sa.BigInteger()),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("subject", sa.String()),
    sa.column("reason", sa.String()),
    sa.column("details", sa.JSON()),
    sa.column("created_at", kouza.kit.db.UtcDateTime()),
    sa.column("prev_hash", sa.String()),
    sa.column("row_hash", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(AUDIT).order_by(AUDIT.c.id)).all()
    prev = GENESIS
    for row in rows:
        row_hash = chain_hash(prev, row)
        connection.execute(
            AUDIT.update().where(AUDIT.c.id == row.id).values(prev_hash=prev, row_hash=row_hash)
        )
        prev = row_hash
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("row_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint("uq_audit_events_prev_hash", ["prev_hash"])


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_events_prev_hash", type_="unique")
        batch_op.drop_column("row_hash")
        batch_op.drop_column("prev_hash")
