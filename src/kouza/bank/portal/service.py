"""What the holder portal shows and does, for one signed-in customer (or, for a notice opened
without signing in, for whoever holds its reference).

Every change goes through :data:`kouza.bank.holder.holder` — the service the branch counter
uses — so a revocation from the portal is the counter's: debits stop in the same unit of work
and the operator gets the signed webhook through the outbox. A link or notice that is not the
customer's is :class:`~kouza.bank.errors.UnknownLink` (404), never a hint that it exists.

"Not me" is answered once: a second press on the same notice changes nothing (no second alert,
no second webhook) and says when it was reported.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.errors import UnknownLink
from kouza.bank.holder import holder
from kouza.bank.models import (
    Account,
    Alert,
    Bank,
    Branch,
    Customer,
    Link,
    LinkStatus,
    Movement,
    OperatorClient,
    PortalSession,
    Transfer,
)
from kouza.bank.notices import IDENTITY_CHECK_FAILED
from kouza.bank.oauth.interaction import interactions
from kouza.kit.locking import lock_row

LINK_CREATED = "link_created"
"""Notice kind of the notice every new link sends (its reference is the link's)."""
DISOWNED_LINK = "holder_disowned_link"
CONFIRMED_COMPROMISE = "holder_confirmed_compromise"
HISTORY_LIMIT = 200


@dataclass(frozen=True)
class AccountRow:
    """One of the customer's accounts."""

    account: Account
    branch: Branch

    @property
    def label(self) -> str:
        return f"{self.branch.name} ({self.branch.code}) {self.account.number}"


@dataclass(frozen=True)
class LinkRow:
    """A link on one of the customer's accounts, with its operator."""

    link: Link
    operator: OperatorClient
    account: AccountRow


@dataclass(frozen=True)
class NoticeRow:
    """A notice the bank sent the holder, and what became of what it reported."""

    kind: str
    """``link_created``, ``oauth_identity_mismatch`` or ``legacy_failed_attempts``."""
    reference: str
    created_at: datetime
    operator_name: str
    last3: str
    """Last three digits of the account concerned ("" when the notice names none)."""
    state: str
    """The link's status, or ``blocked`` for a refused attempt (no link was made)."""
    customer_id: int
    reported_at: datetime | None


class NotMeOutcome(StrEnum):
    """What a "not me" did."""

    LINK_REVOKED = "link_revoked"
    """The link was live: it is revoked and the operator told."""
    LINK_WAS_REVOKED = "link_was_revoked"
    """The link had already ended; the report went to the fraud team."""
    LOGIN_LOCKED = "login_locked"
    """A security notice about internet banking: the login is locked."""
    PIN_LOCKED = "pin_locked"
    """A security notice about failed legacy attempts: the account's PIN is locked."""
    ALREADY_REPORTED = "already_reported"
    """Reported before: nothing changed."""


@dataclass(frozen=True)
class NotMeResult:
    outcome: NotMeOutcome
    notice: NoticeRow


@dataclass(frozen=True)
class HistoryRow:
    """One movement on the customer's accounts, with the operator that caused it."""

    movement: Movement
    operator_name: str | None
    account: AccountRow


@dataclass(frozen=True)
class OperatorTotal:
    name: str | None
    count: int
    debited: int
    """Yen, ≥ 0: the sum of the debits shown."""
    credited: int
    """Yen, ≥ 0: the sum of the credits shown."""


class Portal:
    """The holder portal's reads and actions."""

    def customer(self, session: Session, portal: PortalSession) -> Customer:
        """The signed-in customer."""
        return session.get_one(Customer, portal.customer_id)

    def accounts(self, session: Session, customer: Customer) -> list[AccountRow]:
        """The customer's accounts."""
        return [
            AccountRow(account, session.get_one(Branch, account.branch_id))
            for account in interactions.accounts(session, customer)
        ]

    def links(self, session: Session, customer: Customer) -> list[LinkRow]:
        """Every link ever made on the customer's accounts, newest first."""
        rows = [
            LinkRow(link, session.get_one(OperatorClient, link.client_pk), account)
            for account in self.accounts(session, customer)
            for link in holder.links(session, account.account)
        ]
        return sorted(rows, key=lambda row: row.link.created_at, reverse=True)

    def own_link(self, session: Session, customer: Customer, link_id: str) -> LinkRow:
        """One of the customer's links (UnknownLink for any other id)."""
        for row in self.links(session, customer):
            if str(row.link.id) == link_id:
                return row
        raise UnknownLink("no such link on your accounts")

    def revoke(self, session: Session, customer: Customer, link_id: str) -> LinkRow:
        """End one of the customer's links now (the operator is told)."""
        row = self.own_link(session, customer, link_id)
        holder.revoke(session, row.link.id, reason="holder: revoked in the holder portal")
        return row

    def set_debits(
        self, session: Session, customer: Customer, link_id: str, *, allowed: bool
    ) -> LinkRow:
        """Suspend (or resume) the debits of the link's operator on the link's account."""
        row = self.own_link(session, customer, link_id)
        change = holder.resume_operator if allowed else holder.suspend_operator
        change(session, row.account.account, row.operator, reason="holder: holder portal")
        return row

    def notices(self, session: Session, customer: Customer) -> list[NoticeRow]:
        """The link notices and security notices sent to the customer, newest first."""
        rows = [self._link_notice(session, row.link) for row in self.links(session, customer)]
        accounts = self.accounts(session, customer)
        if accounts:
            rows += [
                self._security_notice(session, alert)
                for alert in holder.security_notices(session, accounts[0].account)
            ]
        return sorted(rows, key=lambda row: row.created_at, reverse=True)

    def notice(
        self, session: Session, bank: Bank, reference: str, *, customer: Customer | None = None
    ) -> NoticeRow:
        """The notice with ``reference`` at ``bank`` (the customer's, when one is given)."""
        wanted = reference.strip().upper()
        found: NoticeRow | None = None
        link = session.scalars(select(Link).where(Link.notice_reference == wanted)).one_or_none()
        if link is not None and link.bank_id == bank.id:
            found = self._link_notice(session, link)
        alert = session.scalars(select(Alert).where(Alert.notice_reference == wanted)).one_or_none()
        if alert is not None and alert.bank_id == bank.id and alert.customer_id is not None:
            found = self._security_notice(session, alert)
        if found is None or (customer is not None and found.customer_id != customer.id):
            raise UnknownLink("there is no notice with this reference")
        return found

    def not_me(
        self, session: Session, bank: Bank, reference: str, *, customer: Customer | None = None
    ) -> NotMeResult:
        """The holder disowns what the notice reported (once): the link is revoked, or the
        credential the security notice is about is locked; the fraud team is alerted."""
        notice = self.notice(session, bank, reference, customer=customer)
        link = session.scalars(
            select(Link).where(Link.notice_reference == notice.reference)
        ).one_or_none()
        if link is not None:  # serialise two presses on the same notice
            lock_row(session, Link, link.id)
            notice = self.notice(session, bank, reference, customer=customer)
        if notice.reported_at is not None:
            return NotMeResult(NotMeOutcome.ALREADY_REPORTED, notice)
        was_live = notice.state in (LinkStatus.ACTIVE.value, LinkStatus.SUSPENDED.value)
        holder.not_me(session, notice.reference)
        session.flush()
        after = self.notice(session, bank, reference, customer=customer)
        if notice.kind == LINK_CREATED:
            outcome = NotMeOutcome.LINK_REVOKED if was_live else NotMeOutcome.LINK_WAS_REVOKED
        elif notice.kind == IDENTITY_CHECK_FAILED:
            outcome = NotMeOutcome.LOGIN_LOCKED
        else:
            outcome = NotMeOutcome.PIN_LOCKED
        return NotMeResult(outcome, after)

    def history(
        self, session: Session, customer: Customer, *, operator: str = ""
    ) -> tuple[list[HistoryRow], list[OperatorTotal]]:
        """Movements on the customer's accounts, newest first (one operator's, when
        ``operator`` is its client id), and the totals by operator."""
        accounts = {row.account.id: row for row in self.accounts(session, customer)}
        query = (
            select(Movement, OperatorClient)
            .outerjoin(Transfer, Transfer.movement_id == Movement.id)
            .outerjoin(OperatorClient, OperatorClient.id == Transfer.client_pk)
            .where(Movement.account_id.in_(accounts))
            .order_by(Movement.id.desc())
            .limit(HISTORY_LIMIT)
        )
        if operator:
            query = query.where(OperatorClient.client_id == operator)
        rows = [
            HistoryRow(movement, client.name if client else None, accounts[movement.account_id])
            for movement, client in session.execute(query).all()
        ]
        return rows, _totals(rows)

    def operators(self, session: Session, customer: Customer) -> list[OperatorClient]:
        """The operators ever linked to the customer's accounts (for the history filter)."""
        seen: dict[int, OperatorClient] = {}
        for row in self.links(session, customer):
            seen.setdefault(row.operator.id, row.operator)
        return sorted(seen.values(), key=lambda client: client.name)

    def _link_notice(self, session: Session, link: Link) -> NoticeRow:
        account = session.get_one(Account, link.account_id)
        return NoticeRow(
            kind=LINK_CREATED,
            reference=link.notice_reference,
            created_at=link.created_at,
            operator_name=session.get_one(OperatorClient, link.client_pk).name,
            last3=account.number[-3:],
            state=link.status,
            customer_id=account.customer_id,
            reported_at=_first_alert(session, DISOWNED_LINK, str(link.id)),
        )

    def _security_notice(self, session: Session, alert: Alert) -> NoticeRow:
        account = session.get(Account, alert.account_id) if alert.account_id else None
        client = session.get(OperatorClient, alert.client_pk) if alert.client_pk else None
        assert alert.customer_id is not None and alert.notice_reference is not None
        return NoticeRow(
            kind=alert.kind,
            reference=alert.notice_reference,
            created_at=alert.created_at,
            operator_name=client.name if client else "",
            last3=account.number[-3:] if account else "",
            state="blocked",
            customer_id=alert.customer_id,
            reported_at=_first_alert(
                session, CONFIRMED_COMPROMISE, f"notice:{alert.notice_reference}"
            ),
        )


def _first_alert(session: Session, kind: str, subject: str) -> datetime | None:
    return session.scalars(
        select(Alert.created_at)
        .where(Alert.kind == kind, Alert.subject == subject)
        .order_by(Alert.id)
        .limit(1)
    ).first()


def _totals(rows: Sequence[HistoryRow]) -> list[OperatorTotal]:
    totals: dict[str | None, list[int]] = {}
    for row in rows:
        entry = totals.setdefault(row.operator_name, [0, 0, 0])
        entry[0] += 1
        entry[1 if row.movement.kind == "debit" else 2] += row.movement.amount
    return [
        OperatorTotal(name, count, debited, credited)
        for name, (count, debited, credited) in sorted(
            totals.items(), key=lambda item: item[0] or ""
        )
    ]


portal = Portal()
"""The holder portal service singleton."""


def parse_link_id(value: str) -> str:
    """A link id as the pages carry it (a malformed one is simply unknown)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UnknownLink("no such link on your accounts") from None
