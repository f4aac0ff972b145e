"""The shipped rules acting on real wallet operations: review opens a case, lock freezes."""

from __future__ import annotations

import pytest

from kouza.controls.cases import cases
from kouza.identity.devices import SensitiveAction
from kouza.identity.errors import StepUpRequired
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.risk.rules import parse_rule_set
from kouza.risk.service import risk, shipped_rule_set
from kouza.runtime import Runtime
from kouza.wallet.enforcement import HeldForReview, RiskRefused
from kouza.wallet.models import MerchantCategory, WalletStatus
from kouza.wallet.service import wallets
from tests.factories import balance_of, customer, merchant, signed


@pytest.fixture
def shipped(rt: Runtime) -> Runtime:
    risk.engine(rt).replace_rules(shipped_rule_set())
    return rt


def _qr(rt: Runtime, shop_id: object, amount: int) -> str:
    with rt.db.unit_of_work() as session:
        return wallets.merchant_qr(session, merchant_id=shop_id, amount=amount)  # type: ignore[arg-type]


def test_resellable_spend_in_a_new_wallet_is_held_for_review(
    shipped: Runtime, mailbox: MemoryMailbox, clock: ManualClock
) -> None:
    buyer = customer(shipped, mailbox, balance=100_000)
    shop = merchant(shipped, "Bic Camera", MerchantCategory.ELECTRONICS)
    with shipped.db.unit_of_work() as session, pytest.raises(HeldForReview):
        wallets.pay(
            session,
            user=buyer.user,
            wallet_id=buyer.wallet.id,
            qr=_qr(shipped, shop.id, 89_800),
            signed=signed(shipped, buyer, SensitiveAction.PAY),
        )
    assert balance_of(shipped, buyer.wallet) == 100_000
    with shipped.db.unit_of_work() as session:
        case = cases.open_case_of(session, buyer.wallet.id)
        assert case is not None and "resellable-spend-new-wallet" in case.source
    grocer = merchant(shipped, "Aeon", MerchantCategory.SUPERMARKET)
    with shipped.db.unit_of_work() as session:
        wallets.pay(
            session,
            user=buyer.user,
            wallet_id=buyer.wallet.id,
            qr=_qr(shipped, grocer.id, 3_000),
            signed=signed(shipped, buyer, SensitiveAction.PAY),
        )
    clock.advance(hours=25)
    with shipped.db.unit_of_work() as session:
        wallets.pay(
            session,
            user=buyer.user,
            wallet_id=buyer.wallet.id,
            qr=_qr(shipped, shop.id, 89_800),
            signed=signed(shipped, buyer, SensitiveAction.PAY),
        )
    assert balance_of(shipped, buyer.wallet) == 100_000 - 3_000 - 89_800


def test_a_lock_rule_freezes_the_wallet_and_keeps_the_balance(
    shipped: Runtime, mailbox: MemoryMailbox
) -> None:
    risk.load_rules(
        shipped,
        "rules:\n  - {id: big-transfer, events: [transfer], "
        "when: 'event.amount >= 50000', outcome: lock}\n",
        source="test",
    )
    mule = customer(shipped, mailbox, balance=80_000)
    other = customer(shipped, mailbox)
    with shipped.db.unit_of_work() as session, pytest.raises(RiskRefused):
        wallets.transfer(
            session,
            user=mule.user,
            source_wallet_id=mule.wallet.id,
            destination_wallet_id=other.wallet.id,
            amount=60_000,
            signed=signed(shipped, mule, SensitiveAction.TRANSFER),
        )
    with shipped.db.unit_of_work() as session:
        assert wallets.get_wallet(session, mule.wallet.id).status == WalletStatus.LOCKED.value
        assert cases.open_case_of(session, mule.wallet.id) is not None
    assert (balance_of(shipped, mule.wallet), balance_of(shipped, other.wallet)) == (80_000, 0)


def test_step_up_is_demanded(shipped: Runtime, mailbox: MemoryMailbox) -> None:
    risk.load_rules(
        shipped,
        "rules:\n  - {id: medium, events: [transfer], "
        "when: 'event.amount >= 20000', outcome: step_up}\n",
        source="test",
    )
    sender = customer(shipped, mailbox, balance=30_000)
    other = customer(shipped, mailbox)
    with shipped.db.unit_of_work() as session, pytest.raises(StepUpRequired):
        wallets.transfer(
            session,
            user=sender.user,
            source_wallet_id=sender.wallet.id,
            destination_wallet_id=other.wallet.id,
            amount=25_000,
            signed=signed(shipped, sender, SensitiveAction.TRANSFER),
        )
    assert balance_of(shipped, sender.wallet) == 30_000


def test_decisions_are_stored_and_backtest_matches_live(
    shipped: Runtime, mailbox: MemoryMailbox, clock: ManualClock
) -> None:
    from datetime import timedelta

    from kouza.risk.engine import backtest
    from kouza.risk.models import RiskDecisionRecord

    # no device: the e-mail-level history the rules are judged on (small payments need no
    # proof), and a rule that holds even small ones for review
    rules = parse_rule_set(
        "version: t1\nrules:\n  - id: electronics-in-a-new-wallet\n    events: [payment]\n"
        '    when: event.category == "electronics" and age(wallet) < hours(24)\n'
        "    outcome: review\n"
    )
    risk.engine(shipped).replace_rules(rules)
    buyer = customer(shipped, mailbox, balance=100_000, device=False)
    shop = merchant(shipped, "Bic Camera", MerchantCategory.ELECTRONICS)
    start = clock.now() - timedelta(hours=1)
    for amount in (1_000, 2_000):
        clock.advance(minutes=1)
        with shipped.db.unit_of_work() as session, pytest.raises(HeldForReview):
            wallets.pay(
                session,
                user=buyer.user,
                wallet_id=buyer.wallet.id,
                qr=_qr(shipped, shop.id, amount),
                signed=signed(shipped, buyer, SensitiveAction.PAY),
            )
    with shipped.db.unit_of_work() as session:
        stored = session.query(RiskDecisionRecord).order_by(RiskDecisionRecord.id).all()
        events = risk.recorded_events(session, since=start)
    # e-mail verified, wallet opened, two payments
    assert [d.outcome for d in stored] == ["allow", "allow", "review", "review"]
    assert stored[2].fired[0]["id"] == "electronics-in-a-new-wallet"
    assert [e.type.value for e in events] == ["email_verified", "signup", "payment", "payment"]
    replayed = backtest(rules, events)
    assert [d.outcome.value for d in replayed] == [d.outcome for d in stored]
