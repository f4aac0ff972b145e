"""What the call centre tells a caller about their bank account, and why.

A lookup (:meth:`kouza.ops.callcentre.CallCentre.lookup`: the number becomes the keyed
fingerprint, the audit names only the fingerprint) says which wallets the account is linked to
and what moved. :func:`answer` adds what was paid back to *this* account by compensation runs
(refund payments to its links, :mod:`kouza.ops.compensation`) and classifies the call into one
:class:`Situation`; each situation has an answer script in Japanese and English in the console's
catalog (``script.<situation>.*``), written so the operator can read it out without revealing
anything about the other party (the wallet's holder): only what happened to the caller's money
and what happens next.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.orm import Session

from kouza.controls.errors import UnknownCase
from kouza.ops.callcentre import AccountLookup, AccountRef, LinkView, callcentre
from kouza.ops.compensation import compensations
from kouza.ops.models import PaymentPurpose

POSTED = "posted"


class Situation(StrEnum):
    """Where the caller's account stands; each has its own answer script."""

    NOT_LINKED = "not_linked"
    """No wallet has ever been linked to the account."""
    LINKED_NOT_MOVED = "linked_not_moved"
    """Linked, but no money was taken from the account."""
    MOVED = "moved"
    """Money was taken; no compensation has been started yet (under investigation)."""
    BEING_COMPENSATED = "being_compensated"
    """Money was taken; a compensation run has started and has not paid it all back yet."""
    COMPENSATED = "compensated"
    """Everything taken from the account has been paid back."""


@dataclass
class LinkAnswer:
    """One link of the account, with what compensation paid back to the account through it."""

    view: LinkView
    refunded: int = 0
    """Yen paid back to this account (refund payments the bank confirmed)."""
    refund_pending: int = 0
    """Yen of refund payments planned but not yet confirmed by the bank."""
    costs_paid: int = 0
    """Yen paid for the victim's own costs (confirmed)."""
    compensation: str | None = None
    """The status of a compensation of the wallet's cases (running, completed), if any."""

    @property
    def owed(self) -> int:
        return max(self.view.topped_up - self.refunded, 0)


@dataclass
class Answer:
    """A lookup, its compensation figures and the situation the script is chosen by."""

    lookup: AccountLookup
    links: list[LinkAnswer] = field(default_factory=list)

    @property
    def moved(self) -> int:
        """Yen taken from the account by top-ups, over all its links."""
        return sum(link.view.topped_up for link in self.links)

    @property
    def refunded(self) -> int:
        return sum(link.refunded for link in self.links)

    @property
    def situation(self) -> Situation:
        if not self.links:
            return Situation.NOT_LINKED
        if self.moved == 0:
            return Situation.LINKED_NOT_MOVED
        if self.refunded >= self.moved:
            return Situation.COMPENSATED
        if any(link.compensation is not None for link in self.links):
            return Situation.BEING_COMPENSATED
        return Situation.MOVED


def answer(session: Session, account: AccountRef, *, actor: str) -> Answer:
    """Look the account up (audited, by fingerprint only) and say where it stands."""
    lookup = callcentre.lookup(session, account, actor=actor)
    return explain(session, lookup)


def explain(session: Session, lookup: AccountLookup) -> Answer:
    """Add to a lookup what compensation paid back to the account's links."""
    found = Answer(lookup, [LinkAnswer(view) for view in lookup.links])
    for link in found.links:
        for case in link.view.cases:
            _add_compensation(session, link, uuid.UUID(case["case_id"]))
    return found


def _add_compensation(session: Session, link: LinkAnswer, case_id: uuid.UUID) -> None:
    try:
        report = compensations.report(session, case_id)
    except UnknownCase:  # the case has no compensation (yet)
        return
    link.compensation = report.status
    for payment in report.payments:
        if payment["link_id"] != link.view.link_id:
            continue
        posted = payment["status"] == POSTED
        if payment["purpose"] == PaymentPurpose.REFUND.value:
            if posted:
                link.refunded += payment["amount"]
            else:
                link.refund_pending += payment["amount"]
        elif posted:
            link.costs_paid += payment["amount"]
