"""linking: restricted links to legacy-form banks and their probation holds (ADR 0032)

``bank_links.restricted`` marks a link made to a bank that only has the legacy PIN form under
``legacy_bank_links = restricted``: a lower mandate, and top-ups during probation held.
``bank_movement_reviews.release_at`` is when such a probation hold is released by the job
(``kouza links release-due``); NULL for a risk review, which an operator decides. Both columns
are added in place (no table rebuild), existing rows being unrestricted risk reviews.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "bank_links",
        sa.Column("restricted", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "bank_movement_reviews",
        sa.Column("release_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    # dropped in place (SQLite >= 3.35 does it natively): a batch rebuild of bank_links
    # would have to drop a table that movements and reviews still reference
    op.drop_column("bank_movement_reviews", "release_at")
    op.drop_column("bank_links", "restricted")
