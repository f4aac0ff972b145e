"""Holder and branch-counter functions: who is linked to my account, and stopping them.

* :meth:`Holder.links` — every wallet link on an account, revoked ones included ("is my account
  linked to a wallet?", asked at the counter after the 2020 incident).
* :meth:`Holder.revoke` — ends a link at once: the status changes in this unit of work and the
  debit check reads it under the link's row lock, so no debit passes after the commit. The
  operator is told by a signed webhook (``kouza.protocol.webhooks``) through the outbox.
* :meth:`Holder.suspend_operator` / :meth:`Holder.resume_operator` — stop or restart debits of
  one operator on an account without ending the link (the operator is told too).
* :meth:`Holder.set_overdraft_opt_in` — whether debits may draw the secured overdraft.
* :meth:`Holder.not_me` — the holder quotes the reference printed on a notice: the link is
  revoked and an alert is recorded for the bank's fraud team. A security notice's reference
  (a failed identity check after a right login + OTP, or repeated failed legacy attempts;
  ADR 0022) locks the credential concerned — internet-banking login, or the account's PIN —
  until the branch renews it, and records ``holder_confirmed_compromise``.
* :meth:`Holder.security_notices` — the security notices the holder was sent (counter view).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.errors import LinkNotActive, UnknownLink
from kouza.bank.keys import signing_key
from kouza.bank.models import (
    Account,
    Alert,
    Bank,
    Customer,
    Link,
    LinkStatus,
    OperatorClient,
)
from kouza.bank.notices import IDENTITY_CHECK_FAILED
from kouza.bank.oauth.interaction import interactions
from kouza.bank.outbox import enqueue_webhook
from kouza.bank.runtime import bank_runtime_of
from kouza.kit.locking import lock_row
from kouza.protocol.webhooks import (
    LINK_RESUMED,
    LINK_REVOKED,
    LINK_SUSPENDED,
    new_event,
    sign_event,
)


class Holder:
    """Link lookup, revocation, suspension and overdraft opt-in for an account."""

    def links(self, session: Session, account: Account) -> Sequence[Link]:
        """Every wallet link ever made on ``account``, newest first."""
        return session.scalars(
            select(Link).where(Link.account_id == account.id).order_by(Link.created_at.desc())
        ).all()

    def link(self, session: Session, link_id: uuid.UUID) -> Link:
        """The link with ``link_id``."""
        link = session.get(Link, link_id)
        if link is None:
            raise UnknownLink("no such link", link_id=str(link_id))
        return link

    def revoke(self, session: Session, link_id: uuid.UUID, *, reason: str) -> Link:
        """End a link now; debits stop at once and the operator gets a signed webhook."""
        link = lock_row(session, Link, link_id)
        if link is None:
            raise UnknownLink("no such link", link_id=str(link_id))
        if link.status == LinkStatus.REVOKED:
            raise LinkNotActive("this link is already revoked", status=link.status)
        runtime = bank_runtime_of(session)
        link.status = LinkStatus.REVOKED.value
        link.revoked_at = runtime.now()
        link.revoked_reason = reason[:200]
        self._tell_operator(session, link, LINK_REVOKED, reason)
        return link

    def suspend_operator(
        self, session: Session, account: Account, client: OperatorClient, *, reason: str
    ) -> Sequence[Link]:
        """Stop every debit of ``client`` on ``account`` (links stay, credits still allowed)."""
        return self._set_status(
            session,
            account,
            client,
            LinkStatus.ACTIVE,
            LinkStatus.SUSPENDED,
            LINK_SUSPENDED,
            reason,
        )

    def resume_operator(
        self, session: Session, account: Account, client: OperatorClient, *, reason: str
    ) -> Sequence[Link]:
        """Allow debits of ``client`` on ``account`` again."""
        return self._set_status(
            session, account, client, LinkStatus.SUSPENDED, LinkStatus.ACTIVE, LINK_RESUMED, reason
        )

    def set_overdraft_opt_in(self, session: Session, account: Account, *, enabled: bool) -> Account:
        """Let debits draw the secured overdraft (``enabled``) or exclude it (the default)."""
        locked = lock_row(session, Account, account.id)
        assert locked is not None
        locked.debit_may_use_overdraft = enabled
        return locked

    def not_me(self, session: Session, reference: str) -> Link | Alert:
        """The holder disowns what a notice reported: a link is revoked; after a failed
        identity check or failed legacy attempts the credential concerned is locked."""
        wanted = reference.strip().upper()
        link = session.scalars(select(Link).where(Link.notice_reference == wanted)).one_or_none()
        if link is None:
            return self._not_me_attempt(session, wanted)
        session.add(
            Alert(
                bank_id=link.bank_id,
                kind="holder_disowned_link",
                subject=str(link.id),
                created_at=bank_runtime_of(session).now(),
                details={"reference": link.notice_reference},
            )
        )
        if link.status != LinkStatus.REVOKED:
            self.revoke(session, link.id, reason="holder: not me")
        return link

    def _not_me_attempt(self, session: Session, reference: str) -> Alert:
        warning = session.scalars(
            select(Alert).where(Alert.notice_reference == reference)
        ).one_or_none()
        if warning is None or warning.customer_id is None:
            raise UnknownLink("no link or notice with this reference")
        now = bank_runtime_of(session).now()
        customer = session.get_one(Customer, warning.customer_id)
        if warning.kind == IDENTITY_CHECK_FAILED:
            interactions.lock_login(session, customer)
        elif warning.account_id is not None:
            account = lock_row(session, Account, warning.account_id)
            assert account is not None
            account.pin_locked_at = account.pin_locked_at or now
        confirmed = Alert(
            bank_id=warning.bank_id,
            kind="holder_confirmed_compromise",
            subject=f"notice:{reference}",
            customer_id=warning.customer_id,
            account_id=warning.account_id,
            client_pk=warning.client_pk,
            created_at=now,
            details={"reference": reference, "warning": warning.kind},
        )
        session.add(confirmed)
        session.flush()
        return warning

    def security_notices(self, session: Session, account: Account) -> Sequence[Alert]:
        """The security notices sent to the account's holder, newest first (no secrets)."""
        return session.scalars(
            select(Alert)
            .where(Alert.customer_id == account.customer_id, Alert.notice_reference.is_not(None))
            .order_by(Alert.created_at.desc(), Alert.id.desc())
        ).all()

    def _set_status(
        self,
        session: Session,
        account: Account,
        client: OperatorClient,
        old: LinkStatus,
        new: LinkStatus,
        event_type: str,
        reason: str,
    ) -> Sequence[Link]:
        ids = session.scalars(
            select(Link.id).where(
                Link.account_id == account.id, Link.client_pk == client.id, Link.status == old.value
            )
        ).all()
        changed = []
        for link_id in sorted(ids, key=str):
            link = lock_row(session, Link, link_id)
            if link is not None and link.status == old.value:
                link.status = new.value
                self._tell_operator(session, link, event_type, reason)
                changed.append(link)
        return changed

    def _tell_operator(self, session: Session, link: Link, event_type: str, reason: str) -> None:
        client = session.get_one(OperatorClient, link.client_pk)
        if not client.webhook_url:
            return
        runtime = bank_runtime_of(session)
        bank = session.get_one(Bank, link.bank_id)
        event = new_event(
            type=event_type,
            issuer=runtime.settings.issuer,
            audience=client.client_id,
            now=runtime.now(),
            bank_code=bank.code,
            link_id=str(link.id),
            operator_reference=link.wallet_reference,
            reason=reason[:200],
        )
        enqueue_webhook(
            session, url=client.webhook_url, token=sign_event(event, signing_key(runtime.secret))
        )


holder = Holder()
"""The holder and branch-counter service singleton."""
