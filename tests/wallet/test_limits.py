"""Limit policies (kouza.wallet.limits): each refuses exactly at its boundary.

Each test injects the limit set it is about (``rt.limits``), so a boundary is the
policy's own and not another default's. Windows are checked with the injected clock: a rolling
window slides, a calendar month restarts at midnight JST — the 2020 weakness.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kouza.identity.devices import SensitiveAction
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.ledger.models import JournalEntry
from kouza.ledger.service import ledger
from kouza.runtime import Runtime
from kouza.wallet.errors import LimitExceeded
from kouza.wallet.limits import (
    JST,
    CalendarMonthLimit,
    CategoryWindowLimit,
    LimitPolicy,
    LimitSet,
    MaxBalanceLimit,
    PerTransactionLimit,
    RollingWindowLimit,
    Type2TransferCeiling,
)
from kouza.wallet.models import MerchantCategory, MovementKind, Payment, Transfer
from kouza.wallet.service import wallets
from tests.factories import Customer, balance_of, customer, merchant, signed


def use_limits(rt: Runtime, *policies: LimitPolicy) -> None:
    rt.limits = LimitSet(list(policies))


def credit(rt: Runtime, who: Customer, amount: int) -> None:
    with rt.db.unit_of_work() as session:
        wallets.credit_from_float(session, wallet_id=who.wallet.id, amount=amount, reason="test")


def static_qr(rt: Runtime, merchant_id: uuid.UUID) -> str:
    with rt.db.unit_of_work() as session:
        return wallets.merchant_qr(session, merchant_id=merchant_id)


def pay(rt: Runtime, who: Customer, qr: str, amount: int) -> Payment:
    with rt.db.unit_of_work() as session:
        return wallets.pay(
            session,
            user=who.user,
            wallet_id=who.wallet.id,
            qr=qr,
            amount=amount,
            signed=signed(rt, who, SensitiveAction.PAY),
        )


def send(rt: Runtime, who: Customer, to: Customer, amount: int) -> Transfer:
    with rt.db.unit_of_work() as session:
        return wallets.transfer(
            session,
            user=who.user,
            source_wallet_id=who.wallet.id,
            destination_wallet_id=to.wallet.id,
            amount=amount,
            signed=signed(rt, who, SensitiveAction.TRANSFER),
        )


def entries(rt: Runtime) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(func.count(JournalEntry.id))) or 0)


def ledger_ok(rt: Runtime) -> bool:
    with rt.db.session() as session:
        return ledger.verify(session).ok


def refused(
    rt: Runtime,
    who: Customer,
    action: object,
    *,
    limit: str,
    cap: int,
    used: int,
    others: tuple[Customer, ...] = (),
) -> None:
    """``action()`` is refused by ``limit`` and moves nothing."""
    watched = (who, *others)
    before = [balance_of(rt, c.wallet) for c in watched], entries(rt)
    with pytest.raises(LimitExceeded) as caught:
        action()  # type: ignore[operator]
    assert caught.value.code == "limit_exceeded"
    assert caught.value.status_code == 422
    assert caught.value.details == {
        "limit": limit,
        "cap": cap,
        "used": used,
        "remaining": max(cap - used, 0),
    }
    assert ([balance_of(rt, c.wallet) for c in watched], entries(rt)) == before
    assert ledger_ok(rt)


class TestPerTransactionLimit:
    def test_cap_allowed_cap_plus_one_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        use_limits(rt, PerTransactionLimit(cap=5_000))
        alice, bob = customer(rt, mailbox, balance=20_000), customer(rt, mailbox)
        qr = static_qr(rt, merchant(rt).id)
        pay(rt, alice, qr, 5_000)
        send(rt, alice, bob, 5_000)
        refused(
            rt,
            alice,
            lambda: pay(rt, alice, qr, 5_001),
            limit="per-transaction limit",
            cap=5_000,
            used=0,
        )
        refused(
            rt,
            alice,
            lambda: send(rt, alice, bob, 5_001),
            limit="per-transaction limit",
            cap=5_000,
            used=0,
            others=(bob,),
        )
        assert balance_of(rt, alice.wallet) == 10_000

    def test_only_its_kinds(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        use_limits(rt, PerTransactionLimit(cap=5_000))  # outgoing only by default
        alice = customer(rt, mailbox)
        credit(rt, alice, 5_001)
        assert balance_of(rt, alice.wallet) == 5_001
        use_limits(rt, PerTransactionLimit(cap=5_000, kinds=(MovementKind.TOPUP,)))
        refused(
            rt,
            alice,
            lambda: credit(rt, alice, 5_001),
            limit="per-transaction limit",
            cap=5_000,
            used=0,
        )


class TestType2TransferCeiling:
    def test_refuses_one_yen_over_a_million_in_one_transfer(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        use_limits(rt, Type2TransferCeiling())
        alice, bob = customer(rt, mailbox, balance=2_000_001), customer(rt, mailbox)
        send(rt, alice, bob, 1_000_000)
        refused(
            rt,
            alice,
            lambda: send(rt, alice, bob, 1_000_001),
            limit="Type-2 funds-transfer ceiling",
            cap=1_000_000,
            used=0,
            others=(bob,),
        )
        assert (balance_of(rt, alice.wallet), balance_of(rt, bob.wallet)) == (1_000_001, 1_000_000)

    def test_is_the_first_default_refusal(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice, bob = customer(rt, mailbox, balance=10_000), customer(rt, mailbox)
        refused(
            rt,
            alice,
            lambda: send(rt, alice, bob, 1_000_001),
            limit="Type-2 funds-transfer ceiling",
            cap=1_000_000,
            used=0,
            others=(bob,),
        )


class TestRollingWindowLimit:
    def test_cap_allowed_cap_plus_one_refused_across_kinds(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        use_limits(rt, RollingWindowLimit(cap=10_000, window=timedelta(days=1)))
        alice, bob = customer(rt, mailbox, balance=50_000), customer(rt, mailbox)
        qr = static_qr(rt, merchant(rt).id)
        pay(rt, alice, qr, 6_000)
        refused(
            rt,
            alice,
            lambda: send(rt, alice, bob, 4_001),
            limit="rolling limit",
            cap=10_000,
            used=6_000,
            others=(bob,),
        )
        send(rt, alice, bob, 4_000)
        refused(
            rt, alice, lambda: pay(rt, alice, qr, 1), limit="rolling limit", cap=10_000, used=10_000
        )
        assert balance_of(rt, alice.wallet) == 40_000

    def test_24_hour_window_slides(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        use_limits(rt, RollingWindowLimit(cap=10_000, window=timedelta(days=1)))
        alice = customer(rt, mailbox, balance=50_000)
        qr = static_qr(rt, merchant(rt).id)
        pay(rt, alice, qr, 10_000)
        clock.advance(hours=23)
        refused(
            rt, alice, lambda: pay(rt, alice, qr, 1), limit="rolling limit", cap=10_000, used=10_000
        )
        clock.advance(hours=1, seconds=1)
        pay(rt, alice, qr, 10_000)
        assert balance_of(rt, alice.wallet) == 30_000

    def test_30_day_window_slides(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        use_limits(
            rt,
            RollingWindowLimit(cap=50_000, window=timedelta(days=30), name="30-day spending limit"),
        )
        alice = customer(rt, mailbox, balance=200_000)
        qr = static_qr(rt, merchant(rt).id)
        pay(rt, alice, qr, 20_000)
        clock.advance(days=10)
        pay(rt, alice, qr, 30_000)
        clock.advance(days=19)  # first payment 29 days ago: still inside the window
        refused(
            rt,
            alice,
            lambda: pay(rt, alice, qr, 1),
            limit="30-day spending limit",
            cap=50_000,
            used=50_000,
        )
        clock.advance(days=1, seconds=1)  # the ¥20,000 left the window, the ¥30,000 did not
        refused(
            rt,
            alice,
            lambda: pay(rt, alice, qr, 20_001),
            limit="30-day spending limit",
            cap=50_000,
            used=30_000,
        )
        pay(rt, alice, qr, 20_000)
        assert balance_of(rt, alice.wallet) == 130_000

    def test_top_up_window_counts_money_in_only(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        use_limits(
            rt,
            RollingWindowLimit(
                cap=30_000,
                window=timedelta(days=30),
                kinds=(MovementKind.TOPUP,),
                name="30-day top-up",
            ),
        )
        alice = customer(rt, mailbox)
        credit(rt, alice, 20_000)
        pay(rt, alice, static_qr(rt, merchant(rt).id), 15_000)  # spending frees nothing
        credit(rt, alice, 10_000)
        refused(
            rt, alice, lambda: credit(rt, alice, 1), limit="30-day top-up", cap=30_000, used=30_000
        )
        assert balance_of(rt, alice.wallet) == 15_000


class TestCalendarMonthLimit:
    """The 2020 weakness: a calendar month restarts at midnight, a rolling window does not."""

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(datetime(2020, 1, 30, 0, 0, tzinfo=UTC))

    JAN_31_2350_JST = datetime(2020, 1, 31, 23, 50, tzinfo=JST)
    FEB_1_0010_JST = datetime(2020, 2, 1, 0, 10, tzinfo=JST)

    def test_two_caps_in_twenty_minutes_across_midnight(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        use_limits(rt, CalendarMonthLimit(cap=300_000))
        alice = customer(rt, mailbox)
        clock.set(self.JAN_31_2350_JST)
        credit(rt, alice, 300_000)
        clock.set(self.FEB_1_0010_JST)
        credit(rt, alice, 300_000)
        assert balance_of(rt, alice.wallet) == 600_000
        assert ledger_ok(rt)

    def test_rolling_window_refuses_the_second(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        use_limits(
            rt,
            RollingWindowLimit(cap=300_000, window=timedelta(days=30), kinds=(MovementKind.TOPUP,)),
        )
        alice = customer(rt, mailbox)
        clock.set(self.JAN_31_2350_JST)
        credit(rt, alice, 300_000)
        clock.set(self.FEB_1_0010_JST)
        refused(
            rt,
            alice,
            lambda: credit(rt, alice, 300_000),
            limit="rolling limit",
            cap=300_000,
            used=300_000,
        )
        assert balance_of(rt, alice.wallet) == 300_000

    def test_cap_allowed_cap_plus_one_refused_within_a_month(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        use_limits(rt, CalendarMonthLimit(cap=300_000))
        alice = customer(rt, mailbox)
        clock.set(datetime(2020, 1, 31, 0, 5, tzinfo=JST))
        credit(rt, alice, 299_999)
        clock.set(self.JAN_31_2350_JST)
        refused(
            rt,
            alice,
            lambda: credit(rt, alice, 2),
            limit="calendar-month limit",
            cap=300_000,
            used=299_999,
        )
        credit(rt, alice, 1)
        assert balance_of(rt, alice.wallet) == 300_000


class TestCategoryWindowLimit:
    def test_counts_only_its_category(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        use_limits(rt, CategoryWindowLimit(category="electronics", cap=300_000))
        alice = customer(rt, mailbox, balance=500_000)
        electronics = static_qr(
            rt, merchant(rt, "Yodobashi Akiba", MerchantCategory.ELECTRONICS).id
        )
        konbini = static_qr(rt, merchant(rt).id)
        pay(rt, alice, electronics, 300_000)
        refused(
            rt,
            alice,
            lambda: pay(rt, alice, electronics, 1),
            limit="merchant-category limit",
            cap=300_000,
            used=300_000,
        )
        pay(rt, alice, konbini, 150_000)
        assert balance_of(rt, alice.wallet) == 50_000

    def test_refund_frees_room_and_window_slides(
        self, rt: Runtime, mailbox: MemoryMailbox, clock: ManualClock
    ) -> None:
        use_limits(rt, CategoryWindowLimit(category="electronics", cap=300_000))
        alice = customer(rt, mailbox, balance=800_000)
        electronics = static_qr(
            rt, merchant(rt, "Yodobashi Akiba", MerchantCategory.ELECTRONICS).id
        )
        payment = pay(rt, alice, electronics, 300_000)
        with rt.db.unit_of_work() as session:
            wallets.refund(session, payment_id=payment.id, amount=100_000, reason="returned")
        refused(
            rt,
            alice,
            lambda: pay(rt, alice, electronics, 100_001),
            limit="merchant-category limit",
            cap=300_000,
            used=200_000,
        )
        pay(rt, alice, electronics, 100_000)
        clock.advance(days=1, seconds=1)
        pay(rt, alice, electronics, 300_000)
        assert balance_of(rt, alice.wallet) == 200_000


class TestMaxBalanceLimit:
    def test_cap_allowed_cap_plus_one_refused(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        use_limits(rt, MaxBalanceLimit(cap=100_000))
        alice = customer(rt, mailbox)
        credit(rt, alice, 60_000)
        refused(
            rt,
            alice,
            lambda: credit(rt, alice, 40_001),
            limit="maximum wallet balance",
            cap=100_000,
            used=60_000,
        )
        credit(rt, alice, 40_000)
        assert balance_of(rt, alice.wallet) == 100_000

    def test_transfer_cannot_push_the_recipient_over_the_cap(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        use_limits(rt, MaxBalanceLimit(cap=100_000))
        alice, bob = customer(rt, mailbox, balance=100_000), customer(rt, mailbox, balance=100_000)
        with pytest.raises(LimitExceeded):
            send(rt, alice, bob, 1)
        assert balance_of(rt, bob.wallet) == 100_000


class TestDefaultLimits:
    def test_24_hour_spending_limit(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=500_000)
        credit(rt, alice, 500_000)
        qr = static_qr(rt, merchant(rt).id)
        pay(rt, alice, qr, 300_000)
        pay(rt, alice, qr, 200_000)
        refused(
            rt,
            alice,
            lambda: pay(rt, alice, qr, 1),
            limit="24-hour spending limit",
            cap=500_000,
            used=500_000,
        )

    def test_30_day_top_up_limit(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=500_000)
        credit(rt, alice, 499_999)
        refused(
            rt,
            alice,
            lambda: credit(rt, alice, 2),
            limit="30-day top-up limit",
            cap=1_000_000,
            used=999_999,
        )

    def test_tobacco_category(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox, balance=100_000)
        tobacco = static_qr(rt, merchant(rt, "Tabaco-ya", MerchantCategory.TOBACCO).id)
        pay(rt, alice, tobacco, 50_000)
        refused(
            rt,
            alice,
            lambda: pay(rt, alice, tobacco, 1),
            limit="tobacco 24-hour limit",
            cap=50_000,
            used=50_000,
        )
