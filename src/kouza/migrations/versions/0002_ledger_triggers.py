"""ledger invariants in the database: zero-sum trigger, immutable entries and postings

The zero sum of each journal entry is checked at commit by a deferred constraint trigger on
PostgreSQL (django-hordak's approach), so an entry written behind the service's back cannot leave
the ledger unbalanced. SQLite has no deferred triggers; there the service's own check applies,
and the immutability triggers below exist on both dialects.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IMMUTABLE = ("journal_entries", "postings")

# The check is written out in each trigger function rather than shared through a helper: a
# nested PL/pgSQL call costs about a third of the check itself, and it runs for every row.
_CHECK = """
DECLARE
    total bigint;
    legs integer;
BEGIN
    SELECT coalesce(sum(amount), 0), count(*) INTO total, legs
      FROM postings WHERE entry_id = {entry};
    IF total <> 0 OR legs < 2 THEN
        RAISE EXCEPTION 'journal entry % is not a balanced double entry (% postings, sum %)',
            {entry}, legs, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
"""
PG_BALANCED = (
    "CREATE FUNCTION kouza_posting_balanced() RETURNS trigger LANGUAGE plpgsql AS $$"
    + _CHECK.format(entry="NEW.entry_id")
    + "$$;\n"
    + "CREATE FUNCTION kouza_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$"
    + _CHECK.format(entry="NEW.id")
    + "$$;"
)

PG_IMMUTABLE = """
CREATE FUNCTION kouza_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable; post a reversing entry instead', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
"""


def _postgres_upgrade() -> None:
    op.execute(PG_BALANCED)
    op.execute(PG_IMMUTABLE)
    for table, function in (
        ("postings", "kouza_posting_balanced"),
        ("journal_entries", "kouza_entry_balanced"),
    ):
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_balanced AFTER INSERT ON {table} "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
    for table in IMMUTABLE:
        op.execute(
            f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION kouza_immutable()"
        )


def _sqlite_upgrade() -> None:
    for table in IMMUTABLE:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable; post a reversing "
                "entry instead'); END"
            )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgres_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("postings", "journal_entries"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_balanced ON {table}")
        for table in IMMUTABLE:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
        op.execute("DROP FUNCTION IF EXISTS kouza_entry_balanced()")
        op.execute("DROP FUNCTION IF EXISTS kouza_posting_balanced()")
        op.execute("DROP FUNCTION IF EXISTS kouza_immutable()")
    else:
        for table in IMMUTABLE:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
