"""Independent readings of a simulated world, for the simulator's tests."""

from __future__ import annotations

from sqlalchemy import func, select

from kouza.ledger.service import ledger
from kouza.sim.driver import Runner
from kouza.wallet.models import Payment, Wallet


def ledger_loss(runner: Runner) -> int:
    """What attackers took, from the ledger alone: everything their wallets hold or spent
    (transfers between their own wallets cancel out) plus what they paid straight from
    customers' wallets they controlled — independent of the driver's reading of the bank
    movements, transfers and payments."""
    total = 0
    with runner.rt.db.session() as session:
        for wallet_id in runner.attack_accounts:
            wallet = session.get_one(Wallet, wallet_id)
            total += ledger.balance(session, wallet.ledger_account_id).balance
            total += int(
                session.scalar(
                    select(
                        func.coalesce(func.sum(Payment.amount - Payment.refunded_amount), 0)
                    ).where(Payment.wallet_id == wallet_id)
                )
                or 0
            )
        for payment_id, _, _ in runner.taken_payments:
            payment = session.get_one(Payment, payment_id)
            total += payment.amount - payment.refunded_amount
    return total
