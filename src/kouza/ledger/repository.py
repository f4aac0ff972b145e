"""All SQL of the ledger.

The hot path (posting entries) uses SQLAlchemy Core on purpose: one ``SELECT … FOR UPDATE`` of
the touched accounts in id order, one ``UPDATE … FROM (VALUES …)`` that applies every balance
change of the batch and refuses any that would overdraw a non-negative account, one multi-row
``INSERT`` of entries and one of postings — four statements whether the batch holds one transfer
or ten thousand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    cast,
    and_,
    column,
    func,
    insert,
    or_,
    select,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kouza.kit.db import BigId
from kouza.ledger.models import (
    NON_NEGATIVE_KINDS,
    Hold,
    HoldStatus,
    JournalEntry,
    LedgerAccount,
    Posting,
)

_CHUNK = 4000
_RESTRICTED = [kind.value for kind in NON_NEGATIVE_KINDS]


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_account_if_absent(
    session: Session, *, code: str, kind: str, name: str, now: datetime
) -> None:
    """Create the account unless one with ``code`` exists (no check-then-insert race)."""
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(LedgerAccount).values(
        code=code, kind=kind, name=name, balance=0, pending_out=0, pending_in=0, created_at=now
    )
    session.execute(statement.on_conflict_do_nothing(index_elements=["code"]))


def account_by_code(session: Session, code: str) -> LedgerAccount | None:
    return session.scalars(select(LedgerAccount).where(LedgerAccount.code == code)).one_or_none()


def account_by_id(session: Session, account_id: int) -> LedgerAccount | None:
    return session.get(LedgerAccount, account_id, populate_existing=True)


def lock_accounts(session: Session, account_ids: Iterable[int]) -> dict[int, str]:
    """Lock accounts in id order; returns id → kind of those that exist."""
    ids = sorted(set(account_ids))
    found: dict[int, str] = {}
    for chunk in _chunks(ids):
        rows = session.execute(
            select(LedgerAccount.id, LedgerAccount.kind)
            .where(LedgerAccount.id.in_(chunk))
            .order_by(LedgerAccount.id)
            .with_for_update()
        )
        found.update({row.id: row.kind for row in rows})
    return found


def apply_balance_deltas(session: Session, deltas: Mapping[int, int]) -> set[int]:
    """Add each delta to its account's balance; returns the ids refused (would overdraw)."""
    refused: set[int] = set()
    items = sorted(deltas.items())
    for chunk in _chunks(items):
        table = (
            values(column("id", BigId), column("delta", BigInteger), name="deltas")
            .data(list(chunk))
            .cte("deltas")
        )
        statement = (
            update(LedgerAccount)
            .where(LedgerAccount.id == table.c.id)
            .where(
                or_(
                    LedgerAccount.kind.not_in(_RESTRICTED),
                    LedgerAccount.balance - LedgerAccount.pending_out + table.c.delta >= 0,
                )
            )
            .values(balance=LedgerAccount.balance + table.c.delta)
            .returning(LedgerAccount.id)
        )
        applied = set(session.scalars(statement))
        refused |= {account_id for account_id, _ in chunk} - applied
    return refused


def adjust_pending(
    session: Session, *, account_id: int, pending_out: int = 0, pending_in: int = 0
) -> bool:
    """Change the pending totals of one account; False if it would overdraw it."""
    statement = (
        update(LedgerAccount)
        .where(LedgerAccount.id == account_id)
        .where(
            or_(
                LedgerAccount.kind.not_in(_RESTRICTED),
                pending_out <= 0,
                LedgerAccount.balance - LedgerAccount.pending_out - pending_out >= 0,
            )
        )
        .values(
            pending_out=LedgerAccount.pending_out + pending_out,
            pending_in=LedgerAccount.pending_in + pending_in,
        )
        .returning(LedgerAccount.id)
    )
    return session.scalars(statement).first() is not None


def insert_entries(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert entries; returns their ids in the order given."""
    ids: list[int] = []
    for chunk in _chunks(rows, 1000):
        result = session.execute(
            insert(JournalEntry).returning(JournalEntry.id, sort_by_parameter_order=True),
            list(chunk),
        )
        ids.extend(result.scalars())
    return ids


def insert_postings(session: Session, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows, 2000):
        session.execute(insert(Posting), list(chunk))


def entries_by_keys(session: Session, keys: Sequence[str]) -> dict[str, JournalEntry]:
    found: dict[str, JournalEntry] = {}
    for chunk in _chunks(keys):
        for entry in session.scalars(
            select(JournalEntry).where(JournalEntry.idempotency_key.in_(chunk))
        ):
            assert entry.idempotency_key is not None
            found[entry.idempotency_key] = entry
    return found


def postings_of(session: Session, entry_ids: Sequence[int]) -> dict[int, list[Posting]]:
    result: dict[int, list[Posting]] = {entry_id: [] for entry_id in entry_ids}
    for chunk in _chunks(entry_ids):
        for posting in session.scalars(
            select(Posting).where(Posting.entry_id.in_(chunk)).order_by(Posting.id)
        ):
            result[posting.entry_id].append(posting)
    return result


def entry_by_id(session: Session, entry_id: int) -> JournalEntry | None:
    return session.get(JournalEntry, entry_id)


def reversal_of(session: Session, entry_id: int) -> JournalEntry | None:
    return session.scalars(
        select(JournalEntry).where(JournalEntry.reverses_id == entry_id)
    ).one_or_none()


def lock_hold(session: Session, hold_id: int) -> Hold | None:
    return session.scalars(
        select(Hold).where(Hold.id == hold_id).with_for_update().execution_options(
            populate_existing=True
        )
    ).one_or_none()


def hold_by_key(session: Session, key: str) -> Hold | None:
    return session.scalars(select(Hold).where(Hold.idempotency_key == key)).one_or_none()


def expired_hold_ids(
    session: Session, *, now: datetime, source_account_id: int | None = None
) -> list[int]:
    statement = select(Hold.id).where(
        Hold.status == HoldStatus.PENDING.value, Hold.expires_at <= now
    )
    if source_account_id is not None:
        statement = statement.where(Hold.source_account_id == source_account_id)
    return list(session.scalars(statement.order_by(Hold.id)))


@dataclass(frozen=True)
class StatementRow:
    posting_id: int
    entry_id: int
    kind: str
    description: str
    reference: dict[str, Any] | None
    amount: int
    balance_after: int
    created_at: datetime


def statement_rows(
    session: Session, account_id: int, *, since: datetime | None, limit: int, before_id: int | None
) -> list[StatementRow]:
    """Postings of one account, newest first, with the balance after each."""
    running = cast(func.sum(Posting.amount).over(order_by=Posting.id), BigInteger).label(
        "balance_after"
    )
    inner = (
        select(
            Posting.id.label("posting_id"),
            Posting.entry_id,
            JournalEntry.kind,
            JournalEntry.description,
            JournalEntry.reference,
            Posting.amount,
            running,
            Posting.created_at,
        )
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(Posting.account_id == account_id)
        .subquery()
    )
    statement = select(inner).order_by(inner.c.posting_id.desc()).limit(limit)
    if since is not None:
        statement = statement.where(inner.c.created_at >= since)
    if before_id is not None:
        statement = statement.where(inner.c.posting_id < before_id)
    return [StatementRow(**row._mapping) for row in session.execute(statement)]


def outflow_since(
    session: Session, account_id: int, *, since: datetime, kinds: Sequence[str]
) -> int:
    """Yen that left ``account_id`` through entries of ``kinds`` since ``since`` (≥ 0)."""
    statement = (
        select(func.coalesce(func.sum(Posting.amount), 0))
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(
            and_(
                Posting.account_id == account_id,
                Posting.created_at >= since,
                Posting.amount < 0,
                JournalEntry.kind.in_(kinds),
            )
        )
    )
    return -int(session.scalar(statement) or 0)


def inflow_since(
    session: Session, account_id: int, *, since: datetime, kinds: Sequence[str]
) -> int:
    """Yen that reached ``account_id`` through entries of ``kinds`` since ``since``."""
    statement = (
        select(func.coalesce(func.sum(Posting.amount), 0))
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(
            and_(
                Posting.account_id == account_id,
                Posting.created_at >= since,
                Posting.amount > 0,
                JournalEntry.kind.in_(kinds),
            )
        )
    )
    return int(session.scalar(statement) or 0)


# --- verification ------------------------------------------------------------------------


def balance_mismatches(session: Session) -> list[tuple[int, str, int, int]]:
    """(id, code, cached balance, sum of postings) where they differ."""
    total = cast(func.coalesce(func.sum(Posting.amount), 0), BigInteger)
    statement = (
        select(LedgerAccount.id, LedgerAccount.code, LedgerAccount.balance, total)
        .outerjoin(Posting, Posting.account_id == LedgerAccount.id)
        .group_by(LedgerAccount.id, LedgerAccount.code, LedgerAccount.balance)
        .having(LedgerAccount.balance != total)
    )
    return [tuple(row) for row in session.execute(statement)]  # type: ignore[misc]


def pending_mismatches(session: Session) -> list[tuple[int, str, str, int, int]]:
    """(id, code, which, cached, recomputed) for pending_out / pending_in caches."""
    problems: list[tuple[int, str, str, int, int]] = []
    for which, side in (("pending_out", Hold.source_account_id),
                        ("pending_in", Hold.destination_account_id)):
        held = (
            select(side.label("account_id"), func.sum(Hold.amount).label("held"))
            .where(Hold.status == HoldStatus.PENDING.value)
            .group_by(side)
            .subquery()
        )
        cached = getattr(LedgerAccount, which)
        recomputed = cast(func.coalesce(held.c.held, 0), BigInteger)
        statement = (
            select(LedgerAccount.id, LedgerAccount.code, cached, recomputed)
            .outerjoin(held, held.c.account_id == LedgerAccount.id)
            .where(cached != recomputed)
        )
        problems += [(row[0], row[1], which, row[2], row[3]) for row in session.execute(statement)]
    return problems


def unbalanced_entries(session: Session) -> list[tuple[int, int, int]]:
    """(entry id, sum, posting count) for entries that are not balanced double entries."""
    total = cast(func.coalesce(func.sum(Posting.amount), 0), BigInteger)
    count = func.count(Posting.id)
    statement = (
        select(JournalEntry.id, total, count)
        .outerjoin(Posting, Posting.entry_id == JournalEntry.id)
        .group_by(JournalEntry.id)
        .having(or_(total != 0, count < 2))
    )
    return [tuple(row) for row in session.execute(statement)]  # type: ignore[misc]


def negative_restricted_accounts(session: Session) -> list[tuple[int, str, int]]:
    statement = select(LedgerAccount.id, LedgerAccount.code, LedgerAccount.balance).where(
        LedgerAccount.kind.in_(_RESTRICTED),
        LedgerAccount.balance - LedgerAccount.pending_out < 0,
    )
    return [tuple(row) for row in session.execute(statement)]  # type: ignore[misc]


def counts(session: Session) -> tuple[int, int, int, int]:
    """(accounts, entries, postings, sum of all balances)."""
    accounts = session.scalar(select(func.count(LedgerAccount.id))) or 0
    entries = session.scalar(select(func.count(JournalEntry.id))) or 0
    postings = session.scalar(select(func.count(Posting.id))) or 0
    total = session.scalar(select(func.coalesce(func.sum(LedgerAccount.balance), 0))) or 0
    return int(accounts), int(entries), int(postings), int(total)
