"""identity: contact changes, revocation re-checks and demotion, locked rate-limit keys

New tables ``contact_changes`` (device-signed phone / e-mail changes and their codes),
``ekyc_rechecks`` (each revocation re-check of a stored JPKI verification) and
``rate_limit_keys`` (the row each rate-limit key locks, so racing requests cannot overrun a
window). ``verified_identities`` gains ``revoked_at`` / ``revocation_reason``, and SMS codes
gain the purpose ``phone_change``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PURPOSES_BEFORE = "purpose IN ('phone_verification', 'step_up')"
_PURPOSES_AFTER = "purpose IN ('phone_verification', 'step_up', 'phone_change')"


def _replace_purpose_check(condition: str) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode rebuilds the table with the new one.
    with op.batch_alter_table("otp_challenges", schema=None, recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f("ck_otp_challenges_purpose_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_otp_challenges_purpose_valid"), condition)


def upgrade() -> None:
    _replace_purpose_check(_PURPOSES_AFTER)
    op.create_table(
        "rate_limit_keys",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_rate_limit_keys")),
    )
    op.create_table(
        "contact_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("old_value", sa.String(length=320), nullable=False),
        sa.Column("new_value", sa.String(length=320), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("otp_challenge_id", sa.Uuid(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("created_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("superseded_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('phone', 'email')", name=op.f("ck_contact_changes_kind_valid")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_contact_changes_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["otp_challenge_id"],
            ["otp_challenges.id"],
            name=op.f("fk_contact_changes_otp_challenge_id_otp_challenges"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_contact_changes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_changes")),
    )
    with op.batch_alter_table("contact_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contact_changes_user", ["user_id", "kind", "created_at"], unique=False
        )
    op.create_table(
        "ekyc_rechecks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("verification_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("demoted", sa.Boolean(), nullable=False),
        sa.Column("checked_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('good', 'revoked', 'unknown', 'uncheckable')",
            name=op.f("ck_ekyc_rechecks_outcome_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ekyc_rechecks_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["ekyc_verifications.id"],
            name=op.f("fk_ekyc_rechecks_verification_id_ekyc_verifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ekyc_rechecks")),
    )
    with op.batch_alter_table("ekyc_rechecks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ekyc_rechecks_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            "ix_ekyc_rechecks_verification", ["verification_id", "checked_at"], unique=False
        )
    with op.batch_alter_table("verified_identities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revoked_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("revocation_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verified_identities", schema=None) as batch_op:
        batch_op.drop_column("revocation_reason")
        batch_op.drop_column("revoked_at")
    with op.batch_alter_table("ekyc_rechecks", schema=None) as batch_op:
        batch_op.drop_index("ix_ekyc_rechecks_verification")
        batch_op.drop_index(batch_op.f("ix_ekyc_rechecks_user_id"))
    op.drop_table("ekyc_rechecks")
    with op.batch_alter_table("contact_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_changes_user")
    op.drop_table("contact_changes")
    op.drop_table("rate_limit_keys")
    op.execute("DELETE FROM otp_challenges WHERE purpose = 'phone_change'")
    _replace_purpose_check(_PURPOSES_BEFORE)
