"""Wallet locks: stop spending and withdrawals at once, keep the balance for restitution.

Locking is idempotent (locking a locked wallet changes nothing and is still answered) and
audited with who and why. Unlocking needs a reason too. Each lock is a :class:`WalletLock` row
(at most one open per wallet, a partial unique index): the first lock of a wallet is handed to
the runtime's lock listeners — :mod:`kouza.linking.notices` queues one signed notice per linked
bank account there, so the bank can warn its customer (the composition root,
:mod:`kouza.assembly`, registers it: the wallet does not import its bank client). Locking again
while locked returns the same lock and tells no listener.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.controls.service import controls
from kouza.runtime import runtime_of
from kouza.wallet.models import Wallet, WalletLock, WalletStatus
from kouza.wallet.repository import lock_wallet

LockListener = Callable[[Session, WalletLock], object]
"""Called in the locking unit of work with a wallet's new lock."""


class LockListenersPort(Protocol):
    """Where the runtime keeps the lock listeners (``kouza.assembly.KouzaRuntime``)."""

    lock_listeners: list[LockListener]


class LockService:
    """Lock and unlock wallets."""

    def lock(self, session: Session, *, wallet_id: uuid.UUID, actor: str, reason: str) -> Wallet:
        """Freeze a wallet (suspected fraud) and tell the banks of its linked accounts."""
        controls.audit(
            session, actor=actor, action="wallet.lock", subject=str(wallet_id), reason=reason
        )
        wallet = _set_status(session, wallet_id, WalletStatus.LOCKED)
        lock = self.open_lock(session, wallet_id)
        if lock is None:
            lock = WalletLock(
                wallet_id=wallet_id,
                actor=actor[:120],
                reason=reason[:500],
                locked_at=runtime_of(session).now(),
            )
            session.add(lock)
            session.flush()
            for listener in cast(LockListenersPort, runtime_of(session)).lock_listeners:
                listener(session, lock)
        return wallet

    def unlock(self, session: Session, *, wallet_id: uuid.UUID, actor: str, reason: str) -> Wallet:
        """Lift a lock."""
        controls.audit(
            session, actor=actor, action="wallet.unlock", subject=str(wallet_id), reason=reason
        )
        wallet = _set_status(session, wallet_id, WalletStatus.ACTIVE)
        lock = self.open_lock(session, wallet_id)
        if lock is not None:
            lock.unlocked_at = runtime_of(session).now()
            lock.unlocked_by, lock.unlock_reason = actor[:120], reason[:500]
            session.flush()
        return wallet

    def open_lock(self, session: Session, wallet_id: uuid.UUID) -> WalletLock | None:
        """The wallet's lock that is still in force, if any."""
        return session.scalars(
            select(WalletLock).where(
                WalletLock.wallet_id == wallet_id, WalletLock.unlocked_at.is_(None)
            )
        ).one_or_none()


def _set_status(session: Session, wallet_id: uuid.UUID, status: WalletStatus) -> Wallet:
    wallet = lock_wallet(session, wallet_id)
    wallet.status = status.value
    session.flush()
    return wallet


locks = LockService()
"""The wallet-lock service singleton."""
