"""Top-ups held for review: credited and held, then released or rejected by an operator."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from kouza.controls.models import AuditEvent, OperatorRole
from kouza.controls.service import controls
from kouza.linking.models import BankMovement, MovementStatus
from kouza.linking.service import linking
from kouza.risk.service import risk
from tests.linking.conftest import World, is_transfer
from tests.linking.oauth_support import (
    approve,
    browser,
    callback,
    ib_balance,
    ib_holder,
    log_in_at_bank,
    register_wallet_at_bank,
    start,
)
from tests.linking.support import (
    Linked,
    bank_balance,
    charge,
    ledger_ok,
    linked_under_2019,
    login,
    signed,
    verified_customer,
    wallet_balance,
)

REVIEW_BIG = (
    "version: t\nrules:\n  - id: review-big\n"
    "    events: [topup]\n    when: event.amount >= 100000\n"
    "    outcome: review\n"
)


def operator(world: World, name: str = "aiko") -> dict[str, str]:
    with world.rt.db.unit_of_work() as session:
        _, token = controls.create_operator(
            session, name=name, role=OperatorRole.ANALYST, actor="test"
        )
    return {"Authorization": f"Bearer {token}"}


def held_top_up(world: World) -> tuple[Linked, str]:
    linked = linked_under_2019(world)
    risk.load_rules(world.rt, REVIEW_BIG, source="test.yaml")
    answer = charge(world, linked, 100_000, "big")
    assert answer.status_code == 201, answer.text
    assert answer.json()["review"] == "held"
    return linked, answer.json()["id"]


def audit(world: World) -> list[tuple[str, str, str]]:
    with world.rt.db.unit_of_work() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        return [
            (row.actor, row.action, row.subject) for row in rows if row.action.startswith("bank")
        ]


class TestHeld:
    def test_held_money_is_not_spendable_and_listed_for_operators(self, world: World) -> None:
        linked, movement_id = held_top_up(world)
        balance = wallet_balance(world, linked.person)
        assert (balance.balance, balance.available, balance.pending_in) == (0, 0, 100_000)
        listed = world.wallet.get("/v1/ops/bank-reviews", headers=operator(world))
        assert listed.status_code == 200
        (review,) = listed.json()
        assert (review["movement_id"], review["status"], review["movement_status"]) == (
            movement_id,
            "held",
            "posted",
        )
        assert review["rules"] == ["review-big"] and review["amount"] == 100_000

    def test_customers_cannot_decide(self, world: World) -> None:
        linked, movement_id = held_top_up(world)
        answer = world.wallet.post(
            f"/v1/ops/bank-reviews/{movement_id}/release",
            json={"reason": "mine"},
            headers=linked.headers,
        )
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_operator_token"
        assert wallet_balance(world, linked.person).available == 0


class TestRelease:
    def test_release_makes_the_money_spendable_and_is_audited(self, world: World) -> None:
        linked, movement_id = held_top_up(world)
        answer = world.wallet.post(
            f"/v1/ops/bank-reviews/{movement_id}/release",
            json={"reason": "customer confirmed by phone"},
            headers=operator(world),
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["decided_by"]) == ("released", "operator:aiko")
        assert body["decision_reason"] == "customer confirmed by phone"
        balance = wallet_balance(world, linked.person)
        assert (balance.balance, balance.available, balance.pending_in) == (100_000, 100_000, 0)
        assert audit(world) == [("operator:aiko", "bank_movement.release", movement_id)]
        again = world.wallet.post(
            f"/v1/ops/bank-reviews/{movement_id}/reject",
            json={"reason": "changed my mind"},
            headers=operator(world, "ken"),
        )
        assert again.status_code == 409 and again.json()["error"] == "bank_review_not_pending"
        assert wallet_balance(world, linked.person).available == 100_000
        assert ledger_ok(world)

    def test_a_blank_reason_is_refused_and_changes_nothing(self, world: World) -> None:
        linked, movement_id = held_top_up(world)
        answer = world.wallet.post(
            f"/v1/ops/bank-reviews/{movement_id}/release",
            json={"reason": "   "},
            headers=operator(world),
        )
        assert answer.status_code == 400 and answer.json()["error"] == "reason_required"
        assert wallet_balance(world, linked.person).pending_in == 100_000
        assert audit(world) == []

    def test_not_ready_while_the_banks_answer_is_unknown(self, world: World) -> None:
        linked = linked_under_2019(world)
        risk.load_rules(world.rt, REVIEW_BIG, source="test.yaml")
        world.transport.lose_response = is_transfer
        lost = charge(world, linked, 100_000, "lost")
        assert lost.status_code == 503 and lost.json()["error"] == "bank_outcome_unknown"
        world.transport.lose_response = lambda _request: False
        (movement,) = _movements(world)
        assert movement.status == MovementStatus.UNKNOWN.value
        answer = world.wallet.post(
            f"/v1/ops/bank-reviews/{movement.id}/release",
            json={"reason": "looks fine"},
            headers=operator(world),
        )
        assert answer.status_code == 409 and answer.json()["error"] == "bank_review_not_ready"
        assert wallet_balance(world, linked.person).available == 0
        # reconciliation sees the bank's debit: the movement is posted, the money still held
        world.clock.advance(seconds=1)
        with world.rt.db.unit_of_work() as session:
            report = linking.reconcile(
                session,
                since=world.clock.now() - timedelta(hours=1),
                until=world.clock.now() + timedelta(seconds=1),
            )
        assert report.ok and report.posted == [str(movement.id)]
        balance = wallet_balance(world, linked.person)
        assert (balance.available, balance.pending_in) == (0, 100_000)
        released = world.wallet.post(
            f"/v1/ops/bank-reviews/{movement.id}/release",
            json={"reason": "looks fine"},
            headers=operator(world, "ken"),
        )
        assert released.status_code == 200, released.text
        assert wallet_balance(world, linked.person).available == 100_000


def _movements(world: World) -> list[BankMovement]:
    with world.rt.db.unit_of_work() as session:
        return list(session.scalars(select(BankMovement).order_by(BankMovement.created_at)))


class TestReject:
    def test_reject_sends_the_money_back_and_reconciles(self, world: World) -> None:
        before = bank_balance(world, world.victim)
        linked, movement_id = held_top_up(world)
        assert before - bank_balance(world, world.victim) == 100_000
        answer = world.wallet.post(
            f"/v1/ops/bank-reviews/{movement_id}/reject",
            json={"reason": "account holder says not me"},
            headers=operator(world),
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["refund_status"]) == ("rejected", "posted")
        assert bank_balance(world, world.victim) == before
        balance = wallet_balance(world, linked.person)
        assert (balance.balance, balance.available, balance.pending_in) == (0, 0, 0)
        assert audit(world) == [("operator:aiko", "bank_movement.reject", movement_id)]
        with world.rt.db.unit_of_work() as session:
            report = linking.reconcile(
                session,
                since=world.clock.now() - timedelta(hours=1),
                until=world.clock.now() + timedelta(seconds=1),
            )
        assert report.ok, report.differences
        assert ledger_ok(world)

    def test_a_refund_without_answer_stays_reserved(self, world: World) -> None:
        linked, movement_id = held_top_up(world)
        world.transport.drop_request = is_transfer
        answer = world.wallet.post(
            f"/v1/ops/bank-reviews/{movement_id}/reject",
            json={"reason": "fraud"},
            headers=operator(world),
        )
        assert answer.status_code == 200, answer.text
        assert (answer.json()["status"], answer.json()["refund_status"]) == ("rejected", "unknown")
        # the refund's money stays reserved until the bank's answer is known
        balance = wallet_balance(world, linked.person)
        assert (balance.balance, balance.available) == (100_000, 0)


class TestOAuthLinkReview:
    def test_rejecting_a_held_top_up_refunds_through_the_dpop_token(self, world: World) -> None:
        register_wallet_at_bank(world)
        holder = ib_holder(world)
        person = verified_customer(
            world,
            name="佐藤　花子",
            birth_date=date(1985, 5, 5),
            kana="サトウ ハナコ",
            phone="090-1111-2222",
            e164="+819011112222",
        )
        started = start(world, person)
        assert started.status_code == 201, started.text
        with browser(world) as page:
            query = approve(
                page, log_in_at_bank(world, page, started.json()["authorization_url"], holder)
            )
        link = callback(world, person, query).json()
        risk.load_rules(world.rt, REVIEW_BIG, source="test.yaml")
        before = ib_balance(world, holder)
        charged = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/topups",
            json={"link_id": link["id"], "amount": 100_000} | signed(world, person, "charge"),
            headers=login(world, person) | {"Idempotency-Key": "big"},
        )
        assert charged.status_code == 201 and charged.json()["review"] == "held"
        assert before - ib_balance(world, holder) == 100_000
        rejected = world.wallet.post(
            f"/v1/ops/bank-reviews/{charged.json()['id']}/reject",
            json={"reason": "not the holder"},
            headers=operator(world),
        )
        assert rejected.status_code == 200 and rejected.json()["refund_status"] == "posted"
        assert ib_balance(world, holder) == before
        credit = [r for r in world.transport.requests if r.url.path.endswith("/credits")]
        assert len(credit) == 1 and credit[0].headers["Authorization"].startswith("DPoP ")
