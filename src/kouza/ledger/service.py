"""The ledger service: the only way money moves in kouza.

Every movement is a journal entry of two or more postings summing to zero (see
:mod:`kouza.ledger.models` for the sign convention and what the database enforces). The service
validates each entry before any SQL, replays idempotent retries, locks the touched accounts in id
order, applies all balance changes of a call in one statement that refuses an overdraft, and
writes entries and postings in bulk — on PostgreSQL all in that same statement, so
:meth:`LedgerService.post_batch` costs one statement for one entry or thousands, and is
all-or-nothing.

Holds reserve funds (``pending_out`` on the source) until posted in full or in part, voided, or
expired. An expired hold is released lazily when it would block a debit, and in bulk by
:meth:`LedgerService.expire_holds`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kouza.errors import IdempotencyConflict, IdempotencyInFlight
from kouza.kit.idempotency import request_hash
from kouza.kit.money import MAX_AMOUNT_YEN
from kouza.ledger import repository
from kouza.ledger.errors import (
    AlreadyReversed,
    HoldExpired,
    HoldNotPending,
    InsufficientFunds,
    InvalidAmount,
    InvalidEntry,
    UnbalancedEntry,
    UnknownAccount,
    UnknownEntry,
    UnknownHold,
)
from kouza.ledger.models import AccountKind, EntryKind, Hold, HoldStatus, LedgerAccount
from kouza.runtime import runtime_of


@dataclass(frozen=True)
class Leg:
    """One posting to be written: ``amount`` yen into (+) or out of (−) ``account_id``."""

    account_id: int
    amount: int


@dataclass(frozen=True)
class EntrySpec:
    """A journal entry to be written."""

    kind: EntryKind
    legs: tuple[Leg, ...]
    description: str = ""
    idempotency_key: str | None = None
    reference: dict[str, Any] | None = None
    reverses_id: int | None = None

    def fingerprint(self) -> str:
        legs = sorted((leg.account_id, leg.amount) for leg in self.legs)
        return request_hash(
            [self.kind.value, legs, self.description, self.reference, self.reverses_id]
        )


@dataclass(frozen=True)
class PostedEntry:
    """A written (or replayed) entry."""

    id: int
    kind: str
    legs: tuple[Leg, ...]
    created_at: datetime
    replayed: bool = False


@dataclass(frozen=True)
class Balance:
    """An account's balance: ``available`` = ``balance`` − ``pending_out``."""

    account_id: int
    balance: int
    pending_out: int
    pending_in: int

    @property
    def available(self) -> int:
        return self.balance - self.pending_out


@dataclass
class VerificationReport:
    """Result of recomputing the ledger from its postings."""

    accounts: int = 0
    entries: int = 0
    postings: int = 0
    total_balance: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.total_balance == 0


def transfer_spec(
    *,
    kind: EntryKind,
    source: int,
    destination: int,
    amount: int,
    description: str = "",
    idempotency_key: str | None = None,
    reference: dict[str, Any] | None = None,
) -> EntrySpec:
    """The two-leg entry that moves ``amount`` from ``source`` to ``destination``."""
    _check_amount(amount)
    return EntrySpec(
        kind=kind,
        legs=(Leg(source, -amount), Leg(destination, amount)),
        description=description,
        idempotency_key=idempotency_key,
        reference=reference,
    )


def _check_amount(amount: object) -> None:
    if type(amount) is not int:
        raise InvalidAmount("amounts are whole yen (int)", amount=repr(amount))
    if not 0 < amount <= MAX_AMOUNT_YEN:
        raise InvalidAmount(f"amount must be between ¥1 and ¥{MAX_AMOUNT_YEN:,}", amount=amount)


def validate(spec: EntrySpec) -> None:
    """Refuse anything that is not a balanced double entry, before any SQL."""
    if not isinstance(spec.kind, EntryKind):
        raise InvalidEntry("unknown entry kind", kind=str(spec.kind))
    if len(spec.legs) < 2:
        raise InvalidEntry("an entry needs at least two postings")
    accounts = [leg.account_id for leg in spec.legs]
    if len(set(accounts)) != len(accounts):
        raise InvalidEntry("an entry touches each account at most once")
    for leg in spec.legs:
        if type(leg.amount) is not int or leg.amount == 0:
            raise InvalidAmount("posting amounts are non-zero whole yen", amount=repr(leg.amount))
        if abs(leg.amount) > MAX_AMOUNT_YEN:
            raise InvalidAmount("posting amount out of range", amount=leg.amount)
    total = sum(leg.amount for leg in spec.legs)
    if total != 0:
        raise UnbalancedEntry("postings of an entry must sum to zero", total=total)
    if (spec.kind is EntryKind.REVERSAL) != (spec.reverses_id is not None):
        raise InvalidEntry("a reversal, and only a reversal, points at the entry it reverses")


class LedgerService:
    """Accounts, entries, holds, balances and verification."""

    # --- accounts ------------------------------------------------------------------------

    def open_account(
        self, session: Session, *, kind: AccountKind, code: str, name: str
    ) -> LedgerAccount:
        """The account with ``code``, created if absent (idempotent)."""
        existing = repository.account_by_code(session, code)
        if existing is None:
            now = runtime_of(session).now()
            repository.insert_account_if_absent(
                session, code=code, kind=kind.value, name=name, now=now
            )
            existing = repository.account_by_code(session, code)
        assert existing is not None
        if existing.kind != kind.value:
            raise InvalidEntry(f"account {code} exists with kind {existing.kind}")
        return existing

    def system_account(self, session: Session, kind: AccountKind, suffix: str = "") -> int:
        """Id of an operator-level account such as the float or a bank's clearing account."""
        code = kind.value + (f":{suffix}" if suffix else "")
        name = kind.value.replace("_", " ") + (f" {suffix}" if suffix else "")
        return self.open_account(session, kind=kind, code=code, name=name).id

    def account_ids(self, session: Session, codes: Sequence[str]) -> dict[str, int]:
        """Ids of the accounts with these codes; UnknownAccount names any that do not exist."""
        found = repository.account_ids_by_codes(session, codes)
        missing = sorted(set(codes) - set(found))
        if missing:
            raise UnknownAccount("no such ledger account", codes=missing[:20])
        return found

    def get_account(self, session: Session, account_id: int) -> LedgerAccount:
        account = repository.account_by_id(session, account_id)
        if account is None:
            raise UnknownAccount("no such ledger account", account_id=account_id)
        return account

    def balance(self, session: Session, account_id: int) -> Balance:
        """Balance, pending amounts and available balance of one account."""
        account = self.get_account(session, account_id)
        return Balance(account.id, account.balance, account.pending_out, account.pending_in)

    # --- entries -------------------------------------------------------------------------

    def transfer(
        self,
        session: Session,
        *,
        kind: EntryKind,
        source: int,
        destination: int,
        amount: int,
        description: str = "",
        idempotency_key: str | None = None,
        reference: dict[str, Any] | None = None,
    ) -> PostedEntry:
        """Move ``amount`` yen from ``source`` to ``destination`` in one entry."""
        spec = transfer_spec(
            kind=kind,
            source=source,
            destination=destination,
            amount=amount,
            description=description,
            idempotency_key=idempotency_key,
            reference=reference,
        )
        return self.post_entry(session, spec)

    def replay(self, session: Session, spec: EntrySpec) -> PostedEntry | None:
        """The entry already written under ``spec``'s idempotency key, if any (conflict if the
        key was used for something else) — so callers can answer a retry before re-checking
        limits that the first attempt has since used up."""
        if not spec.idempotency_key:
            return None
        validate(spec)
        replays, _ = self._split_replays(session, [spec])
        return replays.get(0)

    def post_entry(self, session: Session, spec: EntrySpec) -> PostedEntry:
        """Write one entry (or replay it if its idempotency key was seen)."""
        return self.post_batch(session, [spec])[0]

    def post_batch(self, session: Session, specs: Sequence[EntrySpec]) -> list[PostedEntry]:
        """Write many entries atomically: all of them, or none and an error."""
        for spec in specs:
            validate(spec)
        replays, fresh = self._split_replays(session, specs)
        if fresh:
            self._write(session, [specs[i] for i in fresh], fresh, replays)
        return [replays[i] for i in range(len(specs))]

    def _split_replays(
        self, session: Session, specs: Sequence[EntrySpec]
    ) -> tuple[dict[int, PostedEntry], list[int]]:
        keyed = {spec.idempotency_key: i for i, spec in enumerate(specs) if spec.idempotency_key}
        if len(keyed) != sum(1 for spec in specs if spec.idempotency_key):
            raise InvalidEntry("an idempotency key appears twice in one batch")
        existing = repository.entries_by_keys(session, list(keyed)) if keyed else {}
        replays: dict[int, PostedEntry] = {}
        if existing:
            postings = repository.postings_of(session, [e.id for e in existing.values()])
            for key, entry in existing.items():
                index = keyed[key]
                if entry.request_hash != specs[index].fingerprint():
                    raise IdempotencyConflict(
                        "idempotency key already used for a different entry", key=key
                    )
                legs = tuple(Leg(p.account_id, p.amount) for p in postings[entry.id])
                replays[index] = PostedEntry(entry.id, entry.kind, legs, entry.created_at, True)
        fresh = [i for i in range(len(specs)) if i not in replays]
        return replays, fresh

    def _write(
        self,
        session: Session,
        specs: list[EntrySpec],
        indexes: list[int],
        out: dict[int, PostedEntry],
    ) -> None:
        now = runtime_of(session).now()
        deltas: dict[int, int] = defaultdict(int)
        for spec in specs:
            for leg in spec.legs:
                deltas[leg.account_id] += leg.amount  # zero nets still lock and check
        rows = [
            repository.NewEntry(
                kind=spec.kind.value,
                description=spec.description[:500],
                idempotency_key=spec.idempotency_key,
                request_hash=spec.fingerprint() if spec.idempotency_key else None,
                reverses_id=spec.reverses_id,
                reference=spec.reference,
                legs=tuple((leg.account_id, leg.amount) for leg in spec.legs),
            )
            for spec in specs
        ]
        entry_ids = self._write_rows(session, dict(deltas), rows, now)
        for index, entry_id, spec in zip(indexes, entry_ids, specs, strict=True):
            out[index] = PostedEntry(entry_id, spec.kind.value, spec.legs, now)

    def _write_rows(
        self,
        session: Session,
        deltas: dict[int, int],
        rows: list[repository.NewEntry],
        now: datetime,
    ) -> list[int]:
        """Write, retrying once if releasing expired holds frees the refused accounts."""
        for attempt in (1, 2):
            try:
                result = repository.write_entries(session, deltas, rows, now=now)
            except IntegrityError as exc:
                raise _integrity_to_error(exc) from None
            if not result.refused:
                return result.entry_ids
            # undo the changes that were applied, so a refused call leaves no trace even if
            # the caller swallows the error and commits
            repository.apply_balance_deltas(
                session, {k: -v for k, v in deltas.items() if k not in result.refused}
            )
            missing = result.refused - repository.existing_accounts(session, result.refused)
            if missing:
                raise UnknownAccount("no such ledger account", account_ids=sorted(missing))
            if attempt == 2 or not self._release_expired(session, result.refused, now):
                break
        raise InsufficientFunds(
            "insufficient available balance", account_ids=sorted(result.refused)
        )

    def _release_expired(self, session: Session, account_ids: set[int], now: datetime) -> int:
        released = 0
        for account_id in sorted(account_ids):
            for hold_id in repository.expired_hold_ids(
                session, now=now, source_account_id=account_id
            ):
                released += self._finish_expired(session, hold_id, now)
        return released

    def reverse(
        self,
        session: Session,
        *,
        entry_id: int,
        description: str,
        idempotency_key: str | None = None,
    ) -> PostedEntry:
        """Undo ``entry_id`` with an entry of the opposite postings (at most once)."""
        entry = repository.entry_by_id(session, entry_id)
        if entry is None:
            raise UnknownEntry("no such journal entry", entry_id=entry_id)
        if entry.kind == EntryKind.REVERSAL.value:
            raise InvalidEntry("a reversal is not reversed; post a new entry instead")
        existing = repository.reversal_of(session, entry_id)
        if existing is not None and (
            idempotency_key is None or existing.idempotency_key != idempotency_key
        ):
            raise AlreadyReversed(
                "entry already reversed", entry_id=entry_id, reversal_id=existing.id
            )
        postings = repository.postings_of(session, [entry_id])[entry_id]
        spec = EntrySpec(
            kind=EntryKind.REVERSAL,
            legs=tuple(Leg(p.account_id, -p.amount) for p in postings),
            description=description,
            idempotency_key=idempotency_key,
            reference={"reverses": entry_id, "original_kind": entry.kind},
            reverses_id=entry_id,
        )
        return self.post_entry(session, spec)

    # --- holds ---------------------------------------------------------------------------

    def create_hold(
        self,
        session: Session,
        *,
        kind: EntryKind,
        source: int,
        destination: int,
        amount: int,
        expires_at: datetime,
        description: str = "",
        idempotency_key: str | None = None,
        reference: dict[str, Any] | None = None,
    ) -> Hold:
        """Reserve ``amount`` on ``source`` for ``destination`` until ``expires_at``."""
        _check_amount(amount)
        if source == destination:
            raise InvalidEntry("a hold needs two different accounts")
        now = runtime_of(session).now()
        if expires_at <= now:
            raise InvalidEntry("a hold must expire in the future")
        fingerprint = request_hash([kind.value, source, destination, amount, description])
        if idempotency_key:
            replay = repository.hold_by_key(session, idempotency_key)
            if replay is not None:
                if replay.request_hash != fingerprint:
                    raise IdempotencyConflict("idempotency key already used for another hold")
                return replay
        self._reserve(session, source=source, destination=destination, amount=amount, now=now)
        hold = Hold(
            source_account_id=source,
            destination_account_id=destination,
            amount=amount,
            posted_amount=0,
            kind=kind.value,
            status=HoldStatus.PENDING.value,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            description=description,
            reference=reference,
            created_at=now,
            expires_at=expires_at,
        )
        session.add(hold)
        try:
            session.flush()
        except IntegrityError as exc:
            raise _integrity_to_error(exc) from None
        return hold

    def _reserve(
        self, session: Session, *, source: int, destination: int, amount: int, now: datetime
    ) -> None:
        kinds = repository.lock_accounts(session, [source, destination])
        if {source, destination} - set(kinds):
            raise UnknownAccount("no such ledger account")
        ok = repository.adjust_pending(session, account_id=source, pending_out=amount)
        if not ok and self._release_expired(session, {source}, now):
            ok = repository.adjust_pending(session, account_id=source, pending_out=amount)
        if not ok:
            raise InsufficientFunds("insufficient available balance", account_ids=[source])
        repository.adjust_pending(session, account_id=destination, pending_in=amount)

    def post_hold(
        self, session: Session, *, hold_id: int, amount: int | None = None
    ) -> PostedEntry:
        """Turn a pending hold into an entry for ``amount`` (default: all of it)."""
        hold = self._pending_hold(session, hold_id)
        amount = hold.amount if amount is None else amount
        _check_amount(amount)
        if amount > hold.amount:
            raise InvalidAmount("cannot post more than was held", held=hold.amount, amount=amount)
        self._release(session, hold)
        posted = self.transfer(
            session,
            kind=EntryKind(hold.kind),
            source=hold.source_account_id,
            destination=hold.destination_account_id,
            amount=amount,
            description=hold.description,
            reference=(hold.reference or {}) | {"hold": hold.id},
        )
        hold.status = HoldStatus.POSTED.value
        hold.posted_amount = amount
        hold.entry_id = posted.id
        hold.resolved_at = runtime_of(session).now()
        session.flush()
        return posted

    def void_hold(self, session: Session, *, hold_id: int) -> Hold:
        """Release a pending hold without moving money."""
        hold = self._pending_hold(session, hold_id)
        self._release(session, hold)
        hold.status = HoldStatus.VOIDED.value
        hold.resolved_at = runtime_of(session).now()
        session.flush()
        return hold

    def expire_holds(self, session: Session) -> int:
        """Release every pending hold past its expiry; returns how many."""
        now = runtime_of(session).now()
        return sum(
            self._finish_expired(session, hold_id, now)
            for hold_id in repository.expired_hold_ids(session, now=now)
        )

    def get_hold(self, session: Session, hold_id: int) -> Hold:
        hold = session.get(Hold, hold_id)
        if hold is None:
            raise UnknownHold("no such hold", hold_id=hold_id)
        return hold

    def _pending_hold(self, session: Session, hold_id: int) -> Hold:
        hold = repository.lock_hold(session, hold_id)
        if hold is None:
            raise UnknownHold("no such hold", hold_id=hold_id)
        if hold.status != HoldStatus.PENDING.value:
            raise HoldNotPending(f"hold is {hold.status}", hold_id=hold_id)
        now = runtime_of(session).now()
        if hold.expires_at <= now:
            self._finish_expired(session, hold_id, now)
            raise HoldExpired("hold has expired", hold_id=hold_id, keep_changes=True)
        return hold

    def _finish_expired(self, session: Session, hold_id: int, now: datetime) -> int:
        hold = repository.lock_hold(session, hold_id)
        if hold is None or hold.status != HoldStatus.PENDING.value:
            return 0
        self._release(session, hold)
        hold.status = HoldStatus.EXPIRED.value
        hold.resolved_at = now
        session.flush()
        return 1

    def _release(self, session: Session, hold: Hold) -> None:
        repository.lock_accounts(session, [hold.source_account_id, hold.destination_account_id])
        repository.adjust_pending(
            session, account_id=hold.source_account_id, pending_out=-hold.amount
        )
        repository.adjust_pending(
            session, account_id=hold.destination_account_id, pending_in=-hold.amount
        )

    # --- reading and checking ------------------------------------------------------------

    def statement(
        self,
        session: Session,
        account_id: int,
        *,
        since: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[repository.StatementRow]:
        """Postings of an account, newest first, each with the balance after it."""
        self.get_account(session, account_id)
        return repository.statement_rows(
            session, account_id, since=since, limit=limit, before_id=before_id
        )

    def verify(self, session: Session) -> VerificationReport:
        """Recompute every balance and check every invariant; report differences."""
        report = VerificationReport()
        report.accounts, report.entries, report.postings, report.total_balance = repository.counts(
            session
        )
        for account_id, code, cached, actual in repository.balance_mismatches(session):
            report.problems.append(
                f"account {account_id} ({code}): balance {cached} but postings sum to {actual}"
            )
        for account_id, code, which, cached, actual in repository.pending_mismatches(session):
            report.problems.append(
                f"account {account_id} ({code}): {which} {cached} but pending holds sum to {actual}"
            )
        for entry_id, total, count in repository.unbalanced_entries(session):
            report.problems.append(f"entry {entry_id}: {count} postings summing to {total}")
        for account_id, code, balance in repository.negative_restricted_accounts(session):
            report.problems.append(f"account {account_id} ({code}) is negative: {balance}")
        if report.total_balance != 0:
            report.problems.append(f"balances sum to {report.total_balance}, not 0")
        return report


def _integrity_to_error(exc: IntegrityError) -> Exception:
    text = str(exc.orig).lower()
    if "idempotency_key" in text:
        return IdempotencyInFlight("a concurrent request holds this idempotency key; retry")
    if "reverses_id" in text:
        return AlreadyReversed("entry already reversed")
    if "non_negative" in text:
        return InsufficientFunds("insufficient available balance")
    return exc


ledger = LedgerService()
"""The ledger service singleton."""
