"""The linking service: the one entry point other code calls, ``linking``.

The work lives in one module per verb — :mod:`~kouza.linking.links` (link through a
bank's legacy form, under kouza's :mod:`~kouza.linking.policy`),
:mod:`~kouza.linking.movements` (top-ups and withdrawals: record, call, settle),
:mod:`~kouza.linking.receiver` (the bank's signed webhooks) and
:mod:`~kouza.linking.reconcile` (both sides compared) — and every bank call goes through
:class:`~kouza.linking.client.BankClient` over HTTP (``KouzaRuntime.bank_client``).

Linking runs in the caller's unit of work. Top-ups and withdrawals take the
:class:`~kouza.runtime.Runtime` instead of a session, because they must commit their record
*before* calling the bank and settle in a second unit of work after it (ADR 0010), and because
they claim their Idempotency-Key themselves (:mod:`kouza.kit.idempotency`, ADR 0004): whoever
calls them — an endpoint, the simulator, a test — gets the same replay, conflict and resume.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy.orm import Session

from kouza.identity.models import User
from kouza.kit.idempotency import validate_key
from kouza.linking import receiver
from kouza.linking.links import Caller, LegacyLinkInput, link_service
from kouza.linking.models import BankLink, MovementDirection
from kouza.linking.movements import MoveRequest, movements
from kouza.linking.policy import DeviceProof
from kouza.linking.reconcile import ReconcileReport, reconciler
from kouza.linking.schemas import BankMovementRead
from kouza.runtime import Runtime
from kouza.wallet.service import wallets


class LinkingService:
    """Bank links, top-ups, withdrawals, webhooks and reconciliation."""

    def link_legacy(
        self,
        session: Session,
        *,
        user: User,
        wallet_id: uuid.UUID,
        bank_code: str,
        branch: str,
        account_type: str,
        account_number: str,
        pin: str,
        birth_date: date | None = None,
        holder_name: str | None = None,
        device_id: uuid.UUID | None = None,
        proof: DeviceProof | None = None,
        ip: str,
    ) -> BankLink:
        """Link a bank account through the bank's legacy form, under kouza's policy."""
        form = LegacyLinkInput(
            bank_code=bank_code,
            branch=branch,
            account_type=account_type,
            account_number=account_number,
            pin=pin,
            birth_date=birth_date,
            holder_name=holder_name,
        )
        caller = Caller(user=user, wallet_id=wallet_id, ip=ip, device_id=device_id, proof=proof)
        return link_service.link_legacy(session, caller, form)

    def links(self, session: Session, *, user: User, wallet_id: uuid.UUID) -> list[BankLink]:
        """The links of one of the user's wallets, newest first."""
        wallet = wallets.owned_wallet(session, user=user, wallet_id=wallet_id)
        return link_service.links_of(session, wallet.id)

    def links_of_wallet(self, session: Session, wallet_id: uuid.UUID) -> list[BankLink]:
        """The links of any wallet (operator view)."""
        return link_service.links_of(session, wallets.get_wallet(session, wallet_id).id)

    def top_up(
        self,
        runtime: Runtime,
        *,
        user: User | Callable[[Session], User],
        wallet_id: uuid.UUID,
        link_id: uuid.UUID,
        amount: int,
        idempotency_key: str,
        device_id: uuid.UUID | None = None,
        proof: DeviceProof | None = None,
        ip: str,
    ) -> BankMovementRead:
        """Charge the wallet from a linked account (bank debit under the mandate), once per
        Idempotency-Key; returns the answer a retry with the same key replays. ``user`` may be
        a function that authenticates the caller in the movement's recording unit of work."""
        return self._move(
            runtime,
            MovementDirection.DEBIT,
            user,
            wallet_id,
            link_id,
            amount,
            idempotency_key,
            device_id,
            proof,
            ip,
        )

    def withdraw(
        self,
        runtime: Runtime,
        *,
        user: User | Callable[[Session], User],
        wallet_id: uuid.UUID,
        link_id: uuid.UUID,
        amount: int,
        idempotency_key: str,
        device_id: uuid.UUID | None = None,
        proof: DeviceProof | None = None,
        ip: str,
    ) -> BankMovementRead:
        """Send wallet balance to a linked account (bank credit), once per Idempotency-Key."""
        return self._move(
            runtime,
            MovementDirection.CREDIT,
            user,
            wallet_id,
            link_id,
            amount,
            idempotency_key,
            device_id,
            proof,
            ip,
        )

    def _move(
        self,
        runtime: Runtime,
        direction: MovementDirection,
        user: User | Callable[[Session], User],
        wallet_id: uuid.UUID,
        link_id: uuid.UUID,
        amount: int,
        key: str,
        device_id: uuid.UUID | None,
        proof: DeviceProof | None,
        ip: str,
    ) -> BankMovementRead:
        def request(who: User) -> MoveRequest:
            caller = Caller(user=who, wallet_id=wallet_id, ip=ip, device_id=device_id, proof=proof)
            return MoveRequest(
                caller=caller,
                direction=direction,
                link_id=link_id,
                amount=amount,
                idempotency_key=key,
            )

        if isinstance(user, User):
            return movements.move(runtime, request(user))
        # the caller is authenticated in the unit of work that records the movement
        authenticate = user
        validate_key(key)
        return movements.move(runtime, lambda session: request(authenticate(session)))

    def receive_webhook(self, session: Session, token: str) -> BankLink | None:
        """Verify and apply a signed bank event (link revoked, suspended, resumed)."""
        return receiver.receive(session, token)

    def reconcile(self, session: Session, *, since: datetime, until: datetime) -> ReconcileReport:
        """Compare bank movements in ``[since, until)`` with the bank's report; settle."""
        return reconciler.reconcile(session, since=since, until=until)


linking = LinkingService()
"""The linking service singleton."""
