"""The 2020 incident, end to end over HTTP: allowed by the 2019 policy, refused by kouza's."""

from __future__ import annotations

from datetime import date, timedelta

from kouza.linking.models import MovementStatus
from tests.linking.conftest import World
from tests.linking.support import (
    bank_balance,
    email_customer,
    ledger_ok,
    link_body,
    links,
    login,
    movements,
    no_rules,
    policy_2019,
    signed,
    verified_customer,
    wallet_balance,
)

CHARGES = (100_000, 90_000, 90_000, 20_000)


class TestReplay2020:
    def test_leaked_details_empty_a_victims_account_within_a_minute(self, world: World) -> None:
        policy_2019(world)
        attacker = email_customer(world, "attacker@example.net")
        headers = login(world, attacker)
        before = bank_balance(world, world.victim)
        answer = world.wallet.post(
            f"/v1/wallets/{attacker.wallet.id}/bank-links",
            json=link_body(world.victim),
            headers=headers,
        )
        assert answer.status_code == 201, answer.text
        link_id = answer.json()["id"]
        assert answer.json()["account_last3"] == "567"
        for number, amount in enumerate(CHARGES):
            world.clock.advance(seconds=15)
            charged = world.wallet.post(
                f"/v1/wallets/{attacker.wallet.id}/topups",
                json={"link_id": link_id, "amount": amount},
                headers=headers | {"Idempotency-Key": f"charge-{number}"},
            )
            assert charged.status_code == 201, charged.text
            assert charged.json()["status"] == MovementStatus.POSTED.value
        assert before - bank_balance(world, world.victim) == 300_000
        balance = wallet_balance(world, attacker)
        assert (balance.balance, balance.available, balance.pending_in) == (300_000, 300_000, 0)
        assert ledger_ok(world)


class TestRefusedByKouza:
    def test_email_level_cannot_link(self, world: World) -> None:
        no_rules(world)
        attacker = email_customer(world)
        before = bank_balance(world, world.victim)
        answer = world.wallet.post(
            f"/v1/wallets/{attacker.wallet.id}/bank-links",
            json=link_body(world.victim),
            headers=login(world, attacker),
        )
        assert answer.status_code == 403
        assert answer.json()["error"] == "verification_level_required"
        assert links(world) == [] and bank_balance(world, world.victim) == before

    def test_verified_attacker_is_refused_by_the_name_match_at_the_bank(self, world: World) -> None:
        no_rules(world)
        world.rt.settings.accepted_legacy_banks = ["0125"]  # even with the weak form accepted
        attacker = verified_customer(
            world,
            name="鈴木　次郎",
            birth_date=date(1990, 1, 1),
            kana="ｽｽﾞｷ ｼﾞﾛｳ",
            phone="090-2222-3333",
            e164="+819022223333",
        )
        body = link_body(world.victim) | signed(world, attacker, "bank.link")
        answer = world.wallet.post(
            f"/v1/wallets/{attacker.wallet.id}/bank-links",
            json=body,
            headers=login(world, attacker),
        )
        assert answer.status_code == 422
        assert answer.json()["error"] == "bank_link_refused"
        assert links(world) == [] and movements(world) == []

    def test_legacy_bank_is_refused_unless_accepted(self, world: World) -> None:
        """``legacy_bank_links = refuse``: as before restricted links (ADR 0032)."""
        no_rules(world)
        world.rt.settings.legacy_bank_links = "refuse"
        victim_self = verified_customer(
            world,
            name="山田　太郎",
            birth_date=date(1960, 4, 1),
            kana="ﾔﾏﾀﾞ ﾀﾛｳ",
            phone="090-4444-5555",
            e164="+819044445555",
        )
        body = link_body(world.victim) | signed(world, victim_self, "bank.link")
        answer = world.wallet.post(
            f"/v1/wallets/{victim_self.wallet.id}/bank-links",
            json=body,
            headers=login(world, victim_self),
        )
        assert answer.status_code == 403
        assert answer.json()["error"] == "legacy_bank_not_accepted"
        assert links(world) == []

    def test_oauth_bank_refuses_the_legacy_form(self, world: World) -> None:
        policy_2019(world)
        attacker = email_customer(world)
        before = bank_balance(world, world.oauth_holder)
        answer = world.wallet.post(
            f"/v1/wallets/{attacker.wallet.id}/bank-links",
            json=link_body(world.oauth_holder),
            headers=login(world, attacker),
        )
        assert answer.status_code == 403
        assert answer.json()["error"] == "legacy_form_not_offered"
        assert links(world) == [] and bank_balance(world, world.oauth_holder) == before

    def test_the_holder_links_their_own_account_and_charges(self, world: World) -> None:
        no_rules(world)
        world.rt.settings.accepted_legacy_banks = ["0125"]
        holder = verified_customer(
            world,
            name="山田　太郎",
            birth_date=date(1960, 4, 1),
            kana="ﾔﾏﾀﾞ ﾀﾛｳ",
            phone="090-4444-5555",
            e164="+819044445555",
        )
        headers = login(world, holder)
        body = link_body(world.victim, holder_name=None) | signed(world, holder, "bank.link")
        answer = world.wallet.post(
            f"/v1/wallets/{holder.wallet.id}/bank-links", json=body, headers=headers
        )
        assert answer.status_code == 201, answer.text
        world.clock.advance(timedelta(minutes=1))
        charge = {"link_id": answer.json()["id"], "amount": 10_000} | signed(
            world, holder, "charge"
        )
        charged = world.wallet.post(
            f"/v1/wallets/{holder.wallet.id}/topups",
            json=charge,
            headers=headers | {"Idempotency-Key": "own-1"},
        )
        assert charged.status_code == 201, charged.text
        assert wallet_balance(world, holder).available == 10_000
        assert ledger_ok(world)
