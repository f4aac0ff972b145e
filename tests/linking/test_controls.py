"""Holder controls, kill switches, re-verification and risk decisions around bank links."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select

from kouza.controls.cases import cases
from kouza.controls.models import OperatorRole, SwitchScope
from kouza.controls.switches import switches
from kouza.identity.service import identity
from kouza.linking.models import BankLinkStatus
from kouza.risk.service import risk
from kouza.wallet.models import Payment, Wallet, WalletStatus
from kouza.wallet.service import wallets
from tests.factories import merchant
from tests.identity.support import sms_code
from tests.linking.conftest import LEGACY_BANK, World
from tests.linking.support import (
    bank_balance,
    charge,
    email_customer,
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
from tests.ops.support import operator


def _switch(world: World, scope: SwitchScope, target: str = "", *, active: bool = True) -> None:
    with world.rt.db.unit_of_work() as session:
        switches.set(
            session,
            scope=scope,
            target=target,
            active=active,
            actor="test",
            reason="incident drill",
        )


def _bank_link_id(world: World) -> uuid.UUID:
    [link] = links(world)
    return link.bank_link_id


class TestRevokeCascade:
    def test_revocation_at_the_counter_stops_the_next_top_up(self, world: World) -> None:
        linked = linked_under_2019(world)
        assert charge(world, linked, 10_000, "before").status_code == 201
        revoked = world.bank.post(
            f"/v1/counter/links/{_bank_link_id(world)}/revoke",
            json={"reason": "holder: not me"},
            headers=world.staff(),
        )
        assert revoked.status_code == 200
        assert world.webhook_answers == [200]
        [link] = links(world)
        assert link.status == BankLinkStatus.REVOKED.value
        assert link.status_reason == "bank: holder: not me"
        before = bank_balance(world, world.victim)
        refused = charge(world, linked, 10_000, "after")
        assert refused.status_code == 422 and refused.json()["error"] == "bank_link_not_active"
        assert bank_balance(world, world.victim) == before and len(movements(world)) == 1

    def test_replayed_and_tampered_webhooks_are_refused(self, world: World) -> None:
        linked_under_2019(world)
        world.bank.post(
            f"/v1/counter/links/{_bank_link_id(world)}/revoke",
            json={"reason": "branch"},
            headers=world.staff(),
        )
        [token] = world.webhook_tokens
        headers = {"Content-Type": "application/jose"}
        replay = world.wallet.post("/v1/banks/webhooks", content=token, headers=headers)
        assert replay.status_code == 401 and replay.json()["error"] == "webhook_rejected"
        head, payload, signature = token.split(".")
        forged = ".".join((head, payload, ("A" if signature[0] != "A" else "B") + signature[1:]))
        tampered = world.wallet.post("/v1/banks/webhooks", content=forged, headers=headers)
        assert tampered.status_code == 401
        garbage = world.wallet.post("/v1/banks/webhooks", content=b"\xff\xfe", headers=headers)
        assert garbage.status_code == 401

    def test_suspension_stops_top_ups_but_not_withdrawals(self, world: World) -> None:
        linked = linked_under_2019(world)
        assert charge(world, linked, 20_000, "in").status_code == 201
        victim = world.victim
        path = (
            f"/v1/counter/banks/{victim.bank_code}/branches/{victim.branch_code}/accounts/"
            f"{victim.number}/operators/{world.rt.settings.bank_client_id}/suspend"
        )
        assert (
            world.bank.post(
                path, json={"reason": "holder asked"}, headers=world.staff()
            ).status_code
            == 200
        )
        assert links(world)[0].status == BankLinkStatus.SUSPENDED.value
        assert charge(world, linked, 1_000, "blocked").status_code == 422
        out = world.wallet.post(
            f"/v1/wallets/{linked.person.wallet.id}/withdrawals",
            json={"link_id": linked.link_id, "amount": 5_000},
            headers=linked.headers | {"Idempotency-Key": "out"},
        )
        assert out.status_code == 201, out.text


class TestKillSwitches:
    def test_all_links_stops_linking_at_once(self, world: World) -> None:
        policy_2019(world)
        _switch(world, SwitchScope.ALL_LINKS)
        person = email_customer(world)
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links",
            json=link_body(world.victim),
            headers=login(world, person),
        )
        assert answer.status_code == 403 and answer.json()["error"] == "kill_switch_active"
        assert links(world) == []

    def test_bank_links_stops_one_bank(self, world: World) -> None:
        policy_2019(world)
        _switch(world, SwitchScope.BANK_LINKS, LEGACY_BANK)
        person = email_customer(world)
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links",
            json=link_body(world.victim),
            headers=login(world, person),
        )
        assert answer.status_code == 403 and answer.json()["details"]["target"] == LEGACY_BANK

    def test_bank_charges_stops_top_ups_and_lifting_it_resumes(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        _switch(world, SwitchScope.BANK_CHARGES, LEGACY_BANK)
        stopped = charge(world, linked, 10_000, "one")
        assert stopped.status_code == 403 and stopped.json()["error"] == "kill_switch_active"
        assert bank_balance(world, world.victim) == before and movements(world) == []
        _switch(world, SwitchScope.BANK_CHARGES, LEGACY_BANK, active=False)
        assert charge(world, linked, 10_000, "one").status_code == 201


class TestReverification:
    def test_campaign_blocks_charging_but_not_paying(self, world: World) -> None:
        linked = linked_under_2019(world)
        assert charge(world, linked, 30_000, "first").status_code == 201
        with world.rt.db.unit_of_work() as session:
            identity.start_reverification(
                session,
                name="2020-09",
                reason="incident",
                started_by="test",
                cohort=[linked.person.user.id],
            )
        refused = charge(world, linked, 10_000, "second")
        assert refused.status_code == 403
        assert refused.json()["error"] == "reverification_required"
        shop = merchant(world.rt)
        with world.rt.db.unit_of_work() as session:
            qr = wallets.merchant_qr(session, merchant_id=shop.id, amount=1_000)
            payment = wallets.pay(
                session, user=linked.person.user, wallet_id=linked.person.wallet.id, qr=qr
            )
        assert payment.amount == 1_000
        assert wallet_balance(world, linked.person).balance == 29_000


class TestRiskDecisions:
    def test_customers_get_a_reference_and_operators_the_rules(self, world: World) -> None:
        """On the old code the refusal listed ``details.rules``: the fraudster learnt which rule
        stopped them. Now the customer sees a reference; an operator looks it up."""
        policy_2019(world)
        risk.load_rules(
            world.rt,
            "version: t\nrules:\n  - id: lock-every-link\n"
            "    events: [link_attempt]\n    when: event.amount >= 0\n"
            "    outcome: lock\n",
            source="test.yaml",
        )
        person = email_customer(world)
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links",
            json=link_body(world.victim),
            headers=login(world, person),
        )
        assert (answer.status_code, answer.json()["error"]) == (403, "risk_refused")
        assert "lock-every-link" not in answer.text and "rules" not in answer.text
        reference = answer.json()["details"]["reference"]
        assert set(answer.json()["details"]) == {"reference"}
        headers = operator(world, "analyst", OperatorRole.ANALYST)
        looked_up = world.wallet.get(f"/v1/ops/risk/decisions/{reference}", headers=headers)
        assert looked_up.status_code == 200, looked_up.text
        assert (looked_up.json()["outcome"], [r["id"] for r in looked_up.json()["fired"]]) == (
            "lock",
            ["lock-every-link"],
        )
        assert looked_up.json()["wallet"] == str(person.wallet.id)
        assert (
            world.wallet.get(
                f"/v1/ops/risk/decisions/{reference}", headers=login(world, person)
            ).status_code
            == 401
        )
        missing = world.wallet.get("/v1/ops/risk/decisions/999999", headers=headers)
        assert (missing.status_code, missing.json()["error"]) == (404, "unknown_decision")

    def test_a_lock_decision_refuses_locks_the_wallet_and_opens_a_case(self, world: World) -> None:
        policy_2019(world)
        risk.load_rules(
            world.rt,
            "version: t\nrules:\n  - id: lock-every-link\n"
            "    events: [link_attempt]\n    when: event.amount >= 0\n"
            "    outcome: lock\n",
            source="test.yaml",
        )
        person = email_customer(world)
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links",
            json=link_body(world.victim),
            headers=login(world, person),
        )
        assert answer.status_code == 403 and answer.json()["error"] == "risk_refused"
        assert links(world) == []
        with world.rt.db.unit_of_work() as session:
            wallet = session.get_one(Wallet, person.wallet.id)
            assert wallet.status == WalletStatus.LOCKED.value
            case = cases.open_case_of(session, person.wallet.id)
            assert case is not None and case.source == "risk"

    def test_step_up_is_needed_then_accepted(self, world: World) -> None:
        world.rt.settings.accepted_legacy_banks = [LEGACY_BANK]
        risk.load_rules(
            world.rt,
            "version: t\nrules:\n  - id: step-up-links\n"
            "    events: [link_attempt]\n    when: event.amount >= 0\n"
            "    outcome: step_up\n",
            source="test.yaml",
        )
        holder = verified_customer(
            world,
            name="山田　太郎",
            birth_date=date(1960, 4, 1),
            kana="ﾔﾏﾀﾞ ﾀﾛｳ",
            phone="090-4444-5555",
            e164="+819044445555",
        )
        headers = login(world, holder)
        path = f"/v1/wallets/{holder.wallet.id}/bank-links"
        body = link_body(world.victim, holder_name=None)
        first = world.wallet.post(
            path, json=body | signed(world, holder, "bank.link"), headers=headers
        )
        assert first.status_code == 403 and first.json()["error"] == "step_up_required"
        with world.rt.db.unit_of_work() as session:
            challenge = identity.start_step_up(session, holder.user, "bank.link")
        with world.rt.db.unit_of_work() as session:
            identity.complete_step_up(
                session, holder.user, challenge, sms_code(world.mailbox, "+819044445555")
            )
        second = world.wallet.post(
            path, json=body | signed(world, holder, "bank.link"), headers=headers
        )
        assert second.status_code == 201, second.text

    def test_review_credits_and_holds_a_top_up(self, world: World) -> None:
        # ADR 0013: a top-up under review is debited and held (not spendable) until an
        # operator releases or rejects it (tests/linking/test_reviews.py)
        linked = linked_under_2019(world)
        risk.load_rules(
            world.rt,
            "version: t\nrules:\n  - id: review-big\n"
            "    events: [topup]\n    when: event.amount >= 100000\n"
            "    outcome: review\n",
            source="test.yaml",
        )
        before = bank_balance(world, world.victim)
        answer = charge(world, linked, 100_000, "big")
        assert answer.status_code == 201, answer.text
        assert (answer.json()["status"], answer.json()["review"]) == ("posted", "held")
        assert before - bank_balance(world, world.victim) == 100_000
        balance = wallet_balance(world, linked.person)
        assert (balance.balance, balance.available, balance.pending_in) == (0, 0, 100_000)
        with world.rt.db.unit_of_work() as session:
            assert session.scalars(select(Payment)).all() == []

    def test_device_signature_is_required_by_default(self, world: World) -> None:
        world.rt.settings.accepted_legacy_banks = [LEGACY_BANK]
        holder = verified_customer(
            world,
            name="山田　太郎",
            birth_date=date(1960, 4, 1),
            kana="ﾔﾏﾀﾞ ﾀﾛｳ",
            phone="090-4444-5555",
            e164="+819044445555",
        )
        answer = world.wallet.post(
            f"/v1/wallets/{holder.wallet.id}/bank-links",
            json=link_body(world.victim, holder_name=None),
            headers=login(world, holder),
        )
        assert answer.status_code == 403
        assert answer.json()["error"] == "device_signature_required"
