"""Top-ups held for review: an operator releases them or rejects them, audited.

When the risk engine answers ``review`` on a top-up, :mod:`~kouza.linking.movements`
credits and holds instead of refusing: the bank is debited, the movement is ``posted`` (that is
what the bank did, and what reconciliation compares), and the ledger hold stays pending — the
customer sees the money as ``pending_in`` and cannot spend it. An operator then decides:

* **release**: the hold is posted; the money becomes spendable.
* **reject**: the money goes back to the bank account it came from. In one unit of work the
  hold is posted and a refund movement is recorded at once with its own hold on the same amount
  (wallet → bank clearing), so the money is never spendable in between; the refund is then a
  bank credit under the link (its DPoP token for an OAuth link) with an idempotency key derived
  from the refund's id, settled like any withdrawal — a lost answer leaves it ``unknown`` for a
  retry or ``kouza banks reconcile``, and both bank transfers reconcile against their movements.
  The credit names the held debit it reverses, so the bank takes it even on a link the holder
  revoked (ADR 0032). If the bank refuses it (a closed account), the refund is voided and
  the money stays in the wallet: the review says so and the operator goes on with compensation
  and, if need be, a wallet lock.

Only a review whose bank debit is known to have happened can be decided (``bank_review_not_ready``
otherwise: reconcile first). Every decision needs a reason and is written to the audit trail
with the operator's name, in the same unit of work as the decision.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.controls.errors import ReasonRequired
from kouza.controls.service import controls
from kouza.kit.locking import lock_row
from kouza.linking.client import bank_client_of
from kouza.linking.errors import (
    BankRefused,
    BankUnavailable,
    ReviewNotFound,
    ReviewNotPending,
    ReviewNotReady,
)
from kouza.linking.models import (
    UNRESOLVED,
    BankLink,
    BankMovement,
    BankMovementReview,
    MovementDirection,
    MovementStatus,
    ReviewStatus,
)
from kouza.linking.movements import PASSBOOK_TEXT, settle
from kouza.linking.oauth import dpop_credentials
from kouza.runtime import Runtime, runtime_of
from kouza.wallet import banking
from kouza.wallet.models import Wallet


@dataclass(frozen=True)
class ReviewView:
    """A review with the movements it concerns."""

    review: BankMovementReview
    movement: BankMovement
    refund: BankMovement | None


@dataclass(frozen=True)
class _Refund:
    """What the refund's bank call needs, read out of the deciding unit of work."""

    movement_id: uuid.UUID
    link_id: uuid.UUID
    bank_link_id: uuid.UUID
    amount: int
    bank_key: str
    reverses: uuid.UUID | None
    """The bank transfer of the held debit: the refund is its reversal, which the bank takes
    even on a link the holder revoked (ADR 0032)."""


def _reason(reason: str) -> str:
    if not reason.strip():
        raise ReasonRequired("releasing or rejecting held money needs a reason")
    return reason.strip()[:500]


class ReviewService:
    """List, release and reject top-ups held for review."""

    def list(
        self,
        session: Session,
        *,
        status: ReviewStatus | None = ReviewStatus.HELD,
        limit: int = 100,
        probation: bool | None = False,
    ) -> list[ReviewView]:
        """Reviews (oldest first), by default the ones waiting for an operator's decision.
        ``probation``: False (default) the risk engine's reviews only, True only restricted
        links' probation holds (released by the job, ADR 0032), None both."""
        query = select(BankMovementReview).order_by(
            BankMovementReview.created_at, BankMovementReview.movement_id
        )
        if status is not None:
            query = query.where(BankMovementReview.status == status.value)
        if probation is not None:
            release_at = BankMovementReview.release_at
            query = query.where(release_at.is_not(None) if probation else release_at.is_(None))
        return [self._view(session, review) for review in session.scalars(query.limit(limit))]

    def get(self, session: Session, movement_id: uuid.UUID) -> ReviewView:
        """One review by the held movement's id."""
        review = session.get(BankMovementReview, movement_id)
        if review is None:
            raise ReviewNotFound(
                "no top-up held for review with this id", movement_id=str(movement_id)
            )
        return self._view(session, review)

    def release(
        self, session: Session, movement_id: uuid.UUID, *, actor: str, reason: str
    ) -> ReviewView:
        """Post the held top-up: the money becomes spendable (audited)."""
        why = _reason(reason)
        review, movement = self._decidable(session, movement_id)
        banking.settle(session, movement.hold_id, moved=True)
        self._decide(session, review, ReviewStatus.RELEASED, actor=actor, reason=why)
        controls.audit(
            session,
            actor=actor,
            action="bank_movement.release",
            subject=str(movement.id),
            reason=why,
            details={"wallet": str(movement.wallet_id), "amount": movement.amount},
        )
        return self._view(session, review)

    def reject(
        self, runtime: Runtime, movement_id: uuid.UUID, *, actor: str, reason: str
    ) -> ReviewView:
        """Send the held top-up back to the bank account it came from (audited)."""
        why = _reason(reason)
        with runtime.db.unit_of_work() as session:
            refund = self._record_refund(session, movement_id, actor=actor, reason=why)
        self._call_bank(runtime, refund)
        with runtime.db.unit_of_work() as session:
            return self.get(session, movement_id)

    # --- internals ---------------------------------------------------------------------------

    def _decidable(
        self, session: Session, movement_id: uuid.UUID
    ) -> tuple[BankMovementReview, BankMovement]:
        known = session.get(BankMovementReview, movement_id)
        if known is None:
            raise ReviewNotFound(
                "no top-up held for review with this id", movement_id=str(movement_id)
            )
        lock_row(session, Wallet, known.wallet_id)  # wallet first, as every money path does
        movement = lock_row(session, BankMovement, movement_id)
        review = lock_row(session, BankMovementReview, movement_id)
        assert movement is not None and review is not None
        if review.status != ReviewStatus.HELD.value:
            raise ReviewNotPending(f"this top-up was already {review.status}", status=review.status)
        if movement.status in UNRESOLVED:
            raise ReviewNotReady(
                "the bank's answer for this top-up is not known yet; reconcile it first",
                movement_status=movement.status,
            )
        if movement.status != MovementStatus.POSTED.value:
            raise ReviewNotPending("the bank never moved this money", status=movement.status)
        return review, movement

    def _decide(
        self,
        session: Session,
        review: BankMovementReview,
        status: ReviewStatus,
        *,
        actor: str,
        reason: str,
    ) -> None:
        review.status = status.value
        review.decided_at = runtime_of(session).now()
        review.decided_by = actor[:120]
        review.decision_reason = reason
        session.flush()

    def _record_refund(
        self, session: Session, movement_id: uuid.UUID, *, actor: str, reason: str
    ) -> _Refund:
        review, movement = self._decidable(session, movement_id)
        runtime = runtime_of(session)
        link = session.get_one(BankLink, movement.link_id)
        wallet = session.get_one(Wallet, movement.wallet_id)
        # posted and re-held in one unit of work: the money is never spendable in between
        banking.settle(session, movement.hold_id, moved=True)
        refund_id = uuid.uuid4()
        hold = banking.hold(
            session,
            wallet=wallet,
            incoming=False,
            bank_code=link.bank_code,
            amount=movement.amount,
            movement_id=refund_id,
            description=f"refund of a rejected top-up to bank {link.bank_code}",
            reference={"bank_movement": str(refund_id), "refund_of": str(movement.id)},
        )
        refund = BankMovement(
            id=refund_id,
            wallet_id=movement.wallet_id,
            link_id=link.id,
            bank_code=link.bank_code,
            direction=MovementDirection.CREDIT.value,
            amount=movement.amount,
            bank_key=f"kouza-mv-{refund_id}",
            hold_id=hold.id,
            status=MovementStatus.PENDING.value,
            created_at=runtime.now(),
        )
        session.add(refund)
        session.flush()
        review.refund_movement_id = refund.id
        self._decide(session, review, ReviewStatus.REJECTED, actor=actor, reason=reason)
        controls.audit(
            session,
            actor=actor,
            action="bank_movement.reject",
            subject=str(movement.id),
            reason=reason,
            details={
                "wallet": str(movement.wallet_id),
                "amount": movement.amount,
                "refund_movement": str(refund.id),
            },
        )
        return _Refund(
            refund.id,
            link.id,
            link.bank_link_id,
            refund.amount,
            refund.bank_key,
            movement.bank_transfer_id,
        )

    def _call_bank(self, runtime: Runtime, refund: _Refund) -> None:
        client = bank_client_of(runtime)
        try:
            transfer = client.credit(
                refund.bank_link_id,
                amount=refund.amount,
                idempotency_key=refund.bank_key,
                description=PASSBOOK_TEXT,
                credentials=dpop_credentials(runtime, refund.link_id),
                reverses=refund.reverses,
            )
        except BankRefused as refusal:
            code = str(refusal.details.get("bank_error") or refusal.code)
            with runtime.db.unit_of_work() as session:
                settle(
                    session, refund.movement_id, transfer=None, failure=f"{code}: {refusal.message}"
                )
            return
        except BankUnavailable:
            with runtime.db.unit_of_work() as session:
                movement = lock_row(session, BankMovement, refund.movement_id)
                if movement is not None and movement.status == MovementStatus.PENDING.value:
                    movement.status = MovementStatus.UNKNOWN.value
            return
        with runtime.db.unit_of_work() as session:
            settle(session, refund.movement_id, transfer=transfer)

    def _view(self, session: Session, review: BankMovementReview) -> ReviewView:
        movement = session.get_one(BankMovement, review.movement_id)
        refund = (
            session.get(BankMovement, review.refund_movement_id)
            if review.refund_movement_id is not None
            else None
        )
        return ReviewView(review, movement, refund)


reviews = ReviewService()
"""The review service singleton."""
