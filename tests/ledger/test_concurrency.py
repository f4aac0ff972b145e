"""Concurrency, proven on PostgreSQL (SQLite serialises writers; see kouza.kit.locking)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from kouza.errors import KouzaError
from kouza.kit.notify import MemoryMailbox
from kouza.ledger.models import EntryKind, JournalEntry
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from kouza.wallet.models import Payment
from kouza.wallet.service import wallets
from tests.factories import balance_of, customer, merchant
from tests.ledger.helpers import accounts, balances, float_account, verified

THREADS = 32


@pytest.fixture
def pg(rt: Runtime) -> Runtime:
    if rt.db.dialect != "postgresql":
        pytest.skip("row-level concurrency is proven on PostgreSQL")
    return rt


@pytest.mark.postgres
class TestConcurrentSpending:
    def test_ledger_never_overdraws_and_loses_nothing(self, pg: Runtime) -> None:
        wallet, *shops = accounts(pg, "wallet:hot", *[f"wallet:shop{i}" for i in range(4)])
        with pg.db.unit_of_work() as session:
            ledger.transfer(
                session,
                kind=EntryKind.TOPUP,
                source=float_account(pg),
                destination=wallet,
                amount=10_000,
            )
        start = threading.Barrier(THREADS)

        def spend(worker: int) -> Counter[str]:
            outcome: Counter[str] = Counter()
            start.wait()
            for attempt in range(5):
                try:
                    with pg.db.unit_of_work() as session:
                        ledger.transfer(
                            session,
                            kind=EntryKind.PAYMENT,
                            source=wallet,
                            destination=shops[(worker + attempt) % 4],
                            amount=100,
                        )
                    outcome["ok"] += 1
                except KouzaError as exc:
                    outcome[exc.code] += 1
            return outcome

        with ThreadPoolExecutor(THREADS) as pool:
            total = sum(pool.map(spend, range(THREADS)), Counter())
        assert total == Counter({"ok": 100, "insufficient_funds": 60})
        assert balances(pg, wallet) == [0]
        assert sum(balances(pg, *shops)) == 10_000
        with pg.db.unit_of_work() as session:
            payments = session.scalar(
                select(func.count(JournalEntry.id)).where(JournalEntry.kind == "payment")
            )
        assert payments == 100
        assert verified(pg)

    def test_wallet_payments_under_lock(self, pg: Runtime, mailbox: MemoryMailbox) -> None:
        payer = customer(pg, mailbox, balance=5_000)
        shop = merchant(pg)
        start = threading.Barrier(THREADS)

        def pay(_: int) -> str:
            with pg.db.unit_of_work() as session:
                qr = wallets.merchant_qr(session, merchant_id=shop.id, amount=300)
            start.wait()
            try:
                with pg.db.unit_of_work() as session:
                    wallets.pay(session, user=payer.user, wallet_id=payer.wallet.id, qr=qr)
                return "ok"
            except KouzaError as exc:
                return exc.code

        with ThreadPoolExecutor(THREADS) as pool:
            outcomes = Counter(pool.map(pay, range(THREADS)))
        assert outcomes == Counter({"ok": 16, "insufficient_funds": 16})
        assert balance_of(pg, payer.wallet) == 200
        with pg.db.unit_of_work() as session:
            assert session.scalar(select(func.count(Payment.id))) == 16
        assert verified(pg)

    def test_opposite_transfers_do_not_deadlock(self, pg: Runtime) -> None:
        left, right = accounts(pg, "wallet:left", "wallet:right")
        with pg.db.unit_of_work() as session:
            for target in (left, right):
                ledger.transfer(
                    session,
                    kind=EntryKind.TOPUP,
                    source=float_account(pg),
                    destination=target,
                    amount=1_000,
                )

        def shuffle(worker: int) -> None:
            source, destination = (left, right) if worker % 2 else (right, left)
            for _ in range(10):
                with pg.db.unit_of_work() as session:
                    ledger.transfer(
                        session,
                        kind=EntryKind.TRANSFER,
                        source=source,
                        destination=destination,
                        amount=1,
                    )

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(shuffle, range(THREADS)))
        assert balances(pg, left, right) == [1_000, 1_000]
        assert verified(pg)
