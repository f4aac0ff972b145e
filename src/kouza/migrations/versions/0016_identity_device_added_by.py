"""identity: how each device key's registration was proven (ADR 0033)

``devices.added_by``: ``phone_verification`` (the first key, with the phone's SMS code),
``sms_otp`` (a later key after an SMS step-up) or ``device_signature`` (a later key approved by
an established device). Keys registered before stay NULL and are trusted by age alone.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("added_by", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("added_by")
