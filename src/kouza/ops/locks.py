"""Wallet locks: stop spending and withdrawals at once, keep the balance for restitution.

Locking is idempotent (locking a locked wallet changes nothing and is still answered) and
audited with who and why. Unlocking needs a reason too.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from kouza.ops.service import ops
from kouza.wallet.models import Wallet, WalletStatus
from kouza.wallet.service import wallets


class LockService:
    """Lock and unlock wallets."""

    def lock(self, session: Session, *, wallet_id: uuid.UUID, actor: str, reason: str) -> Wallet:
        """Freeze a wallet (suspected fraud)."""
        ops.audit(session, actor=actor, action="wallet.lock", subject=str(wallet_id),
                  reason=reason)
        return wallets.set_status(session, wallet_id=wallet_id, status=WalletStatus.LOCKED)

    def unlock(self, session: Session, *, wallet_id: uuid.UUID, actor: str,
               reason: str) -> Wallet:
        """Lift a lock."""
        ops.audit(session, actor=actor, action="wallet.unlock", subject=str(wallet_id),
                  reason=reason)
        return wallets.set_status(session, wallet_id=wallet_id, status=WalletStatus.ACTIVE)


locks = LockService()
"""The wallet-lock service singleton."""
