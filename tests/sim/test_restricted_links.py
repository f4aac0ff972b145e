"""Restricted links in the simulator (ADR 0032): under ``kouza`` an honest customer of a bank
that only has the legacy PIN form links (restricted) and waits 48 h for the first top-ups;
an attacker with the same bank's leaked PINs still links nothing, because the bank compares
the name and birth date on the attacker's own card. ``kouza`` without the layer refuses them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from kouza.linking.models import BankLink, BankMovementReview
from kouza.sim.driver import Runner
from kouza.sim.results import SimulationResult
from kouza.sim.run import simulate
from kouza.sim.scenario import load_scenario

TINY = str(Path(__file__).with_name("tiny.yaml"))
LEGACY_BANK = "0125"  # legacy_pin in tiny.yaml
WITHOUT = "kouza-without-restricted-legacy-links"


class Seen:
    """What each world's wallet database holds at the end of the run."""

    def __init__(self) -> None:
        self.links: dict[str, list[tuple[str, bool, str]]] = {}
        """Profile → (bank, restricted, whose: honest / attacker) of every link made."""
        self.probation_holds: dict[str, list[str]] = {}
        """Profile → the status of every probation hold."""

    def __call__(self, runner: Runner) -> None:
        with runner.rt.db.session() as session:
            rows = session.execute(
                select(BankLink.bank_code, BankLink.restricted, BankLink.wallet_id)
            ).all()
            holds = session.scalars(
                select(BankMovementReview.status).where(BankMovementReview.release_at.is_not(None))
            ).all()
        name = runner.profile.name
        self.links[name] = [
            (bank, restricted, "attacker" if wallet in runner.attack_accounts else "honest")
            for bank, restricted, wallet in rows
        ]
        self.probation_holds[name] = list(holds)


@pytest.fixture(scope="module")
def run() -> tuple[SimulationResult, Seen]:
    seen = Seen()
    result = simulate(load_scenario(TINY), profiles=["kouza", WITHOUT], inspect=seen)
    return result, seen


def test_honest_legacy_bank_customers_link_restricted(run: tuple[SimulationResult, Seen]) -> None:
    result, seen = run
    kouza, without = result.profiles
    legacy = [link for link in seen.links["kouza"] if link[0] == LEGACY_BANK]
    assert legacy and all(restricted for _, restricted, _ in legacy)
    assert {whose for _, _, whose in legacy} == {"honest"}
    assert not [link for link in seen.links[WITHOUT] if link[0] == LEGACY_BANK]
    assert without.honest_link_refusals > kouza.honest_link_refusals
    assert kouza.honest_link_attempters == without.honest_link_attempters


def test_their_first_top_ups_are_delayed_money_not_reviews(
    run: tuple[SimulationResult, Seen],
) -> None:
    result, seen = run
    kouza = result.profiles[0]
    holds = seen.probation_holds["kouza"]
    assert holds and kouza.friction_events.get("delayed_money", 0) >= len(holds)
    assert "released" in holds
    # the hourly job releases a 48-hour hold within the hour after it is due
    assert any(48 <= hours <= 49 for hours in kouza.time_to_money_hours)
    assert not seen.probation_holds[WITHOUT]


def test_attackers_with_leaked_pins_still_link_nothing(
    run: tuple[SimulationResult, Seen],
) -> None:
    result, seen = run
    kouza = result.profiles[0]
    assert not [link for link in seen.links["kouza"] if link[2] == "attacker"]
    assert kouza.loss_yen == 0 and kouza.victims == 0
    for attacker in kouza.attackers:
        assert attacker.stages["linked"] == 0, attacker
