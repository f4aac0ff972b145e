"""Debits (wallet top-ups) and credits (withdrawals) under a link's mandate.

Idempotency is in the table: ``transfers`` has UNIQUE (client, idempotency key) and stores the
request hash. The same key with the same request returns the first transfer and moves nothing;
the same key with a different request is a 409. A refused request stores nothing, so a corrected
retry may reuse its key (ADR 0004). Concurrent duplicates: the second insert fails the unique
constraint, its whole unit of work rolls back, and it is told to retry (which then replays).

A credit is refused on a revoked link, except the *reversal* of one of that link's debits
(``reverses``: at most its amount, once; ADR 0032), which returns money the operator held to the
holder who disowned the link.

A debit is refused unless the link is active and unexpired, the amount is within the per-debit
maximum and the rolling 30-day maximum (the sum of the link's debits in the 30 days before now,
not a calendar month), and the account can pay it: down to zero, or into the secured overdraft
only if the holder opted in (``debit_may_use_overdraft``; off by default, 担保貸付対象外設定).
Every debit writes an immutable movement with the balance after it and notifies the holder.
Rows are locked link first, then account, everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kouza.bank.errors import (
    AlreadyReversed,
    InsufficientBalance,
    InvalidAmount,
    LinkNotActive,
    MandateExceeded,
    UnknownLink,
    UnknownTransfer,
)
from kouza.bank.models import (
    Account,
    Bank,
    Link,
    LinkStatus,
    Movement,
    OperatorClient,
    Transfer,
    TransferKind,
)
from kouza.bank.notices import notify_holder, probation_note
from kouza.bank.runtime import bank_runtime_of
from kouza.errors import IdempotencyConflict, IdempotencyInFlight, KouzaError
from kouza.kit.idempotency import request_hash, validate_key
from kouza.kit.locking import lock_row

MAX_AMOUNT = 10**12
"""No single movement is larger than ¥1 trillion (stops absurd input before any SQL)."""
MANDATE_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class TransferRequest:
    """A debit or credit as the operator asks for it."""

    kind: TransferKind
    link_id: uuid.UUID
    amount: int
    idempotency_key: str
    description: str = ""
    reverses: uuid.UUID | None = None
    """A credit returning this earlier debit of the same link (a reversal)."""

    def fingerprint(self) -> str:
        body: dict[str, object] = {
            "kind": self.kind.value,
            "link_id": str(self.link_id),
            "amount": self.amount,
            "description": self.description,
        }
        if self.reverses is not None:  # absent otherwise: earlier transfers' hashes still match
            body["reverses"] = str(self.reverses)
        return request_hash(body)


@dataclass(frozen=True)
class TransferResult:
    """A transfer and whether this call replayed an earlier one."""

    transfer: Transfer
    replayed: bool


class Transfers:
    """Debits and credits under mandates."""

    def execute(
        self, session: Session, *, client: OperatorClient, request: TransferRequest
    ) -> TransferResult:
        """Run a debit or credit once per idempotency key (replay or 409 on reuse)."""
        if request.kind is not TransferKind.DEBIT:
            return self._execute(session, client=client, request=request)
        metrics = bank_runtime_of(session).metrics
        try:
            result = self._execute(session, client=client, request=request)
        except KouzaError as refusal:
            metrics.debits.inc(outcome=refusal.code)
            raise
        metrics.debits.inc(outcome="replayed" if result.replayed else "executed")
        if not result.replayed:
            metrics.debited_yen.inc(request.amount)
        return result

    def _execute(
        self, session: Session, *, client: OperatorClient, request: TransferRequest
    ) -> TransferResult:
        _validate(request)
        link = lock_row(session, Link, request.link_id)
        if link is None or link.client_pk != client.id:
            raise UnknownLink("no such link for this client", link_id=str(request.link_id))
        # looked up under the link's lock, once: a concurrent duplicate has committed by now
        earlier = self._by_key(session, client, request.idempotency_key)
        if earlier is not None:
            return self._replay(session, earlier, request)
        account = lock_row(session, Account, link.account_id)
        assert account is not None
        if request.kind is TransferKind.DEBIT:
            self._check_debit(session, link, account, request.amount)
            account.balance -= request.amount
        else:
            self._check_credit(session, link, request)
            account.balance += request.amount
        return self._record(session, client, link, account, request)

    def _replay(
        self, session: Session, earlier: Transfer, request: TransferRequest
    ) -> TransferResult:
        if earlier.request_hash != request.fingerprint():
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request",
                key=request.idempotency_key,
            )
        return TransferResult(earlier, replayed=True)

    def _check_debit(self, session: Session, link: Link, account: Account, amount: int) -> None:
        now = bank_runtime_of(session).now()
        if link.status != LinkStatus.ACTIVE or link.expires_at <= now:
            raise LinkNotActive(
                "debits under this link are stopped",
                status=link.status if link.expires_at > now else "expired",
            )
        if amount > link.max_per_debit:
            raise MandateExceeded(
                "above the mandate's per-debit maximum", max_per_debit=link.max_per_debit
            )
        used = self.debited_since(session, link, now - MANDATE_WINDOW)
        if used + amount > link.max_30_days:
            raise MandateExceeded(
                "above the mandate's rolling 30-day maximum",
                max_30_days=link.max_30_days,
                used=used,
            )
        floor = -account.overdraft_limit if account.debit_may_use_overdraft else 0
        if account.balance - amount < floor:
            raise InsufficientBalance("the account cannot pay this debit")

    def _check_credit(self, session: Session, link: Link, request: TransferRequest) -> None:
        """A revoked link takes one kind of credit: the reversal of one of its own debits, at
        most its amount, once — so a holder who disowned the link gets back what the operator
        still held (ADR 0032). Any other credit needs a link that is not revoked."""
        if request.reverses is None:
            if link.status == LinkStatus.REVOKED:
                raise LinkNotActive("this link is revoked", status=link.status)
            return
        debit = session.get(Transfer, request.reverses)
        if debit is None or debit.link_id != link.id or debit.kind != TransferKind.DEBIT.value:
            raise UnknownTransfer(
                "a reversal must name a debit of the same link", reverses=str(request.reverses)
            )
        if request.amount > debit.amount:
            raise InvalidAmount(
                "a reversal returns at most the debit's amount", debit_amount=debit.amount
            )
        done = session.scalar(select(Transfer.id).where(Transfer.reverses_id == debit.id))
        if done is not None:
            raise AlreadyReversed(
                "this debit was already reversed", reverses=str(debit.id), reversal=str(done)
            )

    def debited_since(self, session: Session, link: Link, since: datetime) -> int:
        """Yen debited under ``link`` since ``since``."""
        total = session.scalar(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.link_id == link.id,
                Transfer.kind == TransferKind.DEBIT.value,
                Transfer.created_at > since,
            )
        )
        return int(total or 0)

    def _record(
        self,
        session: Session,
        client: OperatorClient,
        link: Link,
        account: Account,
        request: TransferRequest,
    ) -> TransferResult:
        now = bank_runtime_of(session).now()
        movement = Movement(
            account_id=account.id,
            kind=request.kind.value,
            amount=request.amount,
            balance_after=account.balance,
            description=_passbook_text(client, request),
            counterparty=client.name,
            idempotency_key=request.idempotency_key,
            created_at=now,
        )
        session.add(movement)
        session.flush()
        transfer = Transfer(
            client_pk=client.id,
            link_id=link.id,
            account_id=account.id,
            kind=request.kind.value,
            amount=request.amount,
            description=request.description,
            idempotency_key=request.idempotency_key,
            request_hash=request.fingerprint(),
            movement_id=movement.id,
            created_at=now,
            reverses_id=request.reverses if request.kind is TransferKind.CREDIT else None,
        )
        try:
            with session.begin_nested():
                session.add(transfer)
                session.flush()
        except IntegrityError:
            raise IdempotencyInFlight(
                "a request with this Idempotency-Key ran concurrently; retry to get its result"
            ) from None
        if request.kind is TransferKind.DEBIT:
            bank = session.get_one(Bank, link.bank_id)
            notify_holder(
                session,
                bank,
                account,
                subject="口座振替のお知らせ (debit)",
                body=_debit_notice(client, link, movement),
            )
        return TransferResult(transfer, replayed=False)

    def _by_key(self, session: Session, client: OperatorClient, key: str) -> Transfer | None:
        return session.scalars(
            select(Transfer).where(Transfer.client_pk == client.id, Transfer.idempotency_key == key)
        ).one_or_none()

    def get(
        self,
        session: Session,
        *,
        client: OperatorClient,
        transfer_id: uuid.UUID | None = None,
        idempotency_key: str | None = None,
    ) -> Transfer:
        """One of the client's transfers, by id or idempotency key."""
        found = None
        if transfer_id is not None:
            found = session.get(Transfer, transfer_id)
        elif idempotency_key is not None:
            found = self._by_key(session, client, idempotency_key)
        if found is None or found.client_pk != client.id:
            raise UnknownTransfer("no such transfer for this client")
        return found

    def report(
        self, session: Session, *, client: OperatorClient, since: datetime, until: datetime
    ) -> Sequence[Transfer]:
        """The client's transfers with ``since <= created_at < until``, oldest first."""
        return session.scalars(
            select(Transfer)
            .where(
                Transfer.client_pk == client.id,
                Transfer.created_at >= since,
                Transfer.created_at < until,
            )
            .order_by(Transfer.created_at, Transfer.id)
        ).all()


def _validate(request: TransferRequest) -> None:
    validate_key(request.idempotency_key)
    if isinstance(request.amount, bool) or not 0 < request.amount <= MAX_AMOUNT:
        raise InvalidAmount(
            f"amount must be whole yen between 1 and {MAX_AMOUNT}", amount=request.amount
        )
    if len(request.description) > 100:
        raise InvalidAmount("description is at most 100 characters")


def _passbook_text(client: OperatorClient, request: TransferRequest) -> str:
    return (request.description or client.name)[:100]


def _debit_notice(client: OperatorClient, link: Link, movement: Movement) -> str:
    return (
        f"{client.name} への口座振替で ¥{movement.amount:,} が引き落とされました"
        f"(残高 ¥{movement.balance_after:,})。\n"
        f"¥{movement.amount:,} was debited by {client.name}; balance ¥{movement.balance_after:,}.\n"
        f"If this was not you, contact the bank quoting reference {link.notice_reference} "
        "(not me): debits stop at once."
    ) + probation_note(link, at=movement.created_at)


transfers = Transfers()
"""The transfers service singleton."""
