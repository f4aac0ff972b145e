"""The wallet's row locks that more than one wallet module takes."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from kouza.kit.locking import lock_row
from kouza.wallet.errors import UnknownWallet
from kouza.wallet.models import Wallet


def lock_wallet(session: Session, wallet_id: uuid.UUID) -> Wallet:
    """The wallet, locked for update (:mod:`kouza.kit.locking`); UnknownWallet if none."""
    wallet = lock_row(session, Wallet, wallet_id)
    if wallet is None:
        raise UnknownWallet("no such wallet", wallet_id=str(wallet_id))
    return wallet


def lock_owned_wallet(session: Session, *, user_id: uuid.UUID, wallet_id: uuid.UUID) -> Wallet:
    """The user's wallet, locked for update; UnknownWallet for a missing wallet and for anyone
    else's alike."""
    wallet = lock_row(session, Wallet, wallet_id)
    if wallet is None or wallet.user_id != user_id:
        raise UnknownWallet("no such wallet", wallet_id=str(wallet_id))
    return wallet
