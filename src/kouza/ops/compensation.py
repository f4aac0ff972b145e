"""Compensation of a confirmed-fraud case: victims refunded in full, the fraud wallet emptied.

For a case in ``confirmed_fraud`` whose wallet is locked (ADR 0011):

* **Victims** are the accounts the fraudulent top-ups came from: for every link of the wallet,
  the posted top-ups (bank debits) minus any posted withdrawal back to that same account. Each
  is refunded in full by a credit to that account (the bank's ``refunds`` route, accepted on a
  revoked link), and every :class:`~kouza.ops.models.VictimCost` recorded for the case (bank
  fees, …) is paid the same way.
* **Money** comes from the operator's ``compensation_expense`` account: each payment is a
  ledger hold ``compensation_expense → bank_clearing:<bank>`` posted when the bank confirms.
  What is left in the fraud wallet is clawed back (``wallet → fraud_suspense``) when the
  compensation starts, and, once every payment is posted, offset against the cost
  (``fraud_suspense → compensation_expense``). The ledger shows every yen: the compensation
  account ends at minus the net cost, the suspense account at zero.
* **Crash safety** is the movements' (ADR 0010): the plan — compensation row, clawback, payments
  and their holds — is committed *before* any bank call; each payment carries a bank
  idempotency key derived from its id; a lost answer leaves it ``unknown`` with the hold
  pending. Running :meth:`CompensationService.compensate` again re-asks the bank with the same
  key (the bank replays, never pays twice), retries a refused payment as a new attempt with a
  new key and hold, pays costs recorded since, and completes the case when all is posted.
  Running it on a completed case pays nothing.

``KouzaRuntime.after_compensation_call``, when set, is called with the payment id
right after the bank answered and before settling (the crash tests' fault-injection point).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kouza.controls.errors import UnknownCase
from kouza.controls.models import Case, CaseStatus
from kouza.controls.service import controls
from kouza.kit.locking import lock_row
from kouza.ledger.models import AccountKind, EntryKind
from kouza.ledger.service import ledger
from kouza.linking.client import BankTransfer, bank_client_of
from kouza.linking.errors import BankRefused, BankUnavailable
from kouza.linking.models import (
    UNRESOLVED,
    BankLink,
    BankMovement,
    MovementDirection,
    MovementStatus,
)
from kouza.linking.reconcile import Difference, ReconcileReport
from kouza.ops.errors import (
    CaseNotConfirmed,
    InvalidOpsInput,
    MovementsUnresolved,
    UnknownVictimAccount,
    WalletNotLocked,
)
from kouza.ops.models import (
    Compensation,
    CompensationPayment,
    CompensationStatus,
    PaymentPurpose,
    VictimCost,
)
from kouza.runtime import Runtime, runtime_of
from kouza.wallet.models import Wallet, WalletStatus

PASSBOOK_TEXT = "ｺｳｻﾞ ﾎｼﾖｳ"
POSTED = MovementStatus.POSTED.value
VOIDED = MovementStatus.VOIDED.value


class AfterCompensationCallPort(Protocol):
    """The crash tests' fault-injection point on the runtime (``KouzaRuntime``)."""

    after_compensation_call: Callable[[uuid.UUID], Any] | None


@dataclass(frozen=True)
class Victim:
    """An account the fraud wallet took money from, and what it is owed."""

    link_id: uuid.UUID
    bank_code: str
    account_fingerprint: str
    account_last3: str
    debited: int
    credited_back: int

    @property
    def owed(self) -> int:
        return max(self.debited - self.credited_back, 0)


@dataclass(frozen=True)
class Call:
    """What one bank call needs, read out of the planning unit of work."""

    payment_id: uuid.UUID
    bank_link_id: uuid.UUID
    amount: int
    bank_key: str


@dataclass
class CompensationReport:
    """Where a compensation stands after a run."""

    compensation_id: uuid.UUID
    case_id: uuid.UUID
    wallet_id: uuid.UUID
    status: str
    clawed_back: int
    refunded: int = 0
    costs_paid: int = 0
    outstanding: int = 0
    payments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def net_cost(self) -> int:
        return self.refunded + self.costs_paid - self.clawed_back


class CompensationService:
    """Victims, costs, and the compensation run."""

    def victims(self, session: Session, wallet_id: uuid.UUID) -> list[Victim]:
        """The accounts the wallet's posted top-ups came from, with what each is owed."""
        sums = session.execute(
            select(BankMovement.link_id, BankMovement.direction, func.sum(BankMovement.amount))
            .where(BankMovement.wallet_id == wallet_id, BankMovement.status == POSTED)
            .group_by(BankMovement.link_id, BankMovement.direction)
        ).all()
        totals: dict[uuid.UUID, dict[str, int]] = {}
        for link_id, direction, amount in sums:
            totals.setdefault(link_id, {})[direction] = int(amount or 0)
        victims = []
        for link_id, by_direction in totals.items():
            debited = by_direction.get(MovementDirection.DEBIT.value, 0)
            if debited <= 0:
                continue
            link = session.get_one(BankLink, link_id)
            victims.append(
                Victim(
                    link.id,
                    link.bank_code,
                    link.account_fingerprint,
                    link.account_last3,
                    debited,
                    by_direction.get(MovementDirection.CREDIT.value, 0),
                )
            )
        return sorted(victims, key=lambda victim: (victim.bank_code, str(victim.link_id)))

    def add_cost(
        self,
        session: Session,
        *,
        case_id: uuid.UUID,
        link_id: uuid.UUID,
        amount: int,
        description: str,
        actor: str,
    ) -> VictimCost:
        """Record a cost a victim incurred (paid by the next compensation run); audited."""
        case = _case(session, case_id)
        if type(amount) is not int or not 0 < amount <= 10_000_000:
            raise InvalidOpsInput("a cost is whole yen between ¥1 and ¥10,000,000")
        if not description.strip():
            raise InvalidOpsInput("describe the cost (what the victim paid and why)")
        if link_id not in {victim.link_id for victim in self.victims(session, case.wallet_id)}:
            raise UnknownVictimAccount(
                "this link is not an account the case's wallet took money from",
                link_id=str(link_id),
            )
        cost = VictimCost(
            case_id=case.id,
            link_id=link_id,
            amount=amount,
            description=description.strip()[:500],
            actor=actor[:120],
            created_at=runtime_of(session).now(),
        )
        session.add(cost)
        session.flush()
        controls.audit(
            session,
            actor=actor,
            action="compensation.cost",
            subject=str(case.id),
            reason=description,
            details={"cost": str(cost.id), "amount": amount, "link": str(link_id)},
        )
        return cost

    def costs(self, session: Session, case_id: uuid.UUID) -> Sequence[VictimCost]:
        return session.scalars(
            select(VictimCost).where(VictimCost.case_id == case_id).order_by(VictimCost.created_at)
        ).all()

    def compensate(
        self, runtime: Runtime, *, case_id: uuid.UUID, actor: str, reason: str
    ) -> CompensationReport:
        """Plan (committed), call the bank for each open payment, settle, complete; idempotent."""
        with runtime.db.unit_of_work() as session:
            compensation_id, calls = self._plan(session, case_id, actor, reason)
        for call in calls:
            self._call_and_settle(runtime, call)
        with runtime.db.unit_of_work() as session:
            self._finish(session, compensation_id, actor)
            return self.report(session, case_id)

    # --- step 1: plan ----------------------------------------------------------------------

    def _plan(
        self, session: Session, case_id: uuid.UUID, actor: str, reason: str
    ) -> tuple[uuid.UUID, list[Call]]:
        case = lock_row(session, Case, case_id)
        if case is None:
            raise UnknownCase("no such case", case_id=str(case_id))
        if case.status != CaseStatus.CONFIRMED_FRAUD.value:
            raise CaseNotConfirmed(
                f"only a confirmed-fraud case is compensated; this one is {case.status}",
                case_id=str(case.id),
            )
        compensation = self.of_case(session, case.id)
        if compensation is None:
            compensation = self._start(session, case, actor, reason)
        calls = []
        for victim in self.victims(session, case.wallet_id):
            if victim.owed > 0:
                calls += self._slot(
                    session,
                    compensation,
                    f"refund:{victim.link_id}",
                    PaymentPurpose.REFUND,
                    victim.link_id,
                    victim.owed,
                )
        for cost in self.costs(session, case.id):
            calls += self._slot(
                session,
                compensation,
                f"cost:{cost.id}",
                PaymentPurpose.COST,
                cost.link_id,
                cost.amount,
            )
        return compensation.id, calls

    def _start(self, session: Session, case: Case, actor: str, reason: str) -> Compensation:
        wallet = lock_row(session, Wallet, case.wallet_id)
        assert wallet is not None
        if wallet.status != WalletStatus.LOCKED.value:
            raise WalletNotLocked(
                "lock the wallet before compensating (its balance is clawed back)",
                wallet_id=str(wallet.id),
            )
        unresolved = session.scalar(
            select(func.count())
            .select_from(BankMovement)
            .where(BankMovement.wallet_id == wallet.id, BankMovement.status.in_(UNRESOLVED))
        )
        if unresolved:
            raise MovementsUnresolved(
                "the wallet has bank movements the bank has not settled: "
                "run `kouza banks reconcile` first",
                count=unresolved,
            )
        now = runtime_of(session).now()
        compensation = Compensation(
            case_id=case.id,
            wallet_id=wallet.id,
            status=CompensationStatus.RUNNING.value,
            clawed_back=0,
            actor=actor[:120],
            reason=reason[:500],
            created_at=now,
        )
        session.add(compensation)
        session.flush()
        available = ledger.balance(session, wallet.ledger_account_id).available
        if available > 0:
            entry = ledger.transfer(
                session,
                kind=EntryKind.CLAWBACK,
                source=wallet.ledger_account_id,
                destination=ledger.system_account(session, AccountKind.FRAUD_SUSPENSE),
                amount=available,
                description=f"clawback of case {case.id}",
                idempotency_key=f"clawback:{case.id}",
                reference={"case": str(case.id), "compensation": str(compensation.id)},
            )
            compensation.clawed_back, compensation.clawback_entry_id = available, entry.id
        controls.audit(
            session,
            actor=actor,
            action="compensation.start",
            subject=str(case.id),
            reason=reason,
            details={"compensation": str(compensation.id), "clawed_back": compensation.clawed_back},
        )
        session.flush()
        return compensation

    def _slot(
        self,
        session: Session,
        compensation: Compensation,
        slot: str,
        purpose: PaymentPurpose,
        link_id: uuid.UUID,
        amount: int,
    ) -> list[Call]:
        """The call still needed for ``slot`` (a new attempt if the last was refused)."""
        latest = session.scalars(
            select(CompensationPayment)
            .where(
                CompensationPayment.compensation_id == compensation.id,
                CompensationPayment.slot == slot,
            )
            .order_by(CompensationPayment.attempt.desc())
        ).first()
        if latest is not None and latest.status == POSTED:
            return []
        if latest is None or latest.status == VOIDED:
            latest = self._new_payment(
                session,
                compensation,
                slot,
                purpose,
                link_id,
                amount,
                attempt=1 if latest is None else latest.attempt + 1,
            )
        compensation.status = CompensationStatus.RUNNING.value
        link = session.get_one(BankLink, latest.link_id)
        return [Call(latest.id, link.bank_link_id, latest.amount, latest.bank_key)]

    def _new_payment(
        self,
        session: Session,
        compensation: Compensation,
        slot: str,
        purpose: PaymentPurpose,
        link_id: uuid.UUID,
        amount: int,
        *,
        attempt: int,
    ) -> CompensationPayment:
        runtime = runtime_of(session)
        link = session.get_one(BankLink, link_id)
        payment_id = uuid.uuid4()
        hold = ledger.create_hold(
            session,
            kind=EntryKind.COMPENSATION,
            source=ledger.system_account(session, AccountKind.COMPENSATION_EXPENSE),
            destination=ledger.system_account(session, AccountKind.BANK_CLEARING, link.bank_code),
            amount=amount,
            expires_at=runtime.now() + timedelta(days=runtime.settings.compensation_hold_days),
            description=f"compensation ({purpose.value}) to bank {link.bank_code} account "
            f"***{link.account_last3}",
            idempotency_key=f"compensation-payment:{payment_id}",
            reference={
                "compensation": str(compensation.id),
                "case": str(compensation.case_id),
                "payment": str(payment_id),
                "bank_link": str(link.id),
            },
        )
        payment = CompensationPayment(
            id=payment_id,
            compensation_id=compensation.id,
            purpose=purpose.value,
            slot=slot,
            attempt=attempt,
            link_id=link.id,
            bank_code=link.bank_code,
            amount=amount,
            bank_key=f"kouza-comp-{payment_id}",
            hold_id=hold.id,
            status=MovementStatus.PENDING.value,
            created_at=runtime.now(),
        )
        session.add(payment)
        session.flush()
        return payment

    # --- steps 2 and 3: call and settle ----------------------------------------------------

    def _call_and_settle(self, runtime: Runtime, call: Call) -> None:
        try:
            transfer = bank_client_of(runtime).refund(
                call.bank_link_id,
                amount=call.amount,
                idempotency_key=call.bank_key,
                description=PASSBOOK_TEXT,
            )
        except BankRefused as refusal:
            code = str(refusal.details.get("bank_error") or refusal.code)
            with runtime.db.unit_of_work() as session:
                self._settle(session, call.payment_id, None, f"{code}: {refusal.message}")
            return
        except BankUnavailable:
            with runtime.db.unit_of_work() as session:
                payment = lock_row(session, CompensationPayment, call.payment_id)
                if payment is not None and payment.status == MovementStatus.PENDING.value:
                    payment.status = MovementStatus.UNKNOWN.value
            return
        hook = cast(AfterCompensationCallPort, runtime).after_compensation_call
        if hook is not None:
            hook(call.payment_id)
        with runtime.db.unit_of_work() as session:
            self._settle(session, call.payment_id, transfer, "")

    def _settle(
        self, session: Session, payment_id: uuid.UUID, transfer: BankTransfer | None, failure: str
    ) -> None:
        payment = lock_row(session, CompensationPayment, payment_id)
        assert payment is not None, "a payment is settled only after it was planned"
        if payment.status not in UNRESOLVED:
            return
        if transfer is not None:
            ledger.post_hold(session, hold_id=payment.hold_id)
            payment.status, payment.bank_transfer_id = POSTED, transfer.id
        else:
            ledger.void_hold(session, hold_id=payment.hold_id)
            payment.status, payment.failure = VOIDED, failure[:300]
        payment.resolved_at = runtime_of(session).now()
        session.flush()

    # --- step 4: finish --------------------------------------------------------------------

    def _finish(self, session: Session, compensation_id: uuid.UUID, actor: str) -> None:
        compensation = lock_row(session, Compensation, compensation_id)
        assert compensation is not None
        latest = self._latest_payments(session, compensation.id)
        if compensation.status == CompensationStatus.COMPLETED.value or any(
            payment.status != POSTED for payment in latest
        ):
            return
        if compensation.clawed_back > 0 and compensation.offset_entry_id is None:
            entry = ledger.transfer(
                session,
                kind=EntryKind.CLAWBACK,
                source=ledger.system_account(session, AccountKind.FRAUD_SUSPENSE),
                destination=ledger.system_account(session, AccountKind.COMPENSATION_EXPENSE),
                amount=compensation.clawed_back,
                description=f"recovered funds offset the compensation of case "
                f"{compensation.case_id}",
                idempotency_key=f"clawback-offset:{compensation.id}",
                reference={"case": str(compensation.case_id), "compensation": str(compensation.id)},
            )
            compensation.offset_entry_id = entry.id
        compensation.status = CompensationStatus.COMPLETED.value
        compensation.completed_at = runtime_of(session).now()
        paid = sum(payment.amount for payment in latest)
        controls.audit(
            session,
            actor=actor,
            action="compensation.complete",
            subject=str(compensation.case_id),
            reason="every payment confirmed by the bank",
            details={
                "compensation": str(compensation.id),
                "paid": paid,
                "clawed_back": compensation.clawed_back,
            },
        )
        session.flush()

    # --- reading ---------------------------------------------------------------------------

    def of_case(self, session: Session, case_id: uuid.UUID) -> Compensation | None:
        return session.scalars(
            select(Compensation).where(Compensation.case_id == case_id)
        ).one_or_none()

    def _latest_payments(
        self, session: Session, compensation_id: uuid.UUID
    ) -> list[CompensationPayment]:
        payments = session.scalars(
            select(CompensationPayment)
            .where(CompensationPayment.compensation_id == compensation_id)
            .order_by(CompensationPayment.slot, CompensationPayment.attempt)
        ).all()
        return list({payment.slot: payment for payment in payments}.values())

    def report(self, session: Session, case_id: uuid.UUID) -> CompensationReport:
        """Where the case's compensation stands."""
        compensation = self.of_case(session, _case(session, case_id).id)
        if compensation is None:
            raise UnknownCase("this case has no compensation yet", case_id=str(case_id))
        report = CompensationReport(
            compensation.id,
            compensation.case_id,
            compensation.wallet_id,
            compensation.status,
            compensation.clawed_back,
        )
        for payment in self._latest_payments(session, compensation.id):
            if payment.status == POSTED:
                if payment.purpose == PaymentPurpose.REFUND.value:
                    report.refunded += payment.amount
                else:
                    report.costs_paid += payment.amount
            else:
                report.outstanding += payment.amount
            report.payments.append(
                {
                    "id": str(payment.id),
                    "purpose": payment.purpose,
                    "bank_code": payment.bank_code,
                    "link_id": str(payment.link_id),
                    "amount": payment.amount,
                    "status": payment.status,
                    "attempt": payment.attempt,
                    "failure": payment.failure,
                    "resolved_at": _iso(payment.resolved_at),
                }
            )
        return report


def _case(session: Session, case_id: uuid.UUID) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise UnknownCase("no such case", case_id=str(case_id))
    return case


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


compensations = CompensationService()
"""The compensation service singleton."""


def reconcile_compensation(
    session: Session, transfer: BankTransfer, report: ReconcileReport
) -> bool:
    """Reconciliation's matcher for the credits a compensation run made (registered by
    :mod:`kouza.assembly`): a bank transfer carrying a payment's key is checked against that
    payment rather than reported as unknown to the wallet. False if it is not one."""
    payment = session.scalars(
        select(CompensationPayment).where(CompensationPayment.bank_key == transfer.idempotency_key)
    ).one_or_none()
    if payment is None:
        return False
    report.checked += 1
    if payment.status != "posted" or payment.amount != transfer.amount:
        report.differences.append(
            Difference(
                "compensation_unsettled",
                transfer.idempotency_key,
                None,
                payment.amount,
                transfer.amount,
                f"the bank credited a compensation payment the wallet has as "
                f"{payment.status}; run the compensation again to settle it",
            )
        )
    return True
