"""All SQL of the ledger.

The hot path (posting entries) is plain SQL with cached statements, per dialect. On PostgreSQL
a call is one statement whether it posts one transfer or ten thousand: it locks the touched
accounts in id order, applies every balance change while refusing any that would overdraw a
non-negative account, and only then inserts the entries and their postings. A batch sends its
rows as JSON (:data:`_PG_WRITE`); a single entry — the request path — has a statement of its own
with scalar parameters (:func:`_pg_write_one_statement`), which PostgreSQL plans once per
connection instead of once per call (ADR 0014). SQLite runs in-process, so there the same steps
are per-row statements and ``executemany``; the write lock taken by ``BEGIN IMMEDIATE`` makes
``max(id) + 1`` a safe id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from psycopg.types.numeric import Int8
from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

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
    # populate_existing: balances change through Core statements the identity map cannot see
    statement = select(LedgerAccount).where(LedgerAccount.code == code)
    return session.scalars(statement.execution_options(populate_existing=True)).one_or_none()


def account_ids_by_codes(session: Session, codes: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(codes))):
        rows = session.execute(
            select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_(chunk))
        )
        found.update({str(row[0]): int(row[1]) for row in rows})
    return found


def account_by_id(session: Session, account_id: int) -> LedgerAccount | None:
    return session.get(LedgerAccount, account_id, populate_existing=True)


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _pg_array(numbers: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers: cheaper to send than a bound list, and it lets
    the planner see how many rows to expect (so it picks the primary-key index)."""
    return "{" + ",".join(map(str, map(int, numbers))) + "}"


_PG_LOCK = text(
    "SELECT id, kind FROM ledger_accounts WHERE id = ANY(CAST(:ids AS bigint[])) "
    "ORDER BY id FOR UPDATE"
)
_SQLITE_LOCK = text("SELECT id, kind FROM ledger_accounts WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_FLOOR = f"(kind NOT IN {tuple(_RESTRICTED)!r} OR balance - pending_out + {{delta}} >= 0)"
# The MATERIALIZED CTE locks the rows in id order before (or as) the UPDATE reaches them: the
# UPDATE can only touch a row the CTE has already emitted, so locks are always taken in id order
# and two concurrent writers cannot deadlock — in one round trip instead of two.
_PG_APPLY = text(
    "WITH locked AS MATERIALIZED (SELECT id FROM ledger_accounts "
    "WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR UPDATE) "
    "UPDATE ledger_accounts AS a SET balance = a.balance + d.delta "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:deltas AS bigint[])) AS d(id, delta) "
    "JOIN locked ON locked.id = d.id WHERE a.id = d.id AND "
    + _FLOOR.replace("kind", "a.kind")
    .replace("balance -", "a.balance -")
    .replace("pending_out", "a.pending_out")
    .format(delta="d.delta")
    + " RETURNING a.id"
)
_SQLITE_APPLY = text(
    "UPDATE ledger_accounts SET balance = balance + d.delta FROM (SELECT "
    "json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS delta "
    "FROM json_each(:deltas)) AS d WHERE ledger_accounts.id = d.id AND "
    + _FLOOR.format(delta="d.delta")
    + " RETURNING ledger_accounts.id"
)


def existing_accounts(session: Session, account_ids: Iterable[int]) -> set[int]:
    """Which of these account ids exist."""
    ids = sorted(set(account_ids))
    return set(session.scalars(select(LedgerAccount.id).where(LedgerAccount.id.in_(ids))))


def lock_accounts(session: Session, account_ids: Iterable[int]) -> dict[int, str]:
    """Lock accounts in id order; returns id → kind of those that exist."""
    ids = sorted(set(account_ids))
    connection = session.connection()
    postgres = _is_postgres(session)
    statement = _PG_LOCK if postgres else _SQLITE_LOCK
    found: dict[int, str] = {}
    for chunk in _chunks(ids):
        rows = connection.execute(statement, {"ids": _pg_array(chunk) if postgres else chunk})
        found.update({int(row[0]): str(row[1]) for row in rows})
    return found


def apply_balance_deltas(session: Session, deltas: Mapping[int, int]) -> set[int]:
    """Lock (in id order) and add each delta to its account's balance.

    Returns the ids not updated: unknown accounts, or ones the change would overdraw.
    """
    connection = session.connection()
    items = sorted(deltas.items())
    applied: set[int] = set()
    postgres = _is_postgres(session)
    for chunk in _chunks(items):
        if postgres:
            parameters = {
                "ids": _pg_array(i for i, _ in chunk),
                "deltas": _pg_array(d for _, d in chunk),
            }
            applied.update(connection.execute(_PG_APPLY, parameters).scalars())
        else:
            parameters = {"deltas": json.dumps(chunk)}
            applied.update(int(i) for i in connection.execute(_SQLITE_APPLY, parameters).scalars())
    return {account_id for account_id, _ in items} - applied


def adjust_pending(
    session: Session, *, account_id: int, pending_out: int = 0, pending_in: int = 0
) -> bool:
    """Change the pending totals of one account; False if it would overdraw it."""
    statement = update(LedgerAccount).where(LedgerAccount.id == account_id)
    if pending_out > 0:  # reserving more: the floor applies; releasing never fails
        statement = statement.where(
            or_(
                LedgerAccount.kind.not_in(_RESTRICTED),
                LedgerAccount.balance - LedgerAccount.pending_out - pending_out >= 0,
            )
        )
    statement = statement.values(
        pending_out=LedgerAccount.pending_out + pending_out,
        pending_in=LedgerAccount.pending_in + pending_in,
    ).returning(LedgerAccount.id)
    return session.scalars(statement).first() is not None


# One round trip writes a whole batch on PostgreSQL: lock the touched accounts in id order,
# apply every balance change under the floor, and — only if every change was accepted — write the
# entries (ids from the sequence in input order) and their postings. It returns the accounts
# whose change was applied and the new entry ids in input order. The sequence is looked up once
# (an InitPlan yielding a regclass): `nextval(pg_get_serial_sequence(…))` resolved the name for
# every row, 3 ms of CPU per 1,000 entries (ADR 0017). The legs come as three arrays.
_PG_WRITE = text(
    "WITH locked AS MATERIALIZED (SELECT id FROM ledger_accounts"
    "  WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR UPDATE),"
    " applied AS ("
    "  UPDATE ledger_accounts AS a SET balance = a.balance + d.delta"
    "  FROM unnest(CAST(:ids AS bigint[]), CAST(:deltas AS bigint[])) AS d(id, delta)"
    "  JOIN locked ON locked.id = d.id WHERE a.id = d.id AND "
    + _FLOOR.replace("kind", "a.kind")
    .replace("balance -", "a.balance -")
    .replace("pending_out", "a.pending_out")
    .format(delta="d.delta")
    + "  RETURNING a.id),"
    " source AS ("
    "  SELECT * FROM ROWS FROM (json_to_recordset(CAST(:entries AS json)) AS ("
    "    kind varchar, description varchar, idempotency_key varchar, request_hash varchar,"
    "    reverses_id bigint, reference json)) WITH ORDINALITY AS s("
    "    kind, description, idempotency_key, request_hash, reverses_id, reference, ord)"
    "  WHERE (SELECT count(*) FROM applied) = :accounts),"
    " numbered AS ("
    "  SELECT nextval((SELECT CAST(pg_get_serial_sequence('journal_entries', 'id') AS regclass)))"
    "    AS id, source.*"
    "  FROM source ORDER BY ord),"
    " new_entries AS ("
    "  INSERT INTO journal_entries (id, kind, description, idempotency_key, request_hash,"
    "    reverses_id, reference, created_at)"
    "  SELECT id, kind, description, idempotency_key, request_hash, reverses_id, reference,"
    "    :created_at FROM numbered),"
    " new_postings AS ("
    "  INSERT INTO postings (entry_id, account_id, amount, created_at)"
    "  SELECT numbered.id, leg.account_id, leg.amount, :created_at"
    "  FROM unnest(CAST(:leg_entries AS bigint[]), CAST(:leg_accounts AS bigint[]),"
    "    CAST(:leg_amounts AS bigint[])) AS leg(ord, account_id, amount)"
    "  JOIN numbered ON numbered.ord = leg.ord)"
    " SELECT (SELECT coalesce(array_agg(id), '{}') FROM applied) AS applied,"
    " (SELECT coalesce(array_agg(id ORDER BY ord), '{}') FROM numbered) AS entry_ids"
)
# One entry (the request path: a transfer, a payment, a top-up) gets its own statement, written
# for its number of legs: every value is a scalar parameter of a fixed type and every row set is a
# VALUES list, so the planner's estimates do not depend on the values. PostgreSQL then keeps one
# generic plan per prepared statement instead of planning each call (planning cost two thirds of
# executing), and there is no JSON to parse and no sequence to look up: the entry takes its id
# from the column default and hands it to its postings.
_PG_WRITE_ONE_TEMPLATE = (
    "WITH locked AS MATERIALIZED (SELECT id FROM ledger_accounts"
    "  WHERE id IN ({ids}) ORDER BY id FOR UPDATE),"
    " applied AS ("
    "  UPDATE ledger_accounts AS a SET balance = a.balance + d.delta"
    "  FROM (VALUES {deltas}) AS d(id, delta)"
    "  JOIN locked ON locked.id = d.id WHERE a.id = d.id AND "
    + _FLOOR.replace("kind", "a.kind")
    .replace("balance -", "a.balance -")
    .replace("pending_out", "a.pending_out")
    .format(delta="d.delta")
    + "  RETURNING a.id),"
    " entry AS ("
    "  INSERT INTO journal_entries (kind, description, idempotency_key, request_hash,"
    "    reverses_id, reference, created_at)"
    "  SELECT :kind, :description, :idempotency_key, :request_hash, :reverses_id,"
    "    CAST(:reference AS json), :created_at"
    "  WHERE (SELECT count(*) FROM applied) = {count}"
    "  RETURNING id),"
    " legs AS ("
    "  INSERT INTO postings (entry_id, account_id, amount, created_at)"
    "  SELECT entry.id, leg.account_id, leg.amount, :created_at"
    "  FROM entry CROSS JOIN (VALUES {legs}) AS leg(account_id, amount))"
    " SELECT ARRAY(SELECT id FROM applied) AS applied, (SELECT id FROM entry) AS entry_id"
)
_PG_WRITE_ONE: dict[int, TextClause] = {}
_PG_WRITE_ONE_MAX_LEGS = 16


def _pg_write_one_statement(legs: int) -> TextClause:
    """The single-entry write for an entry of ``legs`` legs (built once per leg count)."""
    statement = _PG_WRITE_ONE.get(legs)
    if statement is None:
        pairs = ", ".join(
            f"(CAST(:{{a}}{n} AS bigint), CAST(:{{b}}{n} AS bigint))" for n in range(legs)
        )
        statement = text(
            _PG_WRITE_ONE_TEMPLATE.format(
                ids=", ".join(f":d_id{n}" for n in range(legs)),
                deltas=pairs.format(a="d_id", b="d_delta"),
                count=legs,
                legs=pairs.format(a="l_account", b="l_amount"),
            )
        )
        _PG_WRITE_ONE[legs] = statement
    return statement


_SQLITE_NEXT_ENTRY_ID = text("SELECT coalesce(max(id), 0) + 1 FROM journal_entries")
_SQLITE_INSERT_ENTRY = text(
    "INSERT INTO journal_entries (id, kind, description, idempotency_key, request_hash, "
    "reverses_id, reference, created_at) VALUES (:id, :kind, :description, :key, :hash, "
    ":reverses, :reference, :created_at)"
)
_SQLITE_INSERT_POSTING = text(
    "INSERT INTO postings (entry_id, account_id, amount, created_at) "
    "VALUES (:entry, :account, :amount, :created_at)"
)


class NewEntry(NamedTuple):
    """An entry row about to be written (ids are assigned by :func:`write_entries`).

    A named tuple rather than a frozen dataclass: a batch builds thousands of them, and a
    frozen dataclass's ``__init__`` costs several times a tuple's."""

    kind: str
    description: str
    idempotency_key: str | None
    request_hash: str | None
    reverses_id: int | None
    reference: dict[str, Any] | None
    legs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_entries` did: entry ids in input order, or the refused accounts."""

    entry_ids: list[int]
    refused: set[int]


def write_entries(
    session: Session, deltas: Mapping[int, int], entries: Sequence[NewEntry], *, now: datetime
) -> WriteResult:
    """Apply the balance changes and, if none is refused, write the entries and postings.

    A refusal writes no entry, but changes already applied to other accounts stay applied:
    the caller reverts them (see ``LedgerService._write``).
    """
    if _is_postgres(session):
        if len(entries) == 1 and _single_entry_deltas(entries[0], deltas):
            return _pg_write_one(session.connection(), entries[0], now)
        return _pg_write(session.connection(), deltas, entries, now)
    refused = apply_balance_deltas(session, deltas)
    if refused:
        return WriteResult([], refused)
    connection = session.connection()
    # safe: SQLite transactions here hold the write lock from BEGIN IMMEDIATE
    first = int(connection.execute(_SQLITE_NEXT_ENTRY_ID).scalar_one())
    ids = list(range(first, first + len(entries)))
    _sqlite_insert(connection, entries, ids, _sqlite_time(now))
    return WriteResult(ids, set())


def _sqlite_time(now: datetime) -> str:
    """The exact text SQLAlchemy stores for a DateTime on SQLite (so comparisons agree)."""
    return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _reference_json(reference: dict[str, Any] | None) -> str | None:
    return None if reference is None else json.dumps(reference, ensure_ascii=False)


def _single_entry_deltas(entry: NewEntry, deltas: Mapping[int, int]) -> bool:
    """Whether ``deltas`` are exactly the legs of ``entry`` (one leg per account), few enough
    for :func:`_pg_write_one`."""
    return (
        len(entry.legs) <= _PG_WRITE_ONE_MAX_LEGS
        and len(entry.legs) == len(deltas)
        and all(deltas.get(account) == amount for account, amount in entry.legs)
    )


def _pg_write_one(connection: Connection, entry: NewEntry, now: datetime) -> WriteResult:
    """One entry in one statement of :data:`_PG_WRITE_ONE_TEMPLATE`.

    Integers are sent as ``int8`` (psycopg would pick ``int2``, ``int4`` or ``int8`` by value,
    and each combination of types would be a different prepared statement).
    """
    parameters: dict[str, Any] = {
        "kind": entry.kind,
        "description": entry.description,
        "idempotency_key": entry.idempotency_key,
        "request_hash": entry.request_hash,
        "reverses_id": None if entry.reverses_id is None else Int8(entry.reverses_id),
        "reference": _reference_json(entry.reference),
        "created_at": now,
    }
    for n, (account, delta) in enumerate(sorted(entry.legs)):  # lock and update in id order
        parameters[f"d_id{n}"] = Int8(account)
        parameters[f"d_delta{n}"] = Int8(delta)
    for n, (account, amount) in enumerate(entry.legs):  # postings, as the caller listed them
        parameters[f"l_account{n}"] = Int8(account)
        parameters[f"l_amount{n}"] = Int8(amount)
    statement = _pg_write_one_statement(len(entry.legs))
    applied, entry_id = connection.execute(statement, parameters).one()
    refused = {account for account, _ in entry.legs} - {int(a) for a in applied}
    return WriteResult([] if refused or entry_id is None else [int(entry_id)], refused)


def _plain(entry: NewEntry) -> bool:
    return (
        entry.idempotency_key is None
        and entry.request_hash is None
        and entry.reverses_id is None
        and entry.reference is None
    )


def _pg_write(
    connection: Connection, deltas: Mapping[int, int], entries: Sequence[NewEntry], now: datetime
) -> WriteResult:
    """The single-statement write of :data:`_PG_WRITE`."""
    items = sorted(deltas.items())
    # absent keys read as NULL: most entries carry no key, hash, reversal or reference
    rows = [
        {"kind": e.kind, "description": e.description}
        if _plain(e)
        else {
            "kind": e.kind,
            "description": e.description,
            "idempotency_key": e.idempotency_key,
            "request_hash": e.request_hash,
            "reverses_id": e.reverses_id,
            "reference": e.reference,
        }
        for e in entries
    ]
    # the legs as three parallel arrays (entry ordinal, account, amount): cheaper to build and
    # to parse than JSON objects
    leg_entries: list[int] = []
    leg_accounts: list[int] = []
    leg_amounts: list[int] = []
    for ordinal, entry in enumerate(entries, start=1):
        for account, amount in entry.legs:
            leg_entries.append(ordinal)
            leg_accounts.append(account)
            leg_amounts.append(amount)
    parameters = {
        "ids": _pg_array(i for i, _ in items),
        "deltas": _pg_array(d for _, d in items),
        "accounts": len(items),
        "entries": json.dumps(rows, ensure_ascii=False),
        "leg_entries": _pg_array(leg_entries),
        "leg_accounts": _pg_array(leg_accounts),
        "leg_amounts": _pg_array(leg_amounts),
        "created_at": now,
    }
    applied, entry_ids = connection.execute(_PG_WRITE, parameters).one()
    refused = {account for account, _ in items} - {int(a) for a in applied}
    return WriteResult([] if refused else [int(i) for i in entry_ids], refused)


def _sqlite_insert(
    connection: Connection, entries: Sequence[NewEntry], ids: list[int], now: str
) -> None:
    connection.execute(
        _SQLITE_INSERT_ENTRY,
        [
            {
                "id": i,
                "kind": e.kind,
                "description": e.description,
                "key": e.idempotency_key,
                "hash": e.request_hash,
                "reverses": e.reverses_id,
                "reference": _reference_json(e.reference),
                "created_at": now,
            }
            for i, e in zip(ids, entries, strict=True)
        ],
    )
    connection.execute(
        _SQLITE_INSERT_POSTING,
        [
            {"entry": i, "account": a, "amount": x, "created_at": now}
            for i, e in zip(ids, entries, strict=True)
            for a, x in e.legs
        ],
    )


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
        select(Hold)
        .where(Hold.id == hold_id)
        .with_for_update()
        .execution_options(populate_existing=True)
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


def _flow_since(
    session: Session, account_id: int, *, since: datetime, kinds: Sequence[str], outgoing: bool
) -> int:
    direction = Posting.amount < 0 if outgoing else Posting.amount > 0
    statement = (
        select(func.coalesce(func.sum(Posting.amount), 0))
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(
            and_(
                Posting.account_id == account_id,
                Posting.created_at >= since,
                direction,
                JournalEntry.kind.in_(kinds),
            )
        )
    )
    return abs(int(session.scalar(statement) or 0))


def outflow_since(
    session: Session, account_id: int, *, since: datetime, kinds: Sequence[str]
) -> int:
    """Yen that left ``account_id`` through entries of ``kinds`` since ``since`` (≥ 0)."""
    return _flow_since(session, account_id, since=since, kinds=kinds, outgoing=True)


def inflow_since(
    session: Session, account_id: int, *, since: datetime, kinds: Sequence[str]
) -> int:
    """Yen that reached ``account_id`` through entries of ``kinds`` since ``since``."""
    return _flow_since(session, account_id, since=since, kinds=kinds, outgoing=False)


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
    for which, side in (
        ("pending_out", Hold.source_account_id),
        ("pending_in", Hold.destination_account_id),
    ):
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
