"""Top-ups and withdrawals: idempotent under retries; nothing created or lost by faults."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from kouza.errors import IdempotencyConflict
from kouza.kit.idempotency import IdempotencyRecord
from kouza.ledger.models import Hold, HoldStatus, JournalEntry
from kouza.linking.errors import BankOutcomeUnknown
from kouza.linking.models import MovementStatus
from kouza.linking.reconcile import ReconcileReport
from kouza.linking.schemas import BankMovementRead
from kouza.linking.service import linking
from tests.conftest import START
from tests.linking.conftest import World, is_transfer
from tests.linking.support import (
    Linked,
    bank_balance,
    bank_transfer_count,
    charge,
    ledger_ok,
    link_body,
    linked_under_2019,
    links,
    login,
    movements,
    policy_2019,
    signed,
    verified_customer,
    wallet_balance,
)


def _entries(world: World) -> int:
    with world.rt.db.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


def _reconcile(world: World) -> ReconcileReport:
    with world.rt.db.unit_of_work() as session:
        return linking.reconcile(
            session, since=START, until=world.clock.now() + timedelta(seconds=1)
        )


def _hold_status(world: World, hold_id: int) -> str:
    with world.rt.db.unit_of_work() as session:
        return session.get_one(Hold, hold_id).status


def _assert_conserved(world: World, linked: Linked, bank_before: int) -> None:
    """What left the bank account is exactly what the wallet holds, and the ledger is sound."""
    moved = bank_before - bank_balance(world, world.victim)
    balance = wallet_balance(world, linked.person)
    assert balance.balance == moved
    assert balance.pending_in == 0
    assert ledger_ok(world)


def _top_up(world: World, linked: Linked, amount: int, key: str) -> None:
    linking.top_up(
        world.rt,
        user=linked.person.user,
        wallet_id=linked.person.wallet.id,
        link_id=uuid.UUID(linked.link_id),
        amount=amount,
        idempotency_key=key,
        ip="203.0.113.9",
    )


class TestTransactions:
    """ADR 0028: a top-up is two wallet transactions around the bank call (record, settle) and
    one at the bank besides the notice's delivery; a retry still replays."""

    def test_a_top_up_takes_two_wallet_transactions(self, world: World) -> None:
        linked = linked_under_2019(world)
        begun = {"wallet": 0, "bank": 0}

        def counter(name: str) -> Callable[[object], None]:
            def count(_connection: object) -> None:
                begun[name] += 1

            return count

        wallet_count, bank_count = counter("wallet"), counter("bank")
        event.listen(world.rt.db.engine, "begin", wallet_count)
        event.listen(world.bank_rt.db.engine, "begin", bank_count)
        try:
            assert charge(world, linked, 10_000, "count-me").status_code == 201
        finally:
            event.remove(world.rt.db.engine, "begin", wallet_count)
            event.remove(world.bank_rt.db.engine, "begin", bank_count)
        assert begun["wallet"] == 2
        assert begun["bank"] == 2  # the debit with its authentication; the notice's delivery
        (movement,) = movements(world)
        with world.rt.db.session() as session:
            (record,) = session.scalars(select(IdempotencyRecord)).all()
            assert (record.status, record.resource) == ("completed", f"bank_movement:{movement.id}")


class TestIdempotentTopUps:
    def test_retries_with_the_same_key_debit_once(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        first = charge(world, linked, 50_000, "retry-me")
        entries = _entries(world)
        again = charge(world, linked, 50_000, "retry-me")
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert bank_transfer_count(world) == 1 and _entries(world) == entries
        assert before - bank_balance(world, world.victim) == 50_000
        _assert_conserved(world, linked, before)

    def test_same_key_with_another_amount_is_a_conflict(self, world: World) -> None:
        linked = linked_under_2019(world)
        assert charge(world, linked, 50_000, "k").status_code == 201
        answer = charge(world, linked, 60_000, "k")
        assert answer.status_code == 409
        assert answer.json()["error"] == "idempotency_conflict"
        assert bank_transfer_count(world) == 1

    def test_a_retry_with_a_fresh_device_proof_is_the_same_request(self, world: World) -> None:
        """A proof is single-use: the app's retry signs a new challenge. Same key, same amount
        and link: the same request (resumed after a lost answer), not a conflict."""
        policy_2019(world)
        holder = verified_customer(
            world,
            name="山田　太郎",
            birth_date=date(1960, 4, 1),
            kana="ﾔﾏﾀﾞ ﾀﾛｳ",
            phone="090-4444-5555",
            e164="+819044445555",
        )
        headers = login(world, holder)
        made = world.wallet.post(
            f"/v1/wallets/{holder.wallet.id}/bank-links",
            json=link_body(world.victim) | signed(world, holder, "bank.link"),
            headers=headers,
        )
        assert made.status_code == 201, made.text
        linked = Linked(holder, headers, made.json()["id"])
        before = bank_balance(world, world.victim)

        def signed_charge() -> Any:
            return world.wallet.post(
                f"/v1/wallets/{linked.person.wallet.id}/topups",
                json={"link_id": linked.link_id, "amount": 30_000}
                | signed(world, linked.person, "charge"),
                headers=linked.headers | {"Idempotency-Key": "signed-retry"},
            )

        world.transport.lose_response = is_transfer
        lost = signed_charge()
        assert lost.status_code == 503 and lost.json()["error"] == "bank_outcome_unknown"
        world.transport.lose_response = lambda _request: False
        retried = signed_charge()
        assert retried.status_code == 201, retried.text
        assert retried.json()["status"] == "posted"
        assert signed_charge().json() == retried.json()  # and a third replays the answer
        assert bank_transfer_count(world) == 1
        _assert_conserved(world, linked, before)

    def test_a_retry_after_a_lost_answer_settles_without_a_second_debit(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        world.transport.lose_response = is_transfer
        lost = charge(world, linked, 30_000, "lost")
        assert lost.status_code == 503 and lost.json()["error"] == "bank_outcome_unknown"
        world.transport.lose_response = lambda _request: False
        retried = charge(world, linked, 30_000, "lost")
        assert retried.status_code == 201 and retried.json()["status"] == "posted"
        assert bank_transfer_count(world) == 1
        _assert_conserved(world, linked, before)


class TestReconciliation:
    def test_bank_succeeded_but_the_answer_was_lost(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        world.transport.lose_response = is_transfer
        with pytest.raises(BankOutcomeUnknown):
            _top_up(world, linked, 40_000, "a")
        [movement] = movements(world)
        assert movement.status == MovementStatus.UNKNOWN.value
        assert _hold_status(world, movement.hold_id) == HoldStatus.PENDING.value
        held = wallet_balance(world, linked.person)
        assert (held.balance, held.available, held.pending_in) == (0, 0, 40_000)
        report = _reconcile(world)
        assert report.posted == [str(movement.id)] and report.ok
        assert movements(world)[0].status == MovementStatus.POSTED.value
        _assert_conserved(world, linked, before)
        assert wallet_balance(world, linked.person).available == 40_000

    def test_the_wallet_crashed_after_the_bank_call(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)

        def crash(_movement_id: uuid.UUID) -> None:
            raise RuntimeError("process killed (injected)")

        world.rt.after_bank_call = crash
        with pytest.raises(RuntimeError):
            _top_up(world, linked, 25_000, "b")
        world.rt.after_bank_call = None
        [movement] = movements(world)
        assert movement.status == MovementStatus.PENDING.value
        assert before - bank_balance(world, world.victim) == 25_000
        assert wallet_balance(world, linked.person).available == 0
        report = _reconcile(world)
        assert report.posted == [str(movement.id)]
        _assert_conserved(world, linked, before)

    def test_the_bank_never_received_it(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        world.transport.drop_request = is_transfer
        with pytest.raises(BankOutcomeUnknown):
            _top_up(world, linked, 10_000, "c")
        world.transport.drop_request = lambda _request: False
        [movement] = movements(world)
        early = _reconcile(world)
        assert early.waiting == [str(movement.id)]
        world.clock.advance(seconds=world.rt.settings.bank_reconcile_grace_seconds + 1)
        late = _reconcile(world)
        assert late.voided == [str(movement.id)]
        assert movements(world)[0].status == MovementStatus.VOIDED.value
        assert bank_balance(world, world.victim) == before
        _assert_conserved(world, linked, before)

    def test_a_bank_transfer_unknown_to_the_wallet_is_reported(self, world: World) -> None:
        linked = linked_under_2019(world)
        [link] = [row for row in links(world) if str(row.id) == linked.link_id]
        answer = world.bank.post(
            f"/v1/links/{link.bank_link_id}/debits",
            json={"amount": 1_000},
            auth=(world.rt.settings.bank_client_id, world.rt.settings.bank_client_secret),
            headers={"Idempotency-Key": "made-outside-kouza"},
        )
        assert answer.status_code == 201
        report = _reconcile(world)
        assert [d.kind for d in report.differences] == ["unknown_to_wallet"]


class TestWithdrawal:
    def test_withdrawal_returns_money_to_the_account(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        assert charge(world, linked, 80_000, "in").status_code == 201
        out = world.wallet.post(
            f"/v1/wallets/{linked.person.wallet.id}/withdrawals",
            json={"link_id": linked.link_id, "amount": 30_000},
            headers=linked.headers | {"Idempotency-Key": "out"},
        )
        assert out.status_code == 201, out.text
        assert out.json()["direction"] == "credit" and out.json()["status"] == "posted"
        _assert_conserved(world, linked, before)
        assert wallet_balance(world, linked.person).balance == 50_000

    def test_withdrawal_beyond_the_balance_is_refused(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        out = world.wallet.post(
            f"/v1/wallets/{linked.person.wallet.id}/withdrawals",
            json={"link_id": linked.link_id, "amount": 1},
            headers=linked.headers | {"Idempotency-Key": "out"},
        )
        assert out.status_code == 422 and out.json()["error"] == "insufficient_funds"
        assert movements(world) == [] and bank_balance(world, world.victim) == before


class TestConcurrentTopUps:
    def test_two_parallel_top_ups_cannot_pass_the_30_day_cap_together(self, world: World) -> None:
        import threading

        from kouza.errors import KouzaError

        linked = linked_under_2019(world)
        world.rt.settings.limit_rolling_30d_yen = 150_000
        world.rt.limits = None
        before = bank_balance(world, world.victim)
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def run(key: str) -> None:
            barrier.wait()
            try:
                _top_up(world, linked, 100_000, key)
                outcomes.append("ok")
            except KouzaError as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=run, args=(key,)) for key in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["limit_exceeded", "ok"]
        assert before - bank_balance(world, world.victim) == 100_000
        _assert_conserved(world, linked, before)


def _direct(world: World, linked: Linked, amount: int, key: str) -> BankMovementRead:
    """A top-up the way the simulator makes it: the service, no HTTP."""
    return linking.top_up(
        world.rt,
        user=linked.person.user,
        wallet_id=linked.person.wallet.id,
        link_id=uuid.UUID(linked.link_id),
        amount=amount,
        idempotency_key=key,
        ip="203.0.113.9",
    )


def _key(world: World, key: str) -> tuple[str, str | None]:
    """Where the customer's key stands and what it points at."""
    with world.rt.db.session() as session:
        record = session.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.key == key)
        ).one()
        return record.status, record.resource


def _bank_keys(world: World) -> list[str]:
    """The Idempotency-Key of every debit or credit sent to the bank, in order."""
    return [r.headers["Idempotency-Key"] for r in world.transport.requests if is_transfer(r)]


class TestOneKeyRecord:
    """One record per customer key; the movement, the ledger hold and the bank key hang off it."""

    def test_the_key_points_at_the_movement_and_the_other_keys_derive_from_it(
        self, world: World
    ) -> None:
        linked = linked_under_2019(world)
        answer = charge(world, linked, 50_000, "k")
        assert answer.status_code == 201, answer.text
        [movement] = movements(world)
        assert answer.json()["id"] == str(movement.id)
        assert _key(world, "k") == ("completed", f"bank_movement:{movement.id}")
        assert _bank_keys(world) == [f"kouza-mv-{movement.id}"] == [movement.bank_key]
        with world.rt.db.unit_of_work() as session:
            hold = session.get_one(Hold, movement.hold_id)
            assert hold.idempotency_key == f"bank-movement:{movement.id}"

    def test_a_lost_answer_leaves_the_key_open_and_the_retry_resumes_it(self, world: World) -> None:
        linked = linked_under_2019(world)
        world.transport.lose_response = is_transfer
        assert charge(world, linked, 30_000, "lost").status_code == 503
        world.transport.lose_response = lambda _request: False
        [movement] = movements(world)
        assert _key(world, "lost") == ("open", f"bank_movement:{movement.id}")
        retried = charge(world, linked, 30_000, "lost")
        assert retried.status_code == 201 and retried.json()["id"] == str(movement.id)
        assert _bank_keys(world) == [movement.bank_key] * 2  # asked again under the same key
        assert bank_transfer_count(world) == 1 and len(movements(world)) == 1
        assert _key(world, "lost") == ("completed", f"bank_movement:{movement.id}")
        assert charge(world, linked, 30_000, "lost").json() == retried.json()

    def test_another_request_on_an_open_key_conflicts(self, world: World) -> None:
        linked = linked_under_2019(world)
        world.transport.lose_response = is_transfer
        assert charge(world, linked, 30_000, "lost").status_code == 503
        world.transport.lose_response = lambda _request: False
        other = charge(world, linked, 31_000, "lost")
        assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
        [movement] = movements(world)
        assert movement.status == MovementStatus.UNKNOWN.value
        assert _key(world, "lost") == ("open", f"bank_movement:{movement.id}")
        assert len(_bank_keys(world)) == 1

    def test_a_retry_after_a_refusal_by_the_bank_is_refused_again(self, world: World) -> None:
        linked = linked_under_2019(world)
        for key in ("ok-1", "ok-2", "ok-3"):
            assert charge(world, linked, 100_000, key).status_code == 201
        refused = charge(world, linked, 1_000, "over")
        assert refused.status_code == 422 and refused.json()["error"] == "bank_movement_refused"
        again = charge(world, linked, 1_000, "over")
        assert (again.status_code, again.json()["error"]) == (422, "bank_movement_refused")
        voided = movements(world)[-1]
        assert refused.json()["details"]["movement_id"] == str(voided.id)
        assert again.json()["details"] == {"movement_id": str(voided.id)}
        assert voided.status == MovementStatus.VOIDED.value and len(movements(world)) == 4
        assert _key(world, "over") == ("open", f"bank_movement:{voided.id}")
        sent = _bank_keys(world)
        assert len(sent) == 4 and sent[-1] == voided.bank_key  # the bank is not asked twice
        assert wallet_balance(world, linked.person).balance == 300_000


class TestDirectCallers:
    """The simulator and tests call the service without HTTP: the same record decides."""

    def test_a_retry_after_a_lost_answer_resumes_the_same_movement(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        world.transport.lose_response = is_transfer
        with pytest.raises(BankOutcomeUnknown):
            _direct(world, linked, 20_000, "d")
        world.transport.lose_response = lambda _request: False
        resumed = _direct(world, linked, 20_000, "d")
        [movement] = movements(world)
        assert (resumed.id, resumed.status) == (movement.id, MovementStatus.POSTED.value)
        assert _bank_keys(world) == [movement.bank_key] * 2
        assert bank_transfer_count(world) == 1
        _assert_conserved(world, linked, before)

    def test_same_key_with_another_amount_is_a_conflict(self, world: World) -> None:
        linked = linked_under_2019(world)
        _direct(world, linked, 10_000, "c")
        with pytest.raises(IdempotencyConflict):
            _direct(world, linked, 20_000, "c")
        assert bank_transfer_count(world) == 1 and len(movements(world)) == 1

    def test_a_key_is_one_request_whichever_way_it_came_in(self, world: World) -> None:
        linked = linked_under_2019(world)
        first = _direct(world, linked, 10_000, "shared")
        again = charge(world, linked, 10_000, "shared")
        assert again.status_code == 201 and again.json() == first.model_dump(mode="json")
        other = charge(world, linked, 11_000, "shared")
        assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
        assert bank_transfer_count(world) == 1


class TestConcurrentRetries:
    def test_parallel_retries_of_one_top_up_debit_once(self, world: World) -> None:
        import threading

        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        barrier = threading.Barrier(4)
        answers: list[tuple[int, str]] = []

        def retry() -> None:
            barrier.wait()
            answer = charge(world, linked, 40_000, "same")
            answers.append((answer.status_code, answer.json().get("error", "")))

        threads = [threading.Thread(target=retry) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert (201, "") in answers
        assert set(answers) <= {(201, ""), (409, "idempotency_in_flight")}, answers
        assert bank_transfer_count(world) == 1 and len(movements(world)) == 1
        _assert_conserved(world, linked, before)
