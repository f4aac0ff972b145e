"""The set-based ledger checks of migration 0010 (ADR 0017), against writes behind the service.

On PostgreSQL the zero sum is checked at the end of each statement that writes entries or
postings, and again at commit (a deferred constraint trigger on ``ledger_balance_checks``) for
every entry not balanced then; the references of postings to their entry and account are checked
per statement instead of by foreign keys, and the referenced rows cannot disappear. Every test
here would pass a write that the mechanism is there to refuse, were the mechanism missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from kouza.ledger.models import EntryKind
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from tests.ledger.helpers import accounts, balances, float_account, verified

NEW_ENTRY = text(
    "INSERT INTO journal_entries (kind, description, created_at) "
    "VALUES ('adjustment', 'behind the back', CURRENT_TIMESTAMP) RETURNING id"
)
NEW_POSTING = text(
    "INSERT INTO postings (entry_id, account_id, amount, created_at) "
    "VALUES (:e, :a, :x, CURRENT_TIMESTAMP)"
)
NOT_BALANCED = "not a balanced double entry"


def _funded(rt: Runtime) -> tuple[int, int, int]:
    """Two wallets, the first holding ¥1,000 through entry ``entry_id``."""
    alice, bob = accounts(rt, "wallet:a", "wallet:b")
    with rt.db.unit_of_work() as session:
        entry = ledger.transfer(
            session, kind=EntryKind.TOPUP, source=float_account(rt), destination=alice, amount=1_000
        )
    return alice, bob, entry.id


def _entry(connection: Connection) -> int:
    return int(connection.execute(NEW_ENTRY).scalar_one())


def _post(connection: Connection, entry_id: int, account_id: int, amount: int) -> None:
    connection.execute(NEW_POSTING, {"e": entry_id, "a": account_id, "x": amount})


def _one_statement(connection: Connection, legs: list[list[tuple[int, int]]]) -> None:
    """Write entries and their postings in one statement, as the service's batch does."""
    rows = ", ".join(f"({n}, {a}, {x})" for n, entry in enumerate(legs) for a, x in entry)
    connection.execute(
        text(
            "WITH e AS (INSERT INTO journal_entries (kind, description, created_at) "
            f"SELECT 'adjustment', n::text, now() FROM generate_series(0, {len(legs) - 1}) AS n "
            "RETURNING id, description::int AS n) "
            "INSERT INTO postings (entry_id, account_id, amount, created_at) "
            f"SELECT e.id, l.a, l.x, now() FROM (VALUES {rows}) AS l(n, a, x) JOIN e ON e.n = l.n"
        )
    )


def _queue_length(rt: Runtime) -> int:
    with rt.db.engine.connect() as connection:
        return int(
            connection.execute(text("SELECT count(*) FROM ledger_balance_checks")).scalar_one()
        )


@pytest.fixture
def pg(rt: Runtime) -> Iterator[Runtime]:
    if rt.db.dialect != "postgresql":
        pytest.skip("the statement-level ledger triggers exist on PostgreSQL only")
    yield rt


@pytest.mark.postgres
class TestZeroSumPerStatement:
    def test_unbalanced_entry_in_one_statement_rejected(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        with pytest.raises(DatabaseError, match=NOT_BALANCED), pg.db.engine.begin() as c:
            _one_statement(c, [[(alice, -100), (bob, 99)]])

    def test_one_unbalanced_entry_among_many_rejected(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        legs = [[(alice, -1), (bob, 1)] for _ in range(499)] + [[(alice, -1), (bob, 2)]]
        with pytest.raises(DatabaseError, match=NOT_BALANCED), pg.db.engine.begin() as c:
            _one_statement(c, legs)
        assert balances(pg, alice, bob) == [1_000, 0]

    def test_single_leg_in_one_statement_rejected(self, pg: Runtime) -> None:
        alice, _, _ = _funded(pg)
        with pytest.raises(DatabaseError, match=NOT_BALANCED), pg.db.engine.begin() as c:
            _one_statement(c, [[(alice, 0 + 7)]])

    def test_balanced_entries_in_one_statement_accepted_without_a_queue_row(
        self, pg: Runtime
    ) -> None:
        alice, bob, _ = _funded(pg)
        with pg.db.engine.begin() as c:
            _one_statement(c, [[(alice, -5), (bob, 5)], [(bob, -2), (alice, 2)]])
            assert c.execute(text("SELECT count(*) FROM ledger_balance_checks")).scalar() == 0

    def test_entry_balanced_then_given_another_posting_rejected(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        with pytest.raises(DatabaseError, match=NOT_BALANCED), pg.db.engine.begin() as c:
            entry = _entry(c)
            _post(c, entry, alice, -10)
            _post(c, entry, bob, 10)  # balanced at the end of this statement
            _post(c, entry, bob, 1)

    def test_net_zero_postings_after_an_unbalanced_one_rejected(self, pg: Runtime) -> None:
        """A statement whose postings net to zero is not re-checked: the entry's earlier
        imbalance must still be caught at commit."""
        alice, bob, _ = _funded(pg)
        with pytest.raises(DatabaseError, match=NOT_BALANCED), pg.db.engine.begin() as c:
            entry = _entry(c)
            _post(c, entry, alice, -10)
            c.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount, created_at) VALUES "
                    "(:e, :a, 5, now()), (:e, :b, -5, now())"
                ),
                {"e": entry, "a": alice, "b": bob},
            )

    def test_posting_added_in_the_statement_that_writes_a_new_balanced_entry(
        self, pg: Runtime
    ) -> None:
        """One statement: a balanced new entry and an extra posting to an old entry."""
        alice, bob, old_entry = _funded(pg)
        with pytest.raises(DatabaseError, match=NOT_BALANCED), pg.db.engine.begin() as c:
            new_entry = _entry(c)
            c.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount, created_at) VALUES "
                    "(:new, :a, -3, now()), (:new, :b, 3, now()), (:old, :b, 3, now())"
                ),
                {"new": new_entry, "old": old_entry, "a": alice, "b": bob},
            )

    def test_multi_statement_balanced_entry_accepted_and_queue_emptied(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        with pg.db.engine.begin() as c:
            entry = _entry(c)
            _post(c, entry, alice, -10)
            _post(c, entry, bob, 10)
            assert c.execute(text("SELECT count(*) FROM ledger_balance_checks")).scalar() > 0
        assert _queue_length(pg) == 0  # checked at commit, and the queue emptied


@pytest.mark.postgres
class TestQueueTampering:
    """Changing the queue of pending checks cannot skip one: the deferred trigger reads each
    queued row as it was inserted."""

    def _unbalanced(self, c: Connection, alice: int, bob: int) -> int:
        entry = _entry(c)
        _post(c, entry, alice, -100)
        _post(c, entry, bob, 99)
        return entry

    def test_deleting_the_queue_rows(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        with pytest.raises(DatabaseError, match=NOT_BALANCED), pg.db.engine.begin() as c:
            self._unbalanced(c, alice, bob)
            c.execute(text("DELETE FROM ledger_balance_checks"))

    def test_pointing_the_queue_rows_at_a_balanced_entry(self, pg: Runtime) -> None:
        alice, bob, good = _funded(pg)
        with pytest.raises(DatabaseError, match=NOT_BALANCED), pg.db.engine.begin() as c:
            self._unbalanced(c, alice, bob)
            c.execute(text("UPDATE ledger_balance_checks SET entry_id = :g"), {"g": good})

    def test_truncating_the_queue(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        with pytest.raises(DatabaseError, match="pending trigger events"):
            with pg.db.engine.begin() as c:
                self._unbalanced(c, alice, bob)
                c.execute(text("TRUNCATE ledger_balance_checks"))

    def test_checks_made_immediate_then_another_posting(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        with pytest.raises(DatabaseError, match=NOT_BALANCED), pg.db.engine.begin() as c:
            entry = _entry(c)
            _post(c, entry, alice, -10)
            _post(c, entry, bob, 10)
            c.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
            _post(c, entry, bob, 5)


@pytest.mark.postgres
class TestReferencesWithoutForeignKeys:
    """Every case the foreign keys postings → accounts and postings → entries caught."""

    def test_posting_to_missing_account_refused_at_once(self, pg: Runtime) -> None:
        alice, _, _ = _funded(pg)
        with pg.db.engine.connect() as c:
            entry = _entry(c)
            _post(c, entry, alice, -10)
            with pytest.raises(IntegrityError, match="ledger account 999999"):
                _post(c, entry, 999_999, 10)  # fails at the statement, not only at commit
            c.rollback()

    def test_posting_to_missing_entry_refused_at_once(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        with pytest.raises(IntegrityError, match="journal entry 999999"):
            with pg.db.engine.begin() as c:
                c.execute(
                    text(
                        "INSERT INTO postings (entry_id, account_id, amount, created_at) VALUES "
                        "(999999, :a, -5, now()), (999999, :b, 5, now())"
                    ),
                    {"a": alice, "b": bob},
                )

    def test_one_bad_reference_among_many(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        legs = [[(alice, -1), (bob, 1)] for _ in range(300)] + [[(alice, -1), (424_242, 1)]]
        with pytest.raises(IntegrityError, match="ledger account 424242"):
            with pg.db.engine.begin() as c:
                _one_statement(c, legs)

    def test_posting_to_entry_of_uncommitted_transaction_refused(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        with pg.db.engine.connect() as other:
            entry = _entry(other)  # not committed: invisible to everyone else
            with pytest.raises(IntegrityError, match=f"journal entry {entry}"):
                with pg.db.engine.begin() as c:
                    _post(c, entry, alice, -1)
            other.rollback()
        assert balances(pg, alice, bob) == [1_000, 0]

    @pytest.mark.parametrize(
        "statement",
        [
            "DELETE FROM ledger_accounts WHERE id = :a",
            "DELETE FROM ledger_accounts",
            "UPDATE ledger_accounts SET id = id + 1000 WHERE id = :a",
        ],
    )
    def test_referenced_account_cannot_disappear(self, pg: Runtime, statement: str) -> None:
        alice, _, _ = _funded(pg)
        with pytest.raises(IntegrityError, match="never deleted nor renumbered"):
            with pg.db.engine.begin() as c:
                c.execute(text(statement), {"a": alice})

    @pytest.mark.parametrize(
        "statement",
        [
            "DELETE FROM journal_entries WHERE id = :e",
            "UPDATE journal_entries SET id = id + 1000 WHERE id = :e",
        ],
    )
    def test_referenced_entry_cannot_disappear(self, pg: Runtime, statement: str) -> None:
        _, _, entry = _funded(pg)
        with pytest.raises(DatabaseError, match="immutable"), pg.db.engine.begin() as c:
            c.execute(text(statement), {"e": entry})

    @pytest.mark.parametrize(
        "statement",
        [
            "TRUNCATE ledger_accounts CASCADE",
            "TRUNCATE journal_entries CASCADE",
            "TRUNCATE ledger_accounts, journal_entries CASCADE",
        ],
    )
    def test_truncate_of_referenced_table_refused(self, pg: Runtime, statement: str) -> None:
        _funded(pg)
        with pytest.raises(IntegrityError, match="would leave postings without"):
            with pg.db.engine.begin() as c:
                c.execute(text(statement))
        assert verified(pg)

    def test_truncate_of_postings_alone_refused(self, pg: Runtime) -> None:
        _funded(pg)
        with pytest.raises(IntegrityError, match="without postings"):
            with pg.db.engine.begin() as c:
                c.execute(text("TRUNCATE postings"))

    def test_truncate_refused_above_read_committed(self, pg: Runtime) -> None:
        alice, bob, _ = _funded(pg)
        with pytest.raises(DatabaseError, match="READ COMMITTED"):
            with pg.db.engine.begin() as c:
                c.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                c.execute(text("TRUNCATE ledger_accounts, journal_entries, postings CASCADE"))
        assert balances(pg, alice, bob) == [1_000, 0]

    def test_truncate_of_the_whole_ledger_allowed(self, pg: Runtime) -> None:
        _funded(pg)
        with pg.db.engine.begin() as c:
            c.execute(text("TRUNCATE ledger_accounts, journal_entries, postings CASCADE"))
            assert c.execute(text("SELECT count(*) FROM postings")).scalar() == 0


class TestReferencesOnBothDialects:
    """The same reference rules hold on SQLite, through its own triggers."""

    def test_posting_to_missing_account_refused(self, rt: Runtime) -> None:
        _, _, entry = _funded(rt)
        with pytest.raises(IntegrityError), rt.db.engine.begin() as c:
            _post(c, entry, 999_999, 10)

    def test_posting_to_missing_entry_refused(self, rt: Runtime) -> None:
        alice, _, _ = _funded(rt)
        with pytest.raises(IntegrityError), rt.db.engine.begin() as c:
            _post(c, 999_999, alice, 10)

    @pytest.mark.parametrize(
        "statement",
        [
            "DELETE FROM ledger_accounts WHERE id = :a",
            "UPDATE ledger_accounts SET id = id + 1000 WHERE id = :a",
        ],
    )
    def test_account_cannot_disappear(self, rt: Runtime, statement: str) -> None:
        alice, _, _ = _funded(rt)
        with pytest.raises(IntegrityError), rt.db.engine.begin() as c:
            c.execute(text(statement), {"a": alice})
        assert balances(rt, alice) == [1_000]
