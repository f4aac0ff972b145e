"""console: operators' console credentials and sessions, the call-centre role, case assignment,
maker-checker approvals (ADR 0038)

* ``operators.role`` admits ``call_centre`` (the CHECK is widened: a batch rebuild on SQLite);
* ``cases.assigned_to``: the operator working on a case (NULL: in the queue);
* ``console_credentials``: argon2id password hash and encrypted TOTP seed per operator;
* ``console_sessions``: signed-in browsers, keyed by the hash of the cookie's session id;
* ``console_approvals``: dangerous actions waiting for a second operator.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLES_BEFORE = "role IN ('analyst', 'admin')"
_ROLES_AFTER = "role IN ('analyst', 'admin', 'call_centre')"


def upgrade() -> None:
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_operators_role_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_operators_role_valid"), _ROLES_AFTER)
    op.add_column("cases", sa.Column("assigned_to", sa.String(length=100), nullable=True))
    op.create_table(
        "console_credentials",
        sa.Column("operator_id", sa.Uuid(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("totp_seed_encrypted", sa.Text(), nullable=False),
        sa.Column("last_totp_step", sa.Integer(), nullable=False),
        sa.Column("set_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operators.id"],
            name=op.f("fk_console_credentials_operator_id_operators"),
        ),
        sa.PrimaryKeyConstraint("operator_id", name=op.f("pk_console_credentials")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operators.id"],
            name=op.f("fk_console_sessions_operator_id_operators"),
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index("ix_console_sessions_operator", "console_sessions", ["operator_id"])
    op.create_table(
        "console_approvals",
        sa.Column("id", kouza.kit.db.BigId, autoincrement=True, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", kouza.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'executed', 'failed')",
            name=op.f("ck_console_approvals_status_valid"),
        ),
        sa.CheckConstraint(
            "action IN ('unlock_wallet', 'switch_off', 'compensate', 'publish_rules')",
            name=op.f("ck_console_approvals_action_valid"),
        ),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by",
            name=op.f("ck_console_approvals_checker_is_not_maker"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_approvals")),
    )
    op.create_index("ix_console_approvals_status", "console_approvals", ["status", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_console_approvals_status", table_name="console_approvals")
    op.drop_table("console_approvals")
    op.drop_index("ix_console_sessions_operator", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_credentials")
    op.drop_column("cases", "assigned_to")
    op.execute("DELETE FROM operators WHERE role = 'call_centre'")
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_operators_role_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_operators_role_valid"), _ROLES_BEFORE)
