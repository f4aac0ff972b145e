"""The wallet's side of money to and from bank accounts: top-ups, withdrawals, refunds.

:mod:`kouza.linking` records a bank movement and calls the bank; what happens to the customer's
money happens here, as for payments and transfers (:mod:`kouza.wallet.service`): which wallet
may use a bank account (the caller's own, active, row-locked), the wallet's limits (counting
the movements still in flight, so concurrent top-ups cannot pass a cap), the ledger hold
between the bank's clearing account and the wallet — credited but not spendable on the way in,
reserved on the way out — and posting or voiding that hold once the bank's answer is known.
The hold's ledger key derives from the movement's id, as the bank key does (ADR 0004).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from kouza.ledger.models import AccountKind, EntryKind, Hold
from kouza.ledger.service import ledger
from kouza.runtime import runtime_of
from kouza.wallet.errors import WalletNotActive
from kouza.wallet.limits import check_limits
from kouza.wallet.models import MovementKind, Wallet, WalletStatus
from kouza.wallet.repository import lock_owned_wallet


def lock_for_bank(session: Session, *, user_id: uuid.UUID, wallet_id: uuid.UUID) -> Wallet:
    """The user's wallet, row-locked, if active; "not found" for anyone else's."""
    wallet = lock_owned_wallet(session, user_id=user_id, wallet_id=wallet_id)
    if wallet.status != WalletStatus.ACTIVE.value:
        raise WalletNotActive(
            f"this wallet is {wallet.status} and cannot use a bank account",
            wallet_id=str(wallet.id),
        )
    return wallet


def check_bank_limits(
    session: Session, wallet: Wallet, *, incoming: bool, amount: int, in_flight: int
) -> None:
    """The wallet's top-up or withdrawal limits for ``amount`` more, the ``in_flight`` yen of
    movements the bank has not answered yet counting as done."""
    kind = MovementKind.TOPUP if incoming else MovementKind.WITHDRAWAL
    check_limits(session, wallet, kind, amount + in_flight)


def hold(
    session: Session,
    *,
    wallet: Wallet,
    incoming: bool,
    bank_code: str,
    amount: int,
    movement_id: uuid.UUID,
    description: str,
    reference: dict[str, Any],
) -> Hold:
    """The ledger hold of one bank movement: clearing → wallet (``incoming``, a top-up) or
    wallet → clearing (a withdrawal or a refund), expiring after ``bank_hold_days``."""
    runtime = runtime_of(session)
    clearing = ledger.system_account(session, AccountKind.BANK_CLEARING, bank_code)
    source, destination = (
        (clearing, wallet.ledger_account_id) if incoming else (wallet.ledger_account_id, clearing)
    )
    return ledger.create_hold(
        session,
        kind=EntryKind.TOPUP if incoming else EntryKind.WITHDRAWAL,
        source=source,
        destination=destination,
        amount=amount,
        expires_at=runtime.now() + timedelta(days=runtime.settings.bank_hold_days),
        description=description,
        idempotency_key=f"bank-movement:{movement_id}",
        reference=reference,
    )


def settle(session: Session, hold_id: int, *, moved: bool) -> None:
    """The bank answered: post the hold (the money moved) or void it (it did not)."""
    if moved:
        ledger.post_hold(session, hold_id=hold_id)
    else:
        ledger.void_hold(session, hold_id=hold_id)
