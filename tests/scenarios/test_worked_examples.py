"""Worked examples: short stories of money moving through kouza, with every yen accounted for.

Each story drives the real services on a fresh database and checks, at the end, every balance,
the customer's statement (newest first, with the balance after each line) and the ledger's own
verification: the operator float goes negative by exactly what it issued, and all balances sum
to zero.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kouza.identity.devices import SensitiveAction
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.ledger import repository as ledger_repository
from kouza.ledger.errors import InsufficientFunds
from kouza.ledger.models import AccountKind, EntryKind
from kouza.ledger.service import VerificationReport, ledger, transfer_spec
from kouza.runtime import Runtime
from kouza.wallet.models import Merchant, MerchantCategory, Payment
from kouza.wallet.service import wallets
from tests.factories import Customer, customer, merchant, signed


def balances(rt: Runtime, *accounts: Customer | Merchant) -> list[int]:
    with rt.db.session() as session:
        return [
            ledger.balance(
                session,
                a.wallet.ledger_account_id if isinstance(a, Customer) else a.ledger_account_id,
            ).balance
            for a in accounts
        ]


def float_balance(rt: Runtime) -> int:
    with rt.db.session() as session:
        account = ledger_repository.account_by_code(session, AccountKind.OPERATOR_FLOAT.value)
        assert account is not None
        return account.balance


def statement(rt: Runtime, who: Customer) -> list[tuple[str, int, int]]:
    with rt.db.session() as session:
        return [
            (line.kind, line.amount, line.balance_after)
            for line in wallets.statement(session, who.wallet)
        ]


def statement_lines(rt: Runtime, who: Customer) -> list[Any]:
    with rt.db.session() as session:
        return wallets.statement(session, who.wallet)


def verify(rt: Runtime) -> VerificationReport:
    with rt.db.session() as session:
        report = ledger.verify(session)
    assert report.problems == []
    assert report.total_balance == 0
    assert report.ok
    return report


def qr_code(rt: Runtime, shop: Merchant, amount: int | None = None) -> str:
    with rt.db.unit_of_work() as session:
        return wallets.merchant_qr(session, merchant_id=shop.id, amount=amount)


def pay(rt: Runtime, who: Customer, qr: str, amount: int | None = None) -> Payment:
    with rt.db.unit_of_work() as session:
        return wallets.pay(
            session,
            user=who.user,
            wallet_id=who.wallet.id,
            qr=qr,
            amount=amount,
            signed=signed(rt, who, SensitiveAction.PAY),
        )


class TestTopUpPayRefund:
    """Hanako gets ¥10,000 from the operator, pays ¥3,200 at a konbini, returns ¥1,200 of it."""

    def test_story(self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock) -> None:
        hanako = customer(rt, mailbox, email="hanako@example.jp")
        lawson = merchant(rt, "Lawson Shibuya", MerchantCategory.CONVENIENCE_STORE)

        topped_up_at = clock.now()
        with rt.db.unit_of_work() as session:
            topup = wallets.credit_from_float(
                session, wallet_id=hanako.wallet.id, amount=10_000, reason="welcome campaign"
            )
        assert topup.amount == 10_000
        assert balances(rt, hanako, lawson) == [10_000, 0]
        assert float_balance(rt) == -10_000

        paid_at = clock.advance(minutes=30)
        payment = pay(rt, hanako, qr_code(rt, lawson, 3_200))  # the till shows a dynamic QR
        assert (payment.amount, payment.category) == (3_200, "convenience_store")
        assert balances(rt, hanako, lawson) == [6_800, 3_200]

        refunded_at = clock.advance(hours=2)
        with rt.db.unit_of_work() as session:
            refund = wallets.refund(
                session, payment_id=payment.id, amount=1_200, reason="one onigiri set returned"
            )
        assert refund.amount == 1_200

        assert balances(rt, hanako, lawson) == [8_000, 2_000]
        assert float_balance(rt) == -10_000  # the float issued the money: 8,000 + 2,000
        assert statement(rt, hanako) == [
            ("refund", 1_200, 8_000),
            ("payment", -3_200, 6_800),
            ("topup", 10_000, 10_000),
        ]
        lines = statement_lines(rt, hanako)
        assert [line.description for line in lines] == [
            "refund from Lawson Shibuya: one onigiri set returned",
            "payment to Lawson Shibuya",
            "credit from operator float: welcome campaign",
        ]
        assert [line.created_at for line in lines] == [refunded_at, paid_at, topped_up_at]
        assert lines[1].reference == {
            "payment": str(payment.id),
            "merchant": str(lawson.id),
            "merchant_name": "Lawson Shibuya",
            "category": "convenience_store",
        }
        with rt.db.session() as session:
            stored = session.get(Payment, payment.id)
            assert stored is not None and stored.refunded_amount == 1_200
        report = verify(rt)
        assert (report.accounts, report.entries, report.postings) == (3, 3, 6)


class TestTransferThenPay:
    """Taro sends Hanako ¥4,000 for dinner; she pays the ¥2,500 izakaya bill with it."""

    def test_story(self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock) -> None:
        taro = customer(rt, mailbox, balance=10_000, email="taro@example.jp")
        hanako = customer(rt, mailbox, email="hanako@example.jp")
        izakaya = merchant(rt, "Torikizoku Ebisu", MerchantCategory.RESTAURANT)

        clock.advance(minutes=5)
        with rt.db.unit_of_work() as session:
            sent = wallets.transfer(
                session,
                user=taro.user,
                source_wallet_id=taro.wallet.id,
                destination_wallet_id=hanako.wallet.id,
                amount=4_000,
                message="dinner",
                signed=signed(rt, taro, SensitiveAction.TRANSFER),
            )
        assert sent.amount == 4_000
        assert balances(rt, taro, hanako) == [6_000, 4_000]

        clock.advance(hours=3)
        payment = pay(rt, hanako, qr_code(rt, izakaya, 2_500))
        assert payment.category == "restaurant"

        assert balances(rt, taro, hanako, izakaya) == [6_000, 1_500, 2_500]
        assert float_balance(rt) == -10_000
        assert statement(rt, taro) == [("transfer", -4_000, 6_000), ("topup", 10_000, 10_000)]
        assert statement(rt, hanako) == [("payment", -2_500, 1_500), ("transfer", 4_000, 4_000)]
        assert statement_lines(rt, hanako)[1].description == "transfer: dinner"
        report = verify(rt)
        assert (report.accounts, report.entries, report.postings) == (4, 3, 6)


class TestStaticQr:
    """A sticker at a bakery: the customer types each amount, and may not overspend."""

    def test_story(self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock) -> None:
        hanako = customer(rt, mailbox, balance=2_000, email="hanako@example.jp")
        bakery = merchant(rt, "Boulangerie Asano", MerchantCategory.OTHER)
        sticker = qr_code(rt, bakery)

        morning = pay(rt, hanako, sticker, amount=480)
        clock.advance(days=1)
        next_morning = pay(rt, hanako, sticker, amount=1_020)
        assert (morning.order_ref, next_morning.order_ref) == (None, None)
        assert balances(rt, hanako, bakery) == [500, 1_500]

        clock.advance(days=1)
        with pytest.raises(InsufficientFunds):  # typed ¥5,000 instead of ¥500
            pay(rt, hanako, sticker, amount=5_000)
        assert balances(rt, hanako, bakery) == [500, 1_500]

        pay(rt, hanako, sticker, amount=500)
        assert balances(rt, hanako, bakery) == [0, 2_000]
        assert float_balance(rt) == -2_000
        assert statement(rt, hanako) == [
            ("payment", -500, 0),
            ("payment", -1_020, 500),
            ("payment", -480, 1_520),
            ("topup", 2_000, 2_000),
        ]
        report = verify(rt)
        assert (report.accounts, report.entries, report.postings) == (3, 4, 8)


class TestCompensationRun:
    """After an incident the operator reimburses 2,200 victims ¥1,000,000 each in one batch.

    ¥2.2 billion through one account in one batch is more than a 32-bit integer holds, yet far
    inside what a yen amount may be (¥1 trillion) and a BIGINT balance: every dialect must take it.
    """

    def test_story(self, rt: Runtime) -> None:
        victims = 2_200
        with rt.db.unit_of_work() as session:
            expense = ledger.system_account(session, AccountKind.COMPENSATION_EXPENSE)
            clearing = ledger.system_account(session, AccountKind.BANK_CLEARING, "0125")
            ledger.post_batch(
                session,
                [
                    transfer_spec(
                        kind=EntryKind.COMPENSATION,
                        source=expense,
                        destination=clearing,
                        amount=1_000_000,
                        description=f"compensation for case {uuid.uuid4()}",
                    )
                    for _ in range(victims)
                ],
            )
        with rt.db.session() as session:
            assert ledger.balance(session, expense).balance == -2_200_000_000
            assert ledger.balance(session, clearing).balance == 2_200_000_000
        report = verify(rt)
        assert (report.entries, report.postings) == (victims, 2 * victims)
