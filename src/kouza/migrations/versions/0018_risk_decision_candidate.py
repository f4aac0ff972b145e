"""risk: a candidate rule set's verdict on each decision (shadow, docs/risk.md)

``risk_decisions`` gains ``candidate`` (JSON, nullable): the candidate rule set's version,
outcome, score and fired rule ids, when a candidate runs beside the live rules
(``KOUZA_RISK_CANDIDATE_RULES`` or ``PUT /v1/ops/risk/rules/candidate``). Decisions taken
without a candidate, and every decision stored before, keep NULL.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("candidate", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        batch_op.drop_column("candidate")
