"""The release job of restricted links' probation holds (ADR 0032).

A top-up through a restricted link during its probation is debited at the bank at once and
credited as held funds (:class:`~kouza.linking.models.BankMovementReview` with a
``release_at``), so that the account holder — told of the link and of each debit by the bank,
with a "not me" reference — has time to disown it before the money can be spent.
:func:`release_due` decides those holds, without a person:

* the link is still **active** and the wallet **active**, and ``release_at`` has come: the hold
  is posted, the money spendable (``bank_movement.release``);
* the link was **revoked** (the holder said "not me" at the bank, or revoked it at the counter;
  the bank's webhook already marked it): the money goes back to the bank account at once,
  whatever ``release_at`` — the review's reject path, a credit that *reverses* the held debit,
  which the bank accepts on a revoked link (``bank_movement.reject``);
* anything else (link suspended, wallet locked, the bank's answer for the debit not known yet)
  waits: for the bank, for the next run, or for an operator, who can release or reject it in
  the review queue like any held top-up.

Every decision is audited with the actor ``probation``. The job is idempotent: a hold decided
by another run (or an operator) meanwhile is skipped, and the refund has its own movement
and bank key, so a lost answer is resolved by a retry or ``kouza banks reconcile``. It costs
one indexed query when nothing is due. ``kouza links release-due`` runs it (from cron, every
few minutes in production; ``kouza serve`` has no periodic worker); the simulator runs it
every simulated hour.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import or_, select

from kouza.errors import KouzaError
from kouza.linking.models import (
    BankLink,
    BankLinkStatus,
    BankMovement,
    BankMovementReview,
    MovementStatus,
    ReviewStatus,
)
from kouza.linking.reviews import reviews
from kouza.runtime import Runtime
from kouza.wallet.models import Wallet, WalletStatus

ACTOR = "probation"
"""The audit trail's actor of the job's decisions."""


@dataclass
class ReleaseReport:
    """What one run decided (movement ids of the held top-ups)."""

    released: list[uuid.UUID] = field(default_factory=list)
    """Posted: the money is spendable."""
    returned: list[uuid.UUID] = field(default_factory=list)
    """Rejected because the link was revoked: a refund credit to the bank account recorded
    (its status is the refund movement's: posted, unknown or voided)."""
    waiting: list[uuid.UUID] = field(default_factory=list)
    """Due but left held: link suspended, wallet locked, bank answer unknown, or decided by
    someone else during this run."""


def release_due(runtime: Runtime, *, limit: int = 500) -> ReleaseReport:
    """Decide every probation hold that is due (or whose link was revoked), oldest first."""
    now = runtime.now()
    review = BankMovementReview
    with runtime.db.session() as session:
        due = session.execute(
            select(review.movement_id, BankLink.status, Wallet.status, BankMovement.status)
            .join(BankMovement, BankMovement.id == review.movement_id)
            .join(BankLink, BankLink.id == BankMovement.link_id)
            .join(Wallet, Wallet.id == review.wallet_id)
            .where(
                review.status == ReviewStatus.HELD.value,
                review.release_at.is_not(None),
                or_(review.release_at <= now, BankLink.status == BankLinkStatus.REVOKED.value),
            )
            .order_by(review.release_at, review.movement_id)
            .limit(limit)
        ).all()
    report = ReleaseReport()
    for movement_id, link_status, wallet_status, movement_status in due:
        if movement_status != MovementStatus.POSTED.value:
            report.waiting.append(movement_id)  # the bank's answer first (reconciliation)
        elif link_status == BankLinkStatus.REVOKED.value:
            _return(runtime, movement_id, report)
        elif (
            link_status == BankLinkStatus.ACTIVE.value
            and wallet_status == WalletStatus.ACTIVE.value
        ):
            _release(runtime, movement_id, report)
        else:
            report.waiting.append(movement_id)
    return report


def _release(runtime: Runtime, movement_id: uuid.UUID, report: ReleaseReport) -> None:
    try:
        with runtime.db.unit_of_work() as session:
            reviews.release(
                session,
                movement_id,
                actor=ACTOR,
                reason="probation hold over; the link is in good standing",
            )
    except KouzaError:  # decided meanwhile (another run, an operator): nothing to do
        report.waiting.append(movement_id)
        return
    report.released.append(movement_id)


def _return(runtime: Runtime, movement_id: uuid.UUID, report: ReleaseReport) -> None:
    try:
        reviews.reject(
            runtime,
            movement_id,
            actor=ACTOR,
            reason="the link was revoked at the bank during probation: the held money goes back",
        )
    except KouzaError:
        report.waiting.append(movement_id)
        return
    report.returned.append(movement_id)
