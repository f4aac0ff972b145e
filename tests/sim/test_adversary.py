"""The post-2020 attackers act through the real code: each strategy robs the 2019 design, the
2020 profiles each lose to the attack they did not foresee, and the test names the control that
stops each strategy under ``kouza`` — or, honestly, that nothing does (issue 14).

Runs ``tests/sim/scenarios/adversaries.yaml``: two banks, 14 days, a few victims per strategy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kouza.sim.driver import Runner
from kouza.sim.results import AttackerResult, SimulationResult
from kouza.sim.run import simulate
from kouza.sim.scenario import load_scenario
from tests.sim.support import ledger_loss

SCENARIO = Path(__file__).parent / "scenarios" / "adversaries.yaml"
NEW = {"phishing_relay", "account_takeover", "verified_mule_market", "authorised_push"}


EVENTS: list[dict[str, object]] = []
CUSTOMER_WALLETS: dict[str, set[str]] = {}


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[SimulationResult, dict[str, int], dict[str, dict[int, int]]]:
    from_ledger: dict[str, int] = {}
    at_bank: dict[str, dict[int, int]] = {}

    def inspect(runner: Runner) -> None:
        from_ledger[runner.profile.name] = ledger_loss(runner)
        at_bank[runner.profile.name] = runner.bank_losses()
        CUSTOMER_WALLETS[runner.profile.name] = {str(w) for w in runner.owner_of_wallet}

    events = tmp_path_factory.mktemp("events") / "events.jsonl"
    result = simulate(load_scenario(str(SCENARIO)), inspect=inspect, export_events=events)
    EVENTS.extend(json.loads(line) for line in events.read_text(encoding="utf-8").splitlines())
    return result, from_ledger, at_bank


def _attackers(result: SimulationResult, profile: str) -> dict[str, AttackerResult]:
    found = next(p for p in result.profiles if p.profile == profile)
    return {attacker.name: attacker for attacker in found.attackers}


def test_every_new_strategy_robs_the_2019_design(
    run: tuple[SimulationResult, dict[str, int], dict[str, dict[int, int]]],
) -> None:
    result, _, _ = run
    legacy = _attackers(result, "legacy-2019")
    assert {attacker.strategy for attacker in legacy.values()} == NEW
    for attacker in legacy.values():
        assert attacker.loss_yen > 0, attacker
        assert attacker.succeeded > 0, attacker


def test_losses_agree_with_the_ledger_and_the_bank(
    run: tuple[SimulationResult, dict[str, int], dict[str, dict[int, int]]],
) -> None:
    result, from_ledger, at_bank = run
    for profile in result.profiles:
        assert profile.loss_yen == from_ledger[profile.profile], profile.profile
        assert profile.loss_yen == sum(a.loss_yen for a in profile.attackers)
        # what went through links attackers made equals the bank's own transfer records
        linked = sum(
            a.loss_yen
            for a in profile.attackers
            if a.name in ("relay-fresh", "mules", "mules-kana")
        )
        assert sum(at_bank[profile.profile].values()) == linked, profile.profile


def test_each_2020_profile_loses_to_what_it_did_not_foresee(
    run: tuple[SimulationResult, dict[str, int], dict[str, dict[int, int]]],
) -> None:
    result, _, _ = run
    docomo = _attackers(result, "docomo-2020-10")
    # eKYC before linking stops a relay into a fresh wallet …
    assert docomo["relay-fresh"].loss_yen == 0
    assert "verification_level_required" in docomo["relay-fresh"].refusals
    # … and the bank compares the mule's own card (name, birth date), even when the mule typed
    # the victim's kana at eKYC: a declared reading is never enough alone (ADR 0023)
    for name in ("mules", "mules-kana"):
        assert docomo[name].loss_yen == 0
        assert "bank_link_refused" in docomo[name].refusals
    # takeovers of customers' wallets need no new link at all
    assert docomo["stuffing"].loss_yen > 0

    jba = _attackers(result, "jba-2020")
    # internet banking + OTP at linking: the legacy form is gone, so are the PIN-holding mules …
    assert jba["mules"].loss_yen == 0 and jba["mules-kana"].loss_yen == 0
    assert "legacy_form_not_offered" in jba["mules"].refusals
    # … but a phishing page that relays the password and the live code links anyway
    assert jba["relay-fresh"].loss_yen > 0


def test_what_stops_each_strategy_under_kouza(
    run: tuple[SimulationResult, dict[str, int], dict[str, dict[int, int]]],
) -> None:
    result, _, _ = run
    kouza = _attackers(result, "kouza")
    legacy = _attackers(result, "legacy-2019")
    # stopped: a relay into a fresh wallet cannot pass eKYC as the victim
    assert kouza["relay-fresh"].loss_yen == 0
    assert "verification_level_required" in kouza["relay-fresh"].refusals
    # stopped: verified mules need the legacy form, which gives them at most a restricted link
    # (ADR 0032), and the bank compares the name and birth date of the mule's own card
    for name in ("mules", "mules-kana"):
        assert kouza[name].loss_yen == 0
        assert "bank_link_refused" in kouza[name].refusals, kouza[name].refusals
        assert "legacy_bank_not_accepted" not in kouza[name].refusals
    # stopped (ADR 0021): with a reused password alone, from a device without the customer's
    # key and without their SMS, nothing leaves the wallet
    assert kouza["stuffing"].loss_yen == 0 < legacy["stuffing"].loss_yen
    assert "step_up_required" in kouza["stuffing"].refusals
    # stopped since issue 18 (ADR 0033): a taker-over who also holds the SMS (a relayed live
    # code, a swapped SIM) registers a key of its own, but a key added by SMS alone moves no
    # money out for 72 hours without a person; a customer persuaded to send money to a
    # days-old wallet is held for review
    for name in ("relay-own", "push"):
        assert kouza[name].loss_yen == 0 < legacy[name].loss_yen, name
    assert kouza["relay-own"].stopped_by_rule.get("money-out-from-device-added-by-sms")
    assert kouza["push"].stopped_by_rule.get("first-transfer-to-mule-like-wallet")
    held = sum(
        kouza[name].refusals.get("held_for_review", 0)
        for name in ("relay-own", "stuffing", "sim-swap", "push")
    )
    assert held > 0
    total = next(p for p in result.profiles if p.profile == "kouza").loss_yen
    assert total < next(p for p in result.profiles if p.profile == "legacy-2019").loss_yen


def test_friction_is_counted_with_its_denominators(
    run: tuple[SimulationResult, dict[str, int], dict[str, dict[int, int]]],
) -> None:
    result, _, _ = run
    kouza = next(p for p in result.profiles if p.profile == "kouza")
    friction = kouza.friction()
    assert friction["honest_active_users"] == kouza.honest_active_users > 0
    assert friction["honest_link_attempters"] > 0
    # customers of the legacy-form bank link restricted under kouza (ADR 0032): a refusal
    # has another cause now, and their first top-ups wait 48 h (delayed money, no review)
    refused = friction["per_user"].get(
        "link_refusal", {"users": 0, "of": kouza.honest_link_attempters}
    )
    assert refused["users"] == kouza.honest_link_refusals
    assert refused["of"] == kouza.honest_link_attempters
    assert friction["per_user"]["delayed_money"]["users"] > 0
    stepped = friction["per_user"]["step_up"]
    assert stepped["of"] == friction["honest_active_users"]
    assert stepped["users"] <= friction["per_event"]["step_up"]["count"] == kouza.honest_step_ups
    # every honest top-up at a bank is a notice to its holder (e-mail under kouza)
    assert friction["per_event"]["holder_notice"]["count"] > 0


def test_exported_events_label_what_attackers_did_in_customers_wallets(
    run: tuple[SimulationResult, dict[str, int], dict[str, dict[int, int]]],
) -> None:
    """A takeover acts in an honest customer's wallet: its events are labelled with the
    attacker (the learned model must not learn them as honest), the customer's own are not."""
    legacy = [e for e in EVENTS if e["attributes"]["sim_profile"] == "legacy-2019"]  # type: ignore[index]
    customers = CUSTOMER_WALLETS["legacy-2019"]
    in_customers = [e for e in legacy if e.get("wallet") in customers]
    labels = {e["label"] for e in in_customers}
    assert "honest" in labels
    assert {"attack:stuffing", "attack:relay-own"} <= labels
    # the persuaded customer's own transfers to the mule carry the attacker's label too
    pushed = [e for e in in_customers if e["label"] == "attack:push"]
    assert pushed and all(e["type"] in ("transfer", "topup") for e in pushed)
