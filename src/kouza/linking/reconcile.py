"""Reconciliation: the wallet's bank movements against the bank's transfer report.

For every movement created in ``[since, until)`` and every bank transfer in the same window:

* a ``pending``/``unknown`` movement the bank has, for the same amount and direction → the
  hold is posted (the bank moved the money);
* a ``pending``/``unknown`` movement the bank does not have (asked by its key, not only by the
  window) and older than ``bank_reconcile_grace_seconds`` → the hold is voided; younger ones
  are left waiting (the call may still be in flight);
* anything else that differs — amounts or directions that disagree, a posted movement the bank
  does not have, a voided one the bank did execute, a bank transfer the wallet has no movement
  for, a hold that expired — is reported as a :class:`Difference` and never fixed silently.

The bank's report is read over ``[since, until + grace)`` so a transfer executed just after a
movement was recorded is still matched; bank transfers are reported as unknown only if they
fall inside ``[since, until)`` and no movement anywhere carries their key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.errors import KouzaError
from kouza.linking.client import BankTransfer, bank_client_of
from kouza.linking.errors import InvalidBankDetails
from kouza.linking.models import UNRESOLVED, BankMovement, MovementStatus
from kouza.linking.movements import settle
from kouza.runtime import runtime_of


@dataclass(frozen=True)
class Difference:
    """Something the two sides disagree on, for a person to resolve."""

    kind: str
    bank_key: str
    movement_id: str | None
    wallet_amount: int | None
    bank_amount: int | None
    detail: str


@dataclass
class ReconcileReport:
    """What reconciliation found and did."""

    since: datetime
    until: datetime
    checked: int = 0
    posted: list[str] = field(default_factory=list)
    voided: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


TransferMatcher = Callable[[Session, BankTransfer, ReconcileReport], bool]
"""Claims a bank transfer the wallet made outside bank movements — a compensation credit
(:func:`kouza.ops.compensation.reconcile_compensation`) — and reports its differences itself:
True if the transfer was one of its own."""


class TransferMatchersPort(Protocol):
    """Where the runtime keeps the transfer matchers (``kouza.assembly`` registers them)."""

    reconcile_matchers: list[TransferMatcher]


class Reconciler:
    """Compare and resolve."""

    def reconcile(self, session: Session, *, since: datetime, until: datetime) -> ReconcileReport:
        """Compare movements in ``[since, until)`` with the bank's report; settle what is sure."""
        if since.tzinfo is None or until.tzinfo is None or since >= until:
            raise InvalidBankDetails("since and until need a time zone and since < until")
        runtime = runtime_of(session)
        grace = timedelta(seconds=runtime.settings.bank_reconcile_grace_seconds)
        report = ReconcileReport(since, until)
        at_bank = {
            t.idempotency_key: t
            for t in bank_client_of(runtime).transfer_report(since=since, until=until + grace)
        }
        seen: set[str] = set()
        for movement in self._movements(session, since, until):
            seen.add(movement.bank_key)
            report.checked += 1
            self._one(session, movement, at_bank.get(movement.bank_key), grace, report)
        for key, transfer in sorted(at_bank.items()):
            if key not in seen and since <= transfer.created_at < until:
                self._stray(session, transfer, grace, report)
        return report

    def _movements(self, session: Session, since: datetime, until: datetime) -> list[BankMovement]:
        return list(
            session.scalars(
                select(BankMovement)
                .where(BankMovement.created_at >= since, BankMovement.created_at < until)
                .order_by(BankMovement.created_at, BankMovement.id)
            )
        )

    def _stray(
        self, session: Session, transfer: BankTransfer, grace: timedelta, report: ReconcileReport
    ) -> None:
        movement = session.scalars(
            select(BankMovement).where(BankMovement.bank_key == transfer.idempotency_key)
        ).one_or_none()
        matchers = cast(TransferMatchersPort, runtime_of(session)).reconcile_matchers
        if movement is None and any(claim(session, transfer, report) for claim in matchers):
            return
        if movement is None:
            report.differences.append(
                Difference(
                    "unknown_to_wallet",
                    transfer.idempotency_key,
                    None,
                    None,
                    transfer.amount,
                    f"the bank executed a {transfer.kind} the wallet has no movement for",
                )
            )
            return
        report.checked += 1
        self._one(session, movement, transfer, grace, report)

    def _one(
        self,
        session: Session,
        movement: BankMovement,
        transfer: BankTransfer | None,
        grace: timedelta,
        report: ReconcileReport,
    ) -> None:
        if transfer is not None and (
            transfer.amount != movement.amount or transfer.kind != movement.direction
        ):
            self._differ(
                report,
                movement,
                transfer,
                "mismatch",
                "amount or direction differ between the wallet and the bank",
            )
            return
        if movement.status in UNRESOLVED:
            self._resolve(session, movement, transfer, grace, report)
        elif movement.status == MovementStatus.POSTED.value and transfer is None:
            self._differ(
                report,
                movement,
                None,
                "posted_not_at_bank",
                "the wallet posted it but the bank has no such transfer",
            )
        elif movement.status == MovementStatus.VOIDED.value and transfer is not None:
            self._differ(
                report,
                movement,
                transfer,
                "voided_but_executed",
                "the wallet voided it but the bank executed it",
            )

    def _resolve(
        self,
        session: Session,
        movement: BankMovement,
        transfer: BankTransfer | None,
        grace: timedelta,
        report: ReconcileReport,
    ) -> None:
        runtime = runtime_of(session)
        if transfer is None:
            transfer = bank_client_of(runtime).transfer_by_key(movement.bank_key)
            if transfer is not None and (
                transfer.amount != movement.amount or transfer.kind != movement.direction
            ):
                self._differ(
                    report,
                    movement,
                    transfer,
                    "mismatch",
                    "amount or direction differ between the wallet and the bank",
                )
                return
        if transfer is None and runtime.now() - movement.created_at < grace:
            report.waiting.append(str(movement.id))
            return
        try:
            with session.begin_nested():
                settle(
                    session,
                    movement.id,
                    transfer=transfer,
                    failure="reconciled: the bank has no such transfer",
                )
        except KouzaError as exc:
            self._differ(report, movement, transfer, "settle_failed", exc.message)
            return
        (report.posted if transfer is not None else report.voided).append(str(movement.id))

    def _differ(
        self,
        report: ReconcileReport,
        movement: BankMovement,
        transfer: BankTransfer | None,
        kind: str,
        detail: str,
    ) -> None:
        report.differences.append(
            Difference(
                kind,
                movement.bank_key,
                str(movement.id),
                movement.amount,
                transfer.amount if transfer else None,
                detail,
            )
        )


reconciler = Reconciler()
"""The reconciliation service singleton."""
