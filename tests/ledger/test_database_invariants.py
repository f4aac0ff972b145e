"""Invariants the database enforces by itself, against writes that bypass the service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from kouza.ledger.models import EntryKind
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from tests.ledger.helpers import accounts, balances, float_account

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _funded_pair(rt: Runtime) -> tuple[int, int, int]:
    alice, bob = accounts(rt, "wallet:a", "wallet:b")
    source = float_account(rt)
    with rt.db.unit_of_work() as session:
        entry = ledger.transfer(
            session, kind=EntryKind.TOPUP, source=source, destination=alice, amount=1_000
        )
    return alice, bob, entry.id


class TestBehindTheServicesBack:
    def test_wallet_balance_cannot_go_negative(self, rt: Runtime) -> None:
        alice, _, _ = _funded_pair(rt)
        with pytest.raises(DatabaseError), rt.db.engine.begin() as connection:
            connection.execute(
                text("UPDATE ledger_accounts SET balance = -1 WHERE id = :id"), {"id": alice}
            )
        assert balances(rt, alice) == [1_000]

    def test_held_funds_count_against_the_floor(self, rt: Runtime) -> None:
        alice, _, _ = _funded_pair(rt)
        with pytest.raises(DatabaseError), rt.db.engine.begin() as connection:
            connection.execute(
                text("UPDATE ledger_accounts SET pending_out = 1001 WHERE id = :id"),
                {"id": alice},
            )

    def test_zero_amount_posting_refused(self, rt: Runtime) -> None:
        alice, _bob, entry_id = _funded_pair(rt)
        with pytest.raises(DatabaseError), rt.db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount, created_at) "
                    "VALUES (:e, :a, 0, :t)"
                ),
                {"e": entry_id, "a": alice, "t": NOW.replace(tzinfo=None)},
            )

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE postings SET amount = amount * 2",
            "DELETE FROM postings",
            "UPDATE journal_entries SET description = 'rewritten'",
            "DELETE FROM journal_entries",
        ],
    )
    def test_entries_and_postings_are_immutable(self, rt: Runtime, statement: str) -> None:
        _funded_pair(rt)
        with pytest.raises(DatabaseError, match="immutable"), rt.db.engine.begin() as connection:
            connection.execute(text(statement))

    def test_reversal_must_point_back(self, rt: Runtime) -> None:
        _funded_pair(rt)
        with pytest.raises(DatabaseError), rt.db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO journal_entries (kind, description, created_at) "
                    "VALUES ('reversal', 'orphan', :t)"
                ),
                {"t": NOW.replace(tzinfo=None)},
            )


@pytest.mark.postgres
class TestZeroSumTrigger:
    """PostgreSQL's deferred constraint trigger checks every entry at commit."""

    @pytest.fixture(autouse=True)
    def _postgres_only(self, rt: Runtime) -> None:
        if rt.db.dialect != "postgresql":
            pytest.skip("the deferred zero-sum trigger exists on PostgreSQL only")

    def _insert_entry(self, connection: object, legs: list[tuple[int, int]]) -> None:
        from sqlalchemy.engine import Connection

        assert isinstance(connection, Connection)
        entry_id = connection.execute(
            text(
                "INSERT INTO journal_entries (kind, description, created_at) "
                "VALUES ('adjustment', 'behind the back', now()) RETURNING id"
            )
        ).scalar_one()
        for account_id, amount in legs:
            connection.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount, created_at) "
                    "VALUES (:e, :a, :x, now())"
                ),
                {"e": entry_id, "a": account_id, "x": amount},
            )

    def test_unbalanced_entry_rejected_at_commit(self, rt: Runtime) -> None:
        alice, bob, _ = _funded_pair(rt)
        with pytest.raises(DatabaseError, match="not a balanced double entry"):
            with rt.db.engine.begin() as connection:
                connection.execute(text("UPDATE ledger_accounts SET balance = balance "))
                self._insert_entry(connection, [(alice, -100), (bob, 99)])
        assert balances(rt, alice, bob) == [1_000, 0]

    def test_single_leg_entry_rejected(self, rt: Runtime) -> None:
        alice, _, _ = _funded_pair(rt)
        with pytest.raises(DatabaseError, match="not a balanced double entry"):
            with rt.db.engine.begin() as connection:
                self._insert_entry(connection, [(alice, 0 + 5)])

    def test_entry_without_postings_rejected(self, rt: Runtime) -> None:
        _funded_pair(rt)
        with pytest.raises(DatabaseError, match="not a balanced double entry"):
            with rt.db.engine.begin() as connection:
                self._insert_entry(connection, [])

    def test_posting_added_to_old_entry_rejected(self, rt: Runtime) -> None:
        _alice, bob, entry_id = _funded_pair(rt)
        with pytest.raises(DatabaseError, match="not a balanced double entry"):
            with rt.db.engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO postings (entry_id, account_id, amount, created_at) "
                        "VALUES (:e, :a, 50, now())"
                    ),
                    {"e": entry_id, "a": bob},
                )

    def test_balanced_entry_behind_the_back_accepted(self, rt: Runtime) -> None:
        alice, bob, _ = _funded_pair(rt)
        with rt.db.engine.begin() as connection:
            self._insert_entry(connection, [(alice, -100), (bob, 100)])
