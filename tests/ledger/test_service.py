"""The ledger service, on SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from kouza.errors import IdempotencyConflict
from kouza.kit.clock import ManualClock
from kouza.ledger.errors import (
    AlreadyReversed,
    HoldExpired,
    HoldNotPending,
    InsufficientFunds,
    InvalidAmount,
    InvalidEntry,
    UnbalancedEntry,
    UnknownAccount,
    UnknownEntry,
)
from kouza.ledger.models import AccountKind, EntryKind, HoldStatus, JournalEntry, Posting
from kouza.ledger.service import EntrySpec, Leg, ledger, transfer_spec
from kouza.runtime import Runtime
from tests.ledger.helpers import accounts, available, balances, float_account, verified


def _fund(rt: Runtime, account_id: int, amount: int) -> None:
    source = float_account(rt)
    with rt.db.unit_of_work() as session:
        ledger.transfer(
            session, kind=EntryKind.TOPUP, source=source, destination=account_id, amount=amount
        )


def _entry_count(rt: Runtime) -> int:
    with rt.db.unit_of_work() as session:
        return int(session.scalar(select(func.count(JournalEntry.id))) or 0)


class TestOpenAccount:
    def test_idempotent_by_code(self, rt: Runtime) -> None:
        first = accounts(rt, "wallet:a")[0]
        assert accounts(rt, "wallet:a")[0] == first

    def test_same_code_other_kind_refused(self, rt: Runtime) -> None:
        accounts(rt, "wallet:a")
        with rt.db.unit_of_work() as session, pytest.raises(InvalidEntry):
            ledger.open_account(session, kind=AccountKind.MERCHANT, code="wallet:a", name="x")


class TestTransfer:
    def test_moves_exact_amounts(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:alice", "wallet:bob")
        _fund(rt, alice, 10_000)
        with rt.db.unit_of_work() as session:
            posted = ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=2_500
            )
        assert posted.legs == (Leg(alice, -2_500), Leg(bob, 2_500))
        assert balances(rt, alice, bob, float_account(rt)) == [7_500, 2_500, -10_000]
        assert verified(rt)

    def test_overdraft_refused_and_nothing_moves(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:alice", "wallet:bob")
        _fund(rt, alice, 1_000)
        entries = _entry_count(rt)
        with rt.db.unit_of_work() as session, pytest.raises(InsufficientFunds):
            ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=1_001
            )
        assert balances(rt, alice, bob) == [1_000, 0]
        assert _entry_count(rt) == entries

    def test_refusal_leaves_no_trace_even_if_caller_commits(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:alice", "wallet:bob")
        _fund(rt, alice, 1_000)
        with rt.db.unit_of_work() as session, pytest.raises(InsufficientFunds):
            ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=5_000
            )
        assert balances(rt, alice, bob) == [1_000, 0]
        assert verified(rt)

    @pytest.mark.parametrize("amount", [0, -1, 1.5, True, "100", 10**13])
    def test_bad_amounts_refused(self, rt: Runtime, amount: object) -> None:
        alice, bob = accounts(rt, "wallet:alice", "wallet:bob")
        with rt.db.unit_of_work() as session, pytest.raises(InvalidAmount):
            ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=amount
            )  # type: ignore[arg-type]

    def test_unknown_account(self, rt: Runtime) -> None:
        (alice,) = accounts(rt, "wallet:alice")
        _fund(rt, alice, 100)
        with rt.db.unit_of_work() as session, pytest.raises(UnknownAccount):
            ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=999_999, amount=10
            )
        assert balances(rt, alice) == [100]


class TestPostEntry:
    def test_multi_leg_entry(self, rt: Runtime) -> None:
        alice, bob, carol = accounts(rt, "wallet:a", "wallet:b", "wallet:c")
        _fund(rt, alice, 1_000)
        spec = EntrySpec(
            kind=EntryKind.ADJUSTMENT, legs=(Leg(alice, -600), Leg(bob, 400), Leg(carol, 200))
        )
        with rt.db.unit_of_work() as session:
            ledger.post_entry(session, spec)
        assert balances(rt, alice, bob, carol) == [400, 400, 200]

    @pytest.mark.parametrize("width", [2, 5, 16, 17, 40])
    def test_wide_entries_keep_every_leg(self, rt: Runtime, width: int) -> None:
        # one entry of up to 16 legs has its own statement on PostgreSQL; wider ones go through
        # the batch statement: both store every leg and the reference, and replay
        source = float_account(rt)
        wallets = accounts(rt, *[f"wallet:{n}" for n in range(width - 1)])
        legs = (
            Leg(source, -sum(range(1, width))),
            *(Leg(w, n) for n, w in enumerate(reversed(wallets), start=1)),
        )
        spec = EntrySpec(
            kind=EntryKind.ADJUSTMENT,
            legs=legs,
            reference={"width": width},
            idempotency_key=f"wide-{width}",
        )
        with rt.db.unit_of_work() as session:
            posted = ledger.post_entry(session, spec)
        with rt.db.unit_of_work() as session:
            stored = session.scalars(
                select(Posting).where(Posting.entry_id == posted.id).order_by(Posting.id)
            ).all()
            entry = session.get(JournalEntry, posted.id)
            assert entry is not None and entry.reference == {"width": width}
        assert sorted((p.account_id, p.amount) for p in stored) == sorted(
            (g.account_id, g.amount) for g in legs
        )
        with rt.db.unit_of_work() as session:
            assert ledger.post_entry(session, spec).replayed
        assert verified(rt)

    @pytest.mark.parametrize(
        ("legs", "error"),
        [
            (((1, -100), (2, 99)), UnbalancedEntry),
            (((1, -100),), InvalidEntry),
            (((1, -100), (1, 100)), InvalidEntry),
            (((1, 0), (2, 0)), InvalidAmount),
        ],
    )
    def test_invalid_entries_refused(
        self, rt: Runtime, legs: tuple[tuple[int, int], ...], error: type[Exception]
    ) -> None:
        accounts(rt, "wallet:a", "wallet:b")
        spec = EntrySpec(kind=EntryKind.ADJUSTMENT, legs=tuple(Leg(a, x) for a, x in legs))
        with rt.db.unit_of_work() as session, pytest.raises(error):
            ledger.post_entry(session, spec)
        assert _entry_count(rt) == 0

    def test_idempotent_retry_returns_first_entry(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 1_000)
        spec = transfer_spec(
            kind=EntryKind.TRANSFER,
            source=alice,
            destination=bob,
            amount=300,
            idempotency_key="k-1",
        )
        with rt.db.unit_of_work() as session:
            first = ledger.post_entry(session, spec)
        with rt.db.unit_of_work() as session:
            again = ledger.post_entry(session, spec)
        assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
        assert balances(rt, alice, bob) == [700, 300]

    def test_same_key_other_request_conflicts(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 1_000)
        with rt.db.unit_of_work() as session:
            ledger.transfer(
                session,
                kind=EntryKind.TRANSFER,
                source=alice,
                destination=bob,
                amount=300,
                idempotency_key="k-1",
            )
        with rt.db.unit_of_work() as session, pytest.raises(IdempotencyConflict):
            ledger.transfer(
                session,
                kind=EntryKind.TRANSFER,
                source=alice,
                destination=bob,
                amount=301,
                idempotency_key="k-1",
            )
        assert balances(rt, alice, bob) == [700, 300]


class TestPostBatch:
    def test_all_or_nothing(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 1_000)
        specs = [
            transfer_spec(kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=600),
            transfer_spec(kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=600),
        ]
        entries = _entry_count(rt)
        with rt.db.unit_of_work() as session, pytest.raises(InsufficientFunds):
            ledger.post_batch(session, specs)
        assert balances(rt, alice, bob) == [1_000, 0]
        assert _entry_count(rt) == entries

    def test_refusal_leaves_no_trace_when_the_caller_goes_on(self, rt: Runtime) -> None:
        """The credits of a refused batch are undone even if the caller catches the error,
        writes something else and commits."""
        alice, bob, carol = accounts(rt, "wallet:a", "wallet:b", "wallet:c")
        _fund(rt, alice, 1_000)
        specs = [
            transfer_spec(kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=300),
            transfer_spec(kind=EntryKind.TRANSFER, source=alice, destination=carol, amount=900),
        ]
        entries = _entry_count(rt)
        with rt.db.unit_of_work() as session:
            with pytest.raises(InsufficientFunds) as refused:
                ledger.post_batch(session, specs)
            assert refused.value.details["account_ids"] == [alice]
            ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=100
            )
        assert balances(rt, alice, bob, carol) == [900, 100, 0]
        assert _entry_count(rt) == entries + 1

    def test_many_entries_net_per_account(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 1_000)
        # bob spends money he receives earlier in the same batch
        specs = [
            transfer_spec(kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=10)
            for _ in range(50)
        ]
        specs += [
            transfer_spec(kind=EntryKind.TRANSFER, source=bob, destination=alice, amount=5)
            for _ in range(50)
        ]
        with rt.db.unit_of_work() as session:
            posted = ledger.post_batch(session, specs)
        assert len({p.id for p in posted}) == 100
        assert balances(rt, alice, bob) == [750, 250]
        assert verified(rt)

    def test_batch_replays_keyed_entries(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 1_000)
        specs = [
            transfer_spec(
                kind=EntryKind.TRANSFER,
                source=alice,
                destination=bob,
                amount=100,
                idempotency_key=f"b-{i}",
            )
            for i in range(3)
        ]
        with rt.db.unit_of_work() as session:
            first = ledger.post_batch(session, specs[:2])
        with rt.db.unit_of_work() as session:
            second = ledger.post_batch(session, specs)
        assert [p.id for p in second[:2]] == [p.id for p in first]
        assert [p.replayed for p in second] == [True, True, False]
        assert balances(rt, alice, bob) == [700, 300]

    def test_duplicate_key_in_one_batch_refused(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:a", "wallet:b")
        spec = transfer_spec(
            kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=1, idempotency_key="dup"
        )
        with rt.db.unit_of_work() as session, pytest.raises(InvalidEntry):
            ledger.post_batch(session, [spec, spec])


class TestReverse:
    def test_reversal_restores_and_points_back(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 1_000)
        with rt.db.unit_of_work() as session:
            entry = ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=400
            )
        with rt.db.unit_of_work() as session:
            reversal = ledger.reverse(session, entry_id=entry.id, description="sent by mistake")
            row = session.get(JournalEntry, reversal.id)
            assert row is not None and row.reverses_id == entry.id
        assert balances(rt, alice, bob) == [1_000, 0]
        assert verified(rt)

    def test_only_once(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 1_000)
        with rt.db.unit_of_work() as session:
            entry = ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=400
            )
        with rt.db.unit_of_work() as session:
            ledger.reverse(session, entry_id=entry.id, description="mistake")
        with rt.db.unit_of_work() as session, pytest.raises(AlreadyReversed):
            ledger.reverse(session, entry_id=entry.id, description="again")
        assert balances(rt, alice, bob) == [1_000, 0]

    def test_refused_when_money_already_spent(self, rt: Runtime) -> None:
        alice, bob, carol = accounts(rt, "wallet:a", "wallet:b", "wallet:c")
        _fund(rt, alice, 1_000)
        with rt.db.unit_of_work() as session:
            entry = ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=400
            )
            ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=bob, destination=carol, amount=300
            )
        with rt.db.unit_of_work() as session, pytest.raises(InsufficientFunds):
            ledger.reverse(session, entry_id=entry.id, description="too late")
        assert balances(rt, alice, bob, carol) == [600, 100, 300]

    def test_unknown_entry(self, rt: Runtime) -> None:
        with rt.db.unit_of_work() as session, pytest.raises(UnknownEntry):
            ledger.reverse(session, entry_id=12345, description="x")


class TestHolds:
    def _hold(
        self,
        rt: Runtime,
        source: int,
        destination: int,
        amount: int,
        clock: ManualClock,
        minutes: int = 10,
    ) -> int:
        with rt.db.unit_of_work() as session:
            hold = ledger.create_hold(
                session,
                kind=EntryKind.PAYMENT,
                source=source,
                destination=destination,
                amount=amount,
                expires_at=clock.now() + timedelta(minutes=minutes),
            )
            return hold.id

    def test_hold_reduces_available_not_balance(self, rt: Runtime, clock: ManualClock) -> None:
        alice, shop = accounts(rt, "wallet:a", "wallet:shop")
        _fund(rt, alice, 1_000)
        self._hold(rt, alice, shop, 700, clock)
        assert balances(rt, alice) == [1_000]
        assert available(rt, alice) == 300
        with rt.db.unit_of_work() as session, pytest.raises(InsufficientFunds):
            ledger.transfer(
                session, kind=EntryKind.TRANSFER, source=alice, destination=shop, amount=301
            )
        with rt.db.unit_of_work() as session, pytest.raises(InsufficientFunds):
            ledger.create_hold(
                session,
                kind=EntryKind.PAYMENT,
                source=alice,
                destination=shop,
                amount=301,
                expires_at=clock.now() + timedelta(minutes=1),
            )

    def test_partial_post(self, rt: Runtime, clock: ManualClock) -> None:
        alice, shop = accounts(rt, "wallet:a", "wallet:shop")
        _fund(rt, alice, 1_000)
        hold_id = self._hold(rt, alice, shop, 700, clock)
        with rt.db.unit_of_work() as session:
            ledger.post_hold(session, hold_id=hold_id, amount=450)
            hold = ledger.get_hold(session, hold_id)
            assert (hold.status, hold.posted_amount) == (HoldStatus.POSTED.value, 450)
        assert balances(rt, alice, shop) == [550, 450]
        assert available(rt, alice) == 550
        with rt.db.unit_of_work() as session, pytest.raises(HoldNotPending):
            ledger.post_hold(session, hold_id=hold_id)
        assert verified(rt)

    def test_cannot_post_more_than_held(self, rt: Runtime, clock: ManualClock) -> None:
        alice, shop = accounts(rt, "wallet:a", "wallet:shop")
        _fund(rt, alice, 1_000)
        hold_id = self._hold(rt, alice, shop, 700, clock)
        with rt.db.unit_of_work() as session, pytest.raises(InvalidAmount):
            ledger.post_hold(session, hold_id=hold_id, amount=701)
        assert available(rt, alice) == 300

    def test_void_releases(self, rt: Runtime, clock: ManualClock) -> None:
        alice, shop = accounts(rt, "wallet:a", "wallet:shop")
        _fund(rt, alice, 1_000)
        hold_id = self._hold(rt, alice, shop, 700, clock)
        with rt.db.unit_of_work() as session:
            ledger.void_hold(session, hold_id=hold_id)
        assert available(rt, alice) == 1_000
        assert balances(rt, alice, shop) == [1_000, 0]
        with rt.db.unit_of_work() as session, pytest.raises(HoldNotPending):
            ledger.void_hold(session, hold_id=hold_id)

    def test_expiry(self, rt: Runtime, clock: ManualClock) -> None:
        alice, shop = accounts(rt, "wallet:a", "wallet:shop")
        _fund(rt, alice, 1_000)
        first = self._hold(rt, alice, shop, 700, clock, minutes=5)
        self._hold(rt, alice, shop, 100, clock, minutes=60)
        clock.advance(minutes=6)
        with rt.db.unit_of_work() as session, pytest.raises(HoldExpired):
            ledger.post_hold(session, hold_id=first)
        assert available(rt, alice) == 900
        with rt.db.unit_of_work() as session:
            assert ledger.expire_holds(session) == 0
            assert ledger.get_hold(session, first).status == HoldStatus.EXPIRED.value
        assert verified(rt)

    def test_expired_hold_released_lazily_on_debit(self, rt: Runtime, clock: ManualClock) -> None:
        alice, shop = accounts(rt, "wallet:a", "wallet:shop")
        _fund(rt, alice, 1_000)
        self._hold(rt, alice, shop, 900, clock, minutes=5)
        clock.advance(minutes=5)
        with rt.db.unit_of_work() as session:
            ledger.transfer(
                session, kind=EntryKind.PAYMENT, source=alice, destination=shop, amount=800
            )
        assert balances(rt, alice, shop) == [200, 800]
        assert verified(rt)

    def test_expire_holds_sweeps(self, rt: Runtime, clock: ManualClock) -> None:
        alice, shop = accounts(rt, "wallet:a", "wallet:shop")
        _fund(rt, alice, 1_000)
        for _ in range(3):
            self._hold(rt, alice, shop, 100, clock, minutes=1)
        clock.advance(minutes=2)
        with rt.db.unit_of_work() as session:
            assert ledger.expire_holds(session) == 3
        assert available(rt, alice) == 1_000

    def test_idempotent_hold(self, rt: Runtime, clock: ManualClock) -> None:
        alice, shop = accounts(rt, "wallet:a", "wallet:shop")
        _fund(rt, alice, 1_000)
        expires = clock.now() + timedelta(minutes=5)
        with rt.db.unit_of_work() as session:
            first = ledger.create_hold(
                session,
                kind=EntryKind.PAYMENT,
                source=alice,
                destination=shop,
                amount=300,
                expires_at=expires,
                idempotency_key="h-1",
            ).id
        with rt.db.unit_of_work() as session:
            again = ledger.create_hold(
                session,
                kind=EntryKind.PAYMENT,
                source=alice,
                destination=shop,
                amount=300,
                expires_at=expires,
                idempotency_key="h-1",
            ).id
        assert again == first
        assert available(rt, alice) == 700
        with rt.db.unit_of_work() as session, pytest.raises(IdempotencyConflict):
            ledger.create_hold(
                session,
                kind=EntryKind.PAYMENT,
                source=alice,
                destination=shop,
                amount=301,
                expires_at=expires,
                idempotency_key="h-1",
            )

    def test_hold_in_the_past_refused(self, rt: Runtime, clock: ManualClock) -> None:
        alice, shop = accounts(rt, "wallet:a", "wallet:shop")
        with rt.db.unit_of_work() as session, pytest.raises(InvalidEntry):
            ledger.create_hold(
                session,
                kind=EntryKind.PAYMENT,
                source=alice,
                destination=shop,
                amount=1,
                expires_at=clock.now(),
            )


class TestStatement:
    def test_newest_first_with_running_balance(self, rt: Runtime) -> None:
        alice, bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 1_000)
        with rt.db.unit_of_work() as session:
            for amount in (100, 200, 300):
                ledger.transfer(
                    session, kind=EntryKind.TRANSFER, source=alice, destination=bob, amount=amount
                )
        with rt.db.unit_of_work() as session:
            rows = ledger.statement(session, alice)
            page = ledger.statement(session, alice, limit=2, before_id=rows[1].posting_id)
        assert [(r.kind, r.amount, r.balance_after) for r in rows] == [
            ("transfer", -300, 400),
            ("transfer", -200, 700),
            ("transfer", -100, 900),
            ("topup", 1_000, 1_000),
        ]
        assert [r.amount for r in page] == [-100, 1_000]


class TestVerify:
    def test_clean_ledger(self, rt: Runtime) -> None:
        alice, _bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 500)
        assert verified(rt)

    def test_reports_tampered_balance(self, rt: Runtime) -> None:
        from sqlalchemy import update

        from kouza.ledger.models import LedgerAccount

        (alice,) = accounts(rt, "wallet:a")
        _fund(rt, alice, 500)
        with rt.db.unit_of_work() as session:
            session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.id == alice)
                .values(balance=LedgerAccount.balance + 7)
            )
        with rt.db.unit_of_work() as session:
            report = ledger.verify(session)
        assert not report.ok
        assert any("wallet:a" in p and "507" in p and "500" in p for p in report.problems)

    def test_postings_count(self, rt: Runtime) -> None:
        alice, _bob = accounts(rt, "wallet:a", "wallet:b")
        _fund(rt, alice, 500)
        with rt.db.unit_of_work() as session:
            report = ledger.verify(session)
            assert (report.entries, report.postings) == (1, 2)
            assert session.scalar(select(func.count(Posting.id))) == 2
