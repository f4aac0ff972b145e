"""Restricted links for banks that only offer the legacy form (ADR 0032).

The victim's bank (0125) has only the PIN form and is not in ``accepted_legacy_banks``. Under
``legacy_bank_links = restricted`` (the default) its customer still links, through the form,
with the card's name and birth date compared by the bank; the link gets a lower mandate and
its top-ups during probation are debited at once but held for ``restricted_link_hold_hours``:
released by the job when the link is still in good standing, sent back to the bank account
when the holder said "not me" meanwhile.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from kouza.bank.errors import AlreadyReversed, LinkNotActive, UnknownTransfer
from kouza.bank.holder import holder as bank_holder
from kouza.bank.models import AttemptOutcome, Link, LinkAttempt, Transfer, TransferKind
from kouza.bank.models import OperatorClient as BankClientRow
from kouza.bank.transfers import TransferRequest, transfers
from kouza.cli import common
from kouza.cli.main import app
from kouza.controls.models import AuditEvent
from kouza.controls.overrides import overrides
from kouza.linking.models import BankMovementReview, MovementStatus, ReviewStatus
from kouza.linking.probation import release_due
from kouza.linking.reviews import reviews
from kouza.risk.models import RiskEventRecord
from tests.linking.conftest import World
from tests.linking.support import (
    Person,
    bank_balance,
    ledger_ok,
    link_body,
    links,
    login,
    movements,
    no_rules,
    signed,
    verified_customer,
    wallet_balance,
)

TARO_BORN = date(1960, 4, 1)  # what the bank has for 山田 太郎 (tests.bank.helpers)


def taro(world: World, *, name: str = "山田　太郎", born: date = TARO_BORN) -> Person:
    """The account holder's own wallet, verified with the card that says ``name``/``born``."""
    return verified_customer(
        world, name=name, birth_date=born, kana="ﾔﾏﾀﾞ ﾀﾛｳ", phone="090-4444-5555",
        e164="+819044445555",
    )  # fmt: skip


def link(world: World, person: Person) -> Any:
    body = link_body(world.victim, holder_name=None) | signed(world, person, "bank.link")
    return world.wallet.post(
        f"/v1/wallets/{person.wallet.id}/bank-links", json=body, headers=login(world, person)
    )


def top_up(world: World, person: Person, link_id: str, amount: int, key: str) -> Any:
    body = {"link_id": link_id, "amount": amount} | signed(world, person, "charge")
    return world.wallet.post(
        f"/v1/wallets/{person.wallet.id}/topups",
        json=body,
        headers=login(world, person) | {"Idempotency-Key": key},
    )


def bank_link(world: World) -> Link:
    with world.bank_rt.db.unit_of_work() as session:
        found = session.scalars(select(Link)).one()
        session.expunge(found)
        return found


def linked(world: World) -> tuple[Person, str]:
    no_rules(world)
    person = taro(world)
    answer = link(world, person)
    assert answer.status_code == 201, answer.text
    world.clock.advance(timedelta(minutes=1))
    return person, answer.json()["id"]


class TestLinking:
    def test_a_legacy_only_bank_gets_a_restricted_link_with_the_lower_mandate(
        self, world: World
    ) -> None:
        linked(world)

        (made,) = links(world)
        assert made.restricted
        assert (made.max_per_debit, made.max_30_days) == (30_000, 50_000)
        at_bank = bank_link(world)  # what the bank was asked for, and enforces
        assert (at_bank.max_per_debit, at_bank.max_30_days, at_bank.hold_hours) == (
            30_000,
            50_000,
            48,
        )
        assert at_bank.probation_until is not None
        notice = [m for m in world.mailbox.messages if m.recipient == "taro@example.jp"][-1]
        assert "held by the wallet for 48 hours" in notice.body
        assert at_bank.notice_reference in notice.body
        with world.rt.db.unit_of_work() as session:
            created = session.scalars(
                select(RiskEventRecord).where(RiskEventRecord.type == "link_created")
            ).one()
            assert created.attributes == {"restricted": True}

    def test_an_accepted_legacy_bank_still_gets_a_full_link(self, world: World) -> None:
        world.rt.settings.accepted_legacy_banks = ["0125"]
        linked(world)

        (made,) = links(world)
        assert not made.restricted and made.max_per_debit == 100_000
        assert bank_link(world).probation_until is None

    def test_a_bank_an_operator_accepts_at_run_time_gets_a_full_link(self, world: World) -> None:
        with world.rt.db.unit_of_work() as session:
            overrides.accept_legacy_bank(
                session, bank_code="0125", accepted=True, actor="ops", reason="bank added SMS"
            )
        linked(world)

        (made,) = links(world)
        assert not made.restricted and made.max_per_debit == 100_000

    def test_refused_at_run_time_the_bank_gets_no_link(self, world: World) -> None:
        with world.rt.db.unit_of_work() as session:
            overrides.set(
                session, key="legacy_bank_links", value="refuse", actor="ops", reason="incident"
            )
        no_rules(world)
        person = taro(world)
        body = link_body(world.victim) | signed(world, person, "bank.link")
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links", json=body, headers=login(world, person)
        )
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "legacy_bank_not_accepted"
        assert links(world) == []

    @pytest.mark.parametrize(
        "change",
        [{"link_name_match": False}, {"link_min_level": "phone"}],
        ids=["typed-name", "phone-level"],
    )
    def test_without_what_makes_it_safe_the_bank_is_refused(
        self, world: World, change: dict[str, Any]
    ) -> None:
        no_rules(world)
        person = taro(world)
        for name, value in change.items():
            setattr(world.rt.settings, name, value)
        body = link_body(world.victim) | signed(world, person, "bank.link")
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links", json=body, headers=login(world, person)
        )
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "legacy_bank_not_accepted"
        assert links(world) == []

    @pytest.mark.parametrize(
        ("card", "outcome"),
        [
            ({"name": "佐藤　花子"}, AttemptOutcome.NAME_MISMATCH),
            ({"born": date(1961, 4, 1)}, AttemptOutcome.BIRTH_DATE_MISMATCH),
        ],
        ids=["other-name", "other-birth-date"],
    )
    def test_a_leaked_pin_with_someone_elses_card_is_refused_by_the_bank(
        self, world: World, card: dict[str, Any], outcome: AttemptOutcome
    ) -> None:
        no_rules(world)
        thief = taro(world, **card)

        answer = link(world, thief)

        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "bank_link_refused"
        assert links(world) == []
        with world.bank_rt.db.unit_of_work() as session:
            assert list(session.scalars(select(LinkAttempt.outcome))) == [outcome.value]


class TestProbation:
    def test_a_top_up_is_debited_at_once_and_held_for_48_hours(self, world: World) -> None:
        person, link_id = linked(world)
        before = bank_balance(world, world.victim)

        answer = top_up(world, person, link_id, 20_000, "p-1")

        assert answer.status_code == 201, answer.text
        read = answer.json()
        assert (read["status"], read["review"], read["hold"]) == ("posted", "held", "probation")
        available_at = datetime.fromisoformat(read["available_at"])
        assert available_at == world.clock.now() + timedelta(hours=48)
        assert "48 hours" in read["message"]
        assert bank_balance(world, world.victim) == before - 20_000
        held = wallet_balance(world, person)
        assert (held.available, held.pending_in) == (0, 20_000)
        notice = [m for m in world.mailbox.messages if m.recipient == "taro@example.jp"][-1]
        assert "¥20,000 was debited" in notice.body and "48 hours" in notice.body
        with world.rt.db.unit_of_work() as session:
            event = session.scalars(
                select(RiskEventRecord).where(RiskEventRecord.type == "topup")
            ).one()
            assert event.attributes == {"restricted": True}
            # probation holds are not the operators' review queue
            assert reviews.list(session) == []
            assert len(reviews.list(session, probation=True)) == 1

    def test_the_mandate_is_the_restricted_one(self, world: World) -> None:
        person, link_id = linked(world)

        too_big = top_up(world, person, link_id, 30_001, "p-big")
        top_up(world, person, link_id, 30_000, "p-2")
        over_30_days = top_up(world, person, link_id, 20_001, "p-3")

        assert too_big.status_code == 422 and too_big.json()["error"] == "mandate_exceeded"
        assert over_30_days.status_code == 422, over_30_days.text

    def test_the_job_releases_after_48_hours_once(self, world: World) -> None:
        person, link_id = linked(world)
        top_up(world, person, link_id, 20_000, "p-1")

        world.clock.advance(timedelta(hours=47, minutes=59))
        early = release_due(world.rt)
        world.clock.advance(timedelta(minutes=1))
        due = release_due(world.rt)
        again = release_due(world.rt)

        assert (early.released, early.returned, early.waiting) == ([], [], [])
        assert len(due.released) == 1 and due.returned == []
        assert (again.released, again.returned, again.waiting) == ([], [], [])
        assert wallet_balance(world, person).available == 20_000
        with world.rt.db.unit_of_work() as session:
            audit = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "bank_movement.release")
            ).one()
            assert audit.actor == "probation"
        assert ledger_ok(world)

    def test_after_probation_top_ups_are_spendable_at_once(self, world: World) -> None:
        person, link_id = linked(world)
        world.clock.advance(timedelta(days=30))

        answer = top_up(world, person, link_id, 10_000, "p-late")

        assert answer.status_code == 201, answer.text
        assert answer.json()["review"] is None and answer.json()["hold"] is None
        assert wallet_balance(world, person).available == 10_000

    def test_not_me_sends_the_held_money_back_to_the_bank_account(self, world: World) -> None:
        person, link_id = linked(world)
        before = bank_balance(world, world.victim)
        top_up(world, person, link_id, 20_000, "p-1")
        reference = bank_link(world).notice_reference

        world.clock.advance(timedelta(hours=3))
        with world.bank_rt.db.unit_of_work() as session:
            bank_holder.not_me(session, reference)  # the bank revokes and tells the wallet
        assert world.webhook_answers == [200]
        assert links(world)[0].status == "revoked"
        report = release_due(world.rt)  # long before the 48 hours are over
        again = release_due(world.rt)

        assert len(report.returned) == 1 and report.released == []
        assert (again.released, again.returned) == ([], [])
        assert bank_balance(world, world.victim) == before
        assert wallet_balance(world, person).balance == 0
        debit, refund = movements(world)
        assert refund.status == MovementStatus.POSTED.value and refund.amount == 20_000
        with world.rt.db.unit_of_work() as session:
            review = session.get_one(BankMovementReview, debit.id)
            assert review.status == ReviewStatus.REJECTED.value
            assert review.decided_by == "probation"
        with world.bank_rt.db.unit_of_work() as session:
            reversal = session.scalars(
                select(Transfer).where(Transfer.kind == TransferKind.CREDIT.value)
            ).one()
            assert reversal.reverses_id == debit.bank_transfer_id
        assert ledger_ok(world)


class TestBankReversals:
    """The one credit a revoked link takes: the reversal of its own debit, at most, once."""

    def _revoked_with_debit(self, world: World) -> tuple[Link, Transfer, BankClientRow]:
        person, link_id = linked(world)
        top_up(world, person, link_id, 20_000, "p-1")
        with world.bank_rt.db.unit_of_work() as session:
            debit = session.scalars(select(Transfer)).one()
            link_row = bank_holder.revoke(session, debit.link_id, reason="holder: not me")
            client = session.get_one(BankClientRow, link_row.client_pk)
            session.expunge_all()
        return link_row, debit, client

    def _credit(
        self, world: World, client: BankClientRow, link_row: Link, key: str, **changes: Any
    ) -> Transfer:
        request = TransferRequest(
            kind=TransferKind.CREDIT,
            link_id=link_row.id,
            amount=changes.get("amount", 20_000),
            idempotency_key=key,
            reverses=changes.get("reverses"),
        )
        with world.bank_rt.db.unit_of_work() as session:
            client_row = session.get_one(BankClientRow, client.id)
            result = transfers.execute(session, client=client_row, request=request)
            session.expunge(result.transfer)
            return result.transfer

    def test_only_a_reversal_of_its_own_debit_at_most_once(self, world: World) -> None:
        link_row, debit, client = self._revoked_with_debit(world)

        with pytest.raises(LinkNotActive):
            self._credit(world, client, link_row, "plain")
        with pytest.raises(UnknownTransfer):
            self._credit(world, client, link_row, "other", reverses=link_row.id)
        with pytest.raises(Exception, match="at most the debit"):
            self._credit(world, client, link_row, "more", amount=20_001, reverses=debit.id)
        done = self._credit(world, client, link_row, "back", reverses=debit.id)
        replay = self._credit(world, client, link_row, "back", reverses=debit.id)
        with pytest.raises(AlreadyReversed):
            self._credit(world, client, link_row, "twice", amount=1, reverses=debit.id)

        assert done.reverses_id == debit.id and replay.id == done.id


def test_the_cli_runs_the_job(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """``kouza links release-due``, as cron runs it, on the wallet's runtime."""
    person, link_id = linked(world)
    top_up(world, person, link_id, 20_000, "p-1")
    monkeypatch.setattr(common, "_runtime", world.rt)
    world.clock.advance(timedelta(hours=48))

    first = CliRunner().invoke(app, ["links", "release-due"])
    second = CliRunner().invoke(app, ["links", "release-due"])

    assert first.exit_code == 0, first.output
    assert "released 1, returned to the bank 0, waiting 0" in first.output
    assert "released 0, returned to the bank 0, waiting 0" in second.output
    assert wallet_balance(world, person).available == 20_000
