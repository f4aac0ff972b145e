"""Kill switches, wallet locks and cases."""

from __future__ import annotations

import pytest

from kouza.controls.cases import cases
from kouza.controls.errors import InvalidCaseTransition, KillSwitchActive, ReasonRequired
from kouza.controls.models import AuditEvent, CaseStatus, SwitchScope
from kouza.controls.switches import switches
from kouza.identity.devices import SensitiveAction
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from kouza.wallet.errors import WalletNotActive
from kouza.wallet.locks import locks
from kouza.wallet.service import wallets
from tests.factories import balance_of, customer, merchant, signed


def _audits(rt: Runtime, action: str) -> int:
    with rt.db.unit_of_work() as session:
        return session.query(AuditEvent).filter(AuditEvent.action == action).count()


class TestKillSwitches:
    def test_merchant_switch_stops_payments_at_once(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        payer = customer(rt, mailbox, balance=10_000)
        shop = merchant(rt)
        with rt.db.unit_of_work() as session:
            switches.set(
                session,
                scope=SwitchScope.MERCHANT_PAYMENTS,
                target=str(shop.id),
                active=True,
                actor="operator:a",
                reason="reseller ring",
            )
            qr = wallets.merchant_qr(session, merchant_id=shop.id, amount=1_000)
        with rt.db.unit_of_work() as session, pytest.raises(KillSwitchActive):
            wallets.pay(session, user=payer.user, wallet_id=payer.wallet.id, qr=qr)
        assert balance_of(rt, payer.wallet) == 10_000
        with rt.db.unit_of_work() as session:
            switches.set(
                session,
                scope=SwitchScope.MERCHANT_PAYMENTS,
                target=str(shop.id),
                active=False,
                actor="operator:a",
                reason="cleared",
            )
        with rt.db.unit_of_work() as session:
            wallets.pay(session, user=payer.user, wallet_id=payer.wallet.id, qr=qr)
        assert balance_of(rt, payer.wallet) == 9_000

    def test_idempotent_and_audited(self, rt: Runtime) -> None:
        for _ in range(2):
            with rt.db.unit_of_work() as session:
                switch = switches.set(
                    session,
                    scope=SwitchScope.ALL_LINKS,
                    target="ignored",
                    active=True,
                    actor="operator:a",
                    reason="incident",
                )
        with rt.db.unit_of_work() as session:
            assert switches.is_active(session, SwitchScope.ALL_LINKS)
            assert [s.id for s in switches.active(session)] == [switch.id]
            with pytest.raises(KillSwitchActive, match="new bank links are stopped"):
                switches.require_open(session, SwitchScope.ALL_LINKS)
            switches.require_open(session, SwitchScope.BANK_LINKS, "0125")
        assert _audits(rt, "switch.on") == 2

    def test_per_bank_switches_are_separate(self, rt: Runtime) -> None:
        with rt.db.unit_of_work() as session:
            switches.set(
                session,
                scope=SwitchScope.BANK_CHARGES,
                target="0125",
                active=True,
                actor="operator:a",
                reason="bank asked",
            )
        with rt.db.unit_of_work() as session:
            assert switches.is_active(session, SwitchScope.BANK_CHARGES, "0125")
            assert not switches.is_active(session, SwitchScope.BANK_CHARGES, "0168")
            assert not switches.is_active(session, SwitchScope.BANK_LINKS, "0125")

    def test_reason_required(self, rt: Runtime) -> None:
        with rt.db.unit_of_work() as session, pytest.raises(ReasonRequired):
            switches.set(session, scope=SwitchScope.ALL_LINKS, active=True, actor="x", reason=" ")


class TestLocks:
    def test_lock_keeps_balance_and_stops_spending(
        self, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        suspect = customer(rt, mailbox, balance=50_000)
        other = customer(rt, mailbox)
        for _ in range(2):  # idempotent
            with rt.db.unit_of_work() as session:
                locks.lock(
                    session,
                    wallet_id=suspect.wallet.id,
                    actor="operator:a",
                    reason="same pattern as case 12",
                )
        with rt.db.unit_of_work() as session, pytest.raises(WalletNotActive):
            wallets.transfer(
                session,
                user=suspect.user,
                source_wallet_id=suspect.wallet.id,
                destination_wallet_id=other.wallet.id,
                amount=1_000,
            )
        assert balance_of(rt, suspect.wallet) == 50_000
        with rt.db.unit_of_work() as session:
            locks.unlock(
                session,
                wallet_id=suspect.wallet.id,
                actor="operator:a",
                reason="customer verified at the counter",
            )
        with rt.db.unit_of_work() as session:
            wallets.transfer(
                session,
                user=suspect.user,
                source_wallet_id=suspect.wallet.id,
                destination_wallet_id=other.wallet.id,
                amount=1_000,
                signed=signed(rt, suspect, SensitiveAction.TRANSFER),
            )
        assert (_audits(rt, "wallet.lock"), _audits(rt, "wallet.unlock")) == (2, 1)


class TestCases:
    def test_lifecycle(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        suspect = customer(rt, mailbox)
        with rt.db.unit_of_work() as session:
            case = cases.open(
                session,
                wallet_id=suspect.wallet.id,
                source="risk:x",
                summary="charge to cap after link",
                actor="risk",
            )
            again = cases.open(
                session,
                wallet_id=suspect.wallet.id,
                source="risk:y",
                summary="second alert",
                actor="risk",
            )
            assert again.id == case.id
        with rt.db.unit_of_work() as session:
            cases.move(
                session, case_id=case.id, to=CaseStatus.INVESTIGATING, actor="ana", note="looking"
            )
            cases.move(
                session,
                case_id=case.id,
                to=CaseStatus.CONFIRMED_FRAUD,
                actor="ana",
                note="holder denies",
            )
            cases.move(
                session, case_id=case.id, to=CaseStatus.CONFIRMED_FRAUD, actor="ana", note="again"
            )  # idempotent
        with rt.db.unit_of_work() as session:
            actions = [n.action for n in cases.notes(session, case.id)]
            assert actions == ["open", "alert", "investigating", "confirmed_fraud"]
            with pytest.raises(InvalidCaseTransition):
                cases.move(
                    session,
                    case_id=case.id,
                    to=CaseStatus.CLEARED,
                    actor="ana",
                    note="changed my mind",
                )
            assert cases.open_case_of(session, suspect.wallet.id) is None
