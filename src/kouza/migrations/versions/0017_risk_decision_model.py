"""risk: the learned model's verdict on each decision (ADR 0031)

``risk_decisions`` gains ``model`` (JSON, nullable): the model version, its score and the five
features that moved the score most, when a model is loaded (``KOUZA_RISK_MODEL``). Decisions
taken without a model, and every decision stored before, keep NULL.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        batch_op.drop_column("model")
