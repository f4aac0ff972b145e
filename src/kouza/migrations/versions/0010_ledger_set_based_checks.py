"""ledger: set-based zero-sum and reference checks per statement instead of per row

On PostgreSQL the zero sum of each entry and the references of each posting (to its entry and
its account) were checked row by row: three deferred zero-sum trigger calls and two foreign-key
lookups per transfer, about two thirds of the server's time for a batch (ADR 0017). They are
now checked once per statement, set-based, by triggers with transition tables:

* after every statement that inserts postings: every new posting's entry and account exist
  (else ``foreign_key_violation``, at once, as the foreign keys did), and every entry whose new
  postings do not net to zero over at least two legs is queued in ``ledger_balance_checks``;
* after every statement that inserts entries: every new entry without postings is queued;
* a deferred constraint trigger on ``ledger_balance_checks`` checks each queued entry at commit
  (``SET CONSTRAINTS … IMMEDIATE`` included) and deletes its queue row. The trigger reads the
  row as it was inserted, so deleting or changing a queue row cannot skip its check.

An entry written whole in one statement costs no queue row and no deferred check; one built over
several statements is checked at commit, as before. Sound because postings can only be added
(they are immutable): a statement whose postings net to zero over two or more legs leaves an
entry's sum and its state as they were — balanced, or already queued by an earlier statement
(an entry without postings is queued by the statement that wrote it) — and any other is queued.

What the foreign keys also did on the referenced side is kept by other means: entries cannot be
deleted or changed (0002), ledger accounts can no longer be deleted and no UPDATE may set their
id, and ``TRUNCATE`` of ``ledger_accounts`` or ``journal_entries`` fails unless ``postings`` is
left empty (e.g. truncated in the same command), at READ COMMITTED only, so the check sees every
committed posting. ``TRUNCATE postings`` alone fails while entries remain (they would be left
without postings). SQLite gets the same reference rules as row triggers; its zero sum stays the
service's check (no deferred triggers there).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kouza.kit.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEYS = (
    ("fk_postings_entry_id_journal_entries", "entry_id", "journal_entries"),
    ("fk_postings_account_id_ledger_accounts", "account_id", "ledger_accounts"),
)

# Plans of these queries are cached per connection, with the size of the first transition table
# they saw, and none takes parameters (no re-planning per call). So no plan may depend on row
# estimates a batch could get wrong: existence is one primary-key `= ANY(array)` lookup per
# table, the probe for postings of new entries a correlated scalar subquery per entry (an
# ix_postings_entry probe; a join could turn into a scan of all postings). `jit = off`: the cost
# estimate of a large batch would otherwise cross jit_above_cost and pay milliseconds of
# compilation for microseconds of work.
PG_FUNCTIONS = """
CREATE FUNCTION kouza_postings_inserted() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    referenced boolean;
    missing record;
BEGIN
    -- what the foreign keys did: every account and entry named exists
    WITH named AS (SELECT array_agg(DISTINCT account_id) AS accounts,
                          array_agg(DISTINCT entry_id) AS entries FROM new_postings)
    SELECT (SELECT count(*) FROM ledger_accounts WHERE id = ANY(named.accounts))
               = coalesce(cardinality(named.accounts), 0)
       AND (SELECT count(*) FROM journal_entries WHERE id = ANY(named.entries))
               = coalesce(cardinality(named.entries), 0)
      INTO referenced FROM named;
    IF NOT referenced THEN
        SELECT n.account_id, n.entry_id,
               EXISTS (SELECT 1 FROM ledger_accounts AS a WHERE a.id = n.account_id) AS account
          INTO missing FROM new_postings AS n
         WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts AS a WHERE a.id = n.account_id)
            OR NOT EXISTS (SELECT 1 FROM journal_entries AS e WHERE e.id = n.entry_id)
         LIMIT 1;
        IF NOT missing.account THEN
            RAISE EXCEPTION 'posting refers to ledger account %, which does not exist',
                missing.account_id USING ERRCODE = 'foreign_key_violation';
        END IF;
        RAISE EXCEPTION 'posting refers to journal entry %, which does not exist',
            missing.entry_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- the zero sum: an entry given postings that do not net to zero over at least two legs is
    -- checked, whole, at commit. One given a net-zero set of at least two keeps the state it had
    -- (balanced, or queued already by an earlier statement), so it needs no check.
    INSERT INTO ledger_balance_checks (entry_id)
    SELECT entry_id FROM new_postings GROUP BY entry_id
    HAVING sum(amount) <> 0 OR count(*) < 2;
    RETURN NULL;
END $$;

CREATE FUNCTION kouza_entries_inserted() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    -- an entry with postings was checked by the postings trigger of the statement that wrote
    -- them (this one: a posting cannot name an entry that does not exist yet)
    INSERT INTO ledger_balance_checks (entry_id)
    SELECT n.id FROM new_entries AS n
     WHERE (SELECT p.id FROM postings AS p WHERE p.entry_id = n.id LIMIT 1) IS NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION kouza_entry_check_due() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    legs integer;
BEGIN
    SELECT coalesce(sum(amount), 0), count(*) INTO total, legs
      FROM postings WHERE entry_id = NEW.entry_id;
    IF total <> 0 OR legs < 2 THEN
        RAISE EXCEPTION 'journal entry % is not a balanced double entry (% postings, sum %)',
            NEW.entry_id, legs, total USING ERRCODE = 'check_violation';
    END IF;
    DELETE FROM ledger_balance_checks WHERE id = NEW.id;
    RETURN NULL;
END $$;

CREATE FUNCTION kouza_account_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger account % is part of the books: it is never deleted nor renumbered',
        OLD.id USING ERRCODE = 'restrict_violation';
END $$;

CREATE FUNCTION kouza_account_renumbered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger accounts are part of the books: never deleted nor renumbered (no '
        'UPDATE may set their id)' USING ERRCODE = 'restrict_violation';
END $$;

CREATE FUNCTION kouza_postings_still_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'TRUNCATE % only at READ COMMITTED (it must see every posting)',
            TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM postings) THEN
        RAISE EXCEPTION 'TRUNCATE % would leave postings without their %', TG_TABLE_NAME,
            TG_TABLE_NAME USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION kouza_entries_still_posted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'TRUNCATE postings only at READ COMMITTED (it must see every entry)'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM journal_entries) THEN
        RAISE EXCEPTION 'TRUNCATE postings would leave journal entries without postings'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""

PG_TRIGGERS = (
    "CREATE TRIGGER postings_checked AFTER INSERT ON postings "
    "REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT "
    "EXECUTE FUNCTION kouza_postings_inserted()",
    "CREATE TRIGGER journal_entries_checked AFTER INSERT ON journal_entries "
    "REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT "
    "EXECUTE FUNCTION kouza_entries_inserted()",
    "CREATE CONSTRAINT TRIGGER ledger_balance_checks_due AFTER INSERT ON ledger_balance_checks "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kouza_entry_check_due()",
    "CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts "
    "FOR EACH ROW EXECUTE FUNCTION kouza_account_kept()",
    # per statement: a row-level BEFORE UPDATE trigger, even one that never fires, makes every
    # balance update fetch and lock its row once more
    "CREATE TRIGGER ledger_accounts_id_fixed BEFORE UPDATE OF id ON ledger_accounts "
    "FOR EACH STATEMENT EXECUTE FUNCTION kouza_account_renumbered()",
    "CREATE TRIGGER ledger_accounts_truncate AFTER TRUNCATE ON ledger_accounts "
    "FOR EACH STATEMENT EXECUTE FUNCTION kouza_postings_still_referenced()",
    "CREATE TRIGGER journal_entries_truncate AFTER TRUNCATE ON journal_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION kouza_postings_still_referenced()",
    "CREATE TRIGGER postings_truncate AFTER TRUNCATE ON postings "
    "FOR EACH STATEMENT EXECUTE FUNCTION kouza_entries_still_posted()",
)
PG_DROP = (
    "DROP TRIGGER IF EXISTS postings_truncate ON postings",
    "DROP TRIGGER IF EXISTS journal_entries_truncate ON journal_entries",
    "DROP TRIGGER IF EXISTS ledger_accounts_truncate ON ledger_accounts",
    "DROP TRIGGER IF EXISTS ledger_accounts_id_fixed ON ledger_accounts",
    "DROP TRIGGER IF EXISTS ledger_accounts_no_delete ON ledger_accounts",
    "DROP TRIGGER IF EXISTS journal_entries_checked ON journal_entries",
    "DROP TRIGGER IF EXISTS postings_checked ON postings",
    "DROP FUNCTION IF EXISTS kouza_entries_still_posted()",
    "DROP FUNCTION IF EXISTS kouza_postings_still_referenced()",
    "DROP FUNCTION IF EXISTS kouza_account_renumbered()",
    "DROP FUNCTION IF EXISTS kouza_account_kept()",
    "DROP FUNCTION IF EXISTS kouza_entries_inserted()",
    "DROP FUNCTION IF EXISTS kouza_postings_inserted()",
)

# 0002's per-row zero-sum triggers, replaced here and restored by the downgrade
_ROW_CHECK = """
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
PG_ROW_CHECKS = (
    "CREATE FUNCTION kouza_posting_balanced() RETURNS trigger LANGUAGE plpgsql AS $$"
    + _ROW_CHECK.format(entry="NEW.entry_id")
    + "$$;\n"
    + "CREATE FUNCTION kouza_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$"
    + _ROW_CHECK.format(entry="NEW.id")
    + "$$;"
)

SQLITE_TRIGGERS = (
    "CREATE TRIGGER postings_references BEFORE INSERT ON postings "
    "WHEN NOT EXISTS (SELECT 1 FROM journal_entries WHERE id = NEW.entry_id) "
    "OR NOT EXISTS (SELECT 1 FROM ledger_accounts WHERE id = NEW.account_id) "
    "BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: a posting refers to a journal "
    "entry or ledger account that does not exist'); END",
    "CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts "
    "BEGIN SELECT RAISE(ABORT, 'ledger accounts are part of the books: never deleted'); END",
    "CREATE TRIGGER ledger_accounts_id_fixed BEFORE UPDATE OF id ON ledger_accounts "
    "WHEN OLD.id IS NOT NEW.id "
    "BEGIN SELECT RAISE(ABORT, 'ledger accounts are part of the books: never renumbered'); END",
)
SQLITE_IMMUTABLE_POSTINGS = tuple(
    f"CREATE TRIGGER postings_no_{verb.lower()} BEFORE {verb} ON postings "
    "BEGIN SELECT RAISE(ABORT, 'postings rows are immutable; post a reversing "
    "entry instead'); END"
    for verb in ("UPDATE", "DELETE")
)


def _create_queue() -> None:
    op.create_table(
        "ledger_balance_checks",
        sa.Column("id", kouza.kit.db.BigId, autoincrement=True, nullable=False),
        sa.Column("entry_id", kouza.kit.db.BigId, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_balance_checks")),
    )


def upgrade() -> None:
    _create_queue()
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER postings_balanced ON postings")
        op.execute("DROP TRIGGER journal_entries_balanced ON journal_entries")
        op.execute("DROP FUNCTION kouza_posting_balanced()")
        op.execute("DROP FUNCTION kouza_entry_balanced()")
        for name, _column, _table in FOREIGN_KEYS:
            op.drop_constraint(name, "postings", type_="foreignkey")
        op.execute(PG_FUNCTIONS)
        for statement in PG_TRIGGERS:
            op.execute(statement)
        return
    # SQLite rebuilds the table to drop a foreign key, which drops its triggers with it
    with op.batch_alter_table("postings") as batch_op:
        for name, _column, _table in FOREIGN_KEYS:
            batch_op.drop_constraint(name, type_="foreignkey")
    for statement in SQLITE_IMMUTABLE_POSTINGS + SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_DROP:
            op.execute(statement)
        op.drop_table("ledger_balance_checks")
        op.execute("DROP FUNCTION IF EXISTS kouza_entry_check_due()")
        for name, column, table in FOREIGN_KEYS:
            op.create_foreign_key(name, "postings", table, [column], ["id"])
        op.execute(PG_ROW_CHECKS)
        for table, function in (
            ("postings", "kouza_posting_balanced"),
            ("journal_entries", "kouza_entry_balanced"),
        ):
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {table}_balanced AFTER INSERT ON {table} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
        return
    for name in ("postings_references", "ledger_accounts_no_delete", "ledger_accounts_id_fixed"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("ledger_balance_checks")
    with op.batch_alter_table("postings") as batch_op:
        for name, column, table in FOREIGN_KEYS:
            batch_op.create_foreign_key(name, table, [column], ["id"])
    for statement in SQLITE_IMMUTABLE_POSTINGS:
        op.execute(statement)
