"""Bad input gets a clear 4xx and moves nothing; the CLI reports and reconciles."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from kouza.cli import common, linking_cli
from tests.bank.helpers import make_holder
from tests.conftest import START
from tests.linking.conftest import LEGACY_BANK, World, is_transfer
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
    wallet_balance,
)


class TestBadLinks:
    @pytest.mark.parametrize(
        "changes",
        [
            {"account_number": "12345"},
            {"account_number": "12345678"},
            {"pin": "12a4"},
            {"branch": "1"},
            {"bank_code": "125"},
            {"account_type": "current"},
            {"unexpected": "field"},
        ],
    )
    def test_malformed_details_are_refused_before_any_bank_call(
        self, world: World, changes: dict[str, Any]
    ) -> None:
        policy_2019(world)
        person = email_customer(world)
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links",
            json=link_body(world.victim, **changes),
            headers=login(world, person),
        )
        assert answer.status_code == 422 and answer.json()["error"] == "validation_error"
        assert links(world) == [] and world.transport.forwarded == []

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"bank_code": "0999"}, "'0999' is not a bank code in the Zengin list"),
            ({"branch": "999"}, "'999' is not a branch code of bank 0125 in the Zengin list"),
        ],
    )
    def test_codes_missing_from_the_zengin_list_are_refused_before_any_bank_call(
        self, world: World, changes: dict[str, Any], message: str
    ) -> None:
        policy_2019(world)
        person = email_customer(world)
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links",
            json=link_body(world.victim, **changes),
            headers=login(world, person),
        )
        assert (answer.status_code, answer.json()["error"], answer.json()["message"]) == (
            422,
            "unknown_bank_code",
            message,
        )
        assert links(world) == [] and world.transport.forwarded == []

    def test_unknown_and_foreign_wallets_are_not_found(self, world: World) -> None:
        policy_2019(world)
        person, other = email_customer(world), email_customer(world)
        headers = login(world, person)
        for wallet_id in (uuid.uuid4(), other.wallet.id):
            answer = world.wallet.post(
                f"/v1/wallets/{wallet_id}/bank-links", json=link_body(world.victim), headers=headers
            )
            assert answer.status_code == 404 and answer.json()["error"] == "unknown_wallet"
            listed = world.wallet.get(f"/v1/wallets/{wallet_id}/bank-links", headers=headers)
            assert listed.status_code == 404
        assert links(world) == []

    def test_wrong_pin_is_the_banks_one_refusal(self, world: World) -> None:
        policy_2019(world)
        person = email_customer(world)
        answer = world.wallet.post(
            f"/v1/wallets/{person.wallet.id}/bank-links",
            json=link_body(world.victim, pin="0000"),
            headers=login(world, person),
        )
        assert answer.status_code == 422 and answer.json()["error"] == "bank_link_refused"
        assert links(world) == []

    def test_one_account_links_to_one_wallet(self, world: World) -> None:
        linked_under_2019(world)
        second = email_customer(world)
        answer = world.wallet.post(
            f"/v1/wallets/{second.wallet.id}/bank-links",
            json=link_body(world.victim),
            headers=login(world, second),
        )
        assert answer.status_code == 409 and answer.json()["error"] == "account_already_linked"
        assert len(links(world)) == 1

    def test_a_wallet_links_at_most_the_configured_number_of_accounts(self, world: World) -> None:
        linked = linked_under_2019(world)
        world.rt.settings.link_max_accounts_per_wallet = 1
        other = make_holder(
            world.bank_rt,
            bank_code=LEGACY_BANK,
            number="2222222",
            name_kana="ﾀﾅｶ ﾊﾅｺ",
            email="tanaka@example.jp",
        )
        answer = world.wallet.post(
            f"/v1/wallets/{linked.person.wallet.id}/bank-links",
            json=link_body(other),
            headers=linked.headers,
        )
        assert answer.status_code == 422 and answer.json()["error"] == "too_many_bank_links"

    def test_listing_shows_only_the_last_digits(self, world: World) -> None:
        linked = linked_under_2019(world)
        listed = world.wallet.get(
            f"/v1/wallets/{linked.person.wallet.id}/bank-links", headers=linked.headers
        )
        assert listed.status_code == 200
        assert [row["account_last3"] for row in listed.json()] == ["567"]
        assert world.victim.number not in listed.text and world.victim.pin not in listed.text


class TestBadMovements:
    @pytest.mark.parametrize("amount", [0, -1, 10**13, 1.5, "100"])
    def test_bad_amounts(self, world: World, amount: object) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        answer = charge(world, linked, amount, "bad")  # type: ignore[arg-type]
        assert answer.status_code == 422 and answer.json()["error"] == "validation_error"
        assert bank_balance(world, world.victim) == before and movements(world) == []

    def test_above_the_mandate_and_limits(self, world: World) -> None:
        linked = linked_under_2019(world)
        before = bank_balance(world, world.victim)
        over_mandate = charge(world, linked, 100_001, "m")
        assert over_mandate.status_code == 422
        assert over_mandate.json()["error"] == "mandate_exceeded"
        assert charge(world, linked, 100_000, "ok-1").status_code == 201
        assert charge(world, linked, 100_000, "ok-2").status_code == 201
        assert charge(world, linked, 100_000, "ok-3").status_code == 201
        over_30_days = charge(world, linked, 1_000, "m2")
        assert over_30_days.status_code == 422
        assert over_30_days.json()["error"] == "bank_movement_refused"
        assert over_30_days.json()["details"]["bank_error"] == "mandate_exceeded"
        assert before - bank_balance(world, world.victim) == 300_000
        assert wallet_balance(world, linked.person).balance == 300_000

    def test_unknown_link_and_foreign_wallet(self, world: World) -> None:
        linked = linked_under_2019(world)
        other = email_customer(world)
        answer = world.wallet.post(
            f"/v1/wallets/{linked.person.wallet.id}/topups",
            json={"link_id": str(uuid.uuid4()), "amount": 1_000},
            headers=linked.headers | {"Idempotency-Key": "x"},
        )
        assert answer.status_code == 404 and answer.json()["error"] == "unknown_bank_link"
        foreign = world.wallet.post(
            f"/v1/wallets/{other.wallet.id}/topups",
            json={"link_id": linked.link_id, "amount": 1_000},
            headers=linked.headers | {"Idempotency-Key": "y"},
        )
        assert foreign.status_code == 404 and foreign.json()["error"] == "unknown_wallet"
        stolen = world.wallet.post(
            f"/v1/wallets/{other.wallet.id}/topups",
            json={"link_id": linked.link_id, "amount": 1_000},
            headers=login(world, other) | {"Idempotency-Key": "z"},
        )
        assert stolen.status_code == 404 and stolen.json()["error"] == "unknown_bank_link"
        assert movements(world) == []


class TestCli:
    def test_links_and_reconcile(self, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        linked = linked_under_2019(world)
        monkeypatch.setattr(common, "_runtime", world.rt)
        monkeypatch.setattr(common.console, "_width", 240)
        runner = CliRunner()
        shown = runner.invoke(linking_cli.app, ["links", str(linked.person.wallet.id)])
        assert shown.exit_code == 0 and "***567" in shown.output
        world.transport.lose_response = is_transfer
        assert charge(world, linked, 5_000, "lost").status_code == 503
        world.transport.lose_response = lambda _request: False
        until = (world.clock.now() + timedelta(seconds=1)).isoformat()
        window = ["reconcile", "--since", START.isoformat(), "--until", until]
        settled = runner.invoke(linking_cli.app, window)
        assert settled.exit_code == 0, settled.output
        assert "1 posted" in settled.output
        creds = (world.rt.settings.bank_client_id, world.rt.settings.bank_client_secret)
        world.bank.post(
            f"/v1/links/{links(world)[0].bank_link_id}/debits",
            json={"amount": 700},
            auth=creds,
            headers={"Idempotency-Key": "outside"},
        )
        differs = runner.invoke(linking_cli.app, window)
        assert differs.exit_code == 1 and "unknown_to_wallet" in differs.output
        naive = runner.invoke(
            linking_cli.app, ["reconcile", "--since", "2026-03-01T00:00", "--until", until]
        )
        assert naive.exit_code == 1 and "time zone" in naive.output


class TestServiceValidation:
    def test_malformed_details_at_the_service(self, world: World) -> None:
        from kouza.linking.errors import InvalidBankDetails
        from kouza.linking.service import linking

        policy_2019(world)
        person = email_customer(world)
        with pytest.raises(InvalidBankDetails), world.rt.db.unit_of_work() as session:
            linking.link_legacy(
                session,
                user=person.user,
                wallet_id=person.wallet.id,
                bank_code=LEGACY_BANK,
                branch="100",
                account_type="ordinary",
                account_number="12-4567",
                pin="4321",
                holder_name="ﾔﾏﾀﾞ ﾀﾛｳ",
                ip="203.0.113.1",
            )
        assert links(world) == [] and world.transport.forwarded == []
