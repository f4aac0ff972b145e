"""Scenario files: the shipped ones load; mistakes are refused with the field and the reason."""

from __future__ import annotations

import copy
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from kouza.kit import zengin
from kouza.risk.service import shipped_rule_set
from kouza.sim.profiles import (
    PROFILES,
    RULE_GROUPS,
    DefenceProfile,
    TopUpCap,
    ablation_profiles,
)
from kouza.sim.scenario import ScenarioError, load_scenario, parse_scenario

SHIPPED = Path(__file__).resolve().parents[2] / "src/kouza/sim/scenarios/docomo-2020.yaml"


def _base() -> dict[str, Any]:
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_shipped_scenario_loads() -> None:
    scenario = load_scenario("docomo-2020")
    assert (scenario.name, scenario.days, len(scenario.banks)) == ("docomo-2020", 366, 35)
    assert scenario.defences == ["legacy-2019", "docomo-2020-10", "jba-2020", "kouza"]
    assert {a.strategy for a in scenario.attackers} == {
        "leaked_credentials",
        "reverse_brute_force",
        "phishing",
        "mule",
        "low_and_slow",
    }


def test_profiles() -> None:
    assert PROFILES["legacy-2019"].topup_cap is TopUpCap.CALENDAR_MONTH
    assert PROFILES["kouza"].risk_rules == "shipped"
    assert PROFILES["jba-2020"].banks_require_oauth


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["banks"][0].update(code="125"), "banks.0.code"),
        (lambda d: d["banks"].append(dict(d["banks"][0])), "bank codes must be unique"),
        (lambda d: d["attackers"][0].update(victims=0), "attackers.0.leaked_credentials.victims"),
        (lambda d: d["attackers"][0].update(strategy="telepathy"), "attackers.0"),
        (lambda d: d["attackers"][0].update(banks=["9999"]), "targets unknown banks ['9999']"),
        (lambda d: d.update(defences=["magic"]), "unknown defence profiles ['magic']"),
        (lambda d: d.update(start="2019-10-01T00:00:00"), "start needs a timezone"),
        (lambda d: d["population"]["categories"].update(casino=0.1), "without merchants"),
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d["population"].update(wallet_share=1.5), "population.wallet_share"),
    ],
)
def test_mistakes_are_refused(change: Any, expected: str) -> None:
    data = copy.deepcopy(_base())
    change(data)
    with pytest.raises(ScenarioError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(data)


def test_unknown_scenario_name() -> None:
    with pytest.raises(ScenarioError, match="no scenario file"):
        load_scenario("atlantis-2031")


def test_toml(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text("""
name = "tiny"
seed = 1
start = 2020-01-01T00:00:00+09:00
days = 3
defences = ["kouza"]
merchants = { tobacco = 1 }
[[banks]]
code = "0125"
name = "七十七銀行"
profile = "legacy_pin"
customers = 10
[population]
wallet_share = 0.5
categories = { tobacco = 1.0 }
""")
    assert load_scenario(str(path)).name == "tiny"


class TestProfilesClaimOnlyWhatTheyDo:
    """A defence profile switch must change what the real services do. There was a
    ``reverify_existing_links`` switch that nothing read: it is gone, and no profile claims a
    re-verification of existing links."""

    def test_every_shipped_rule_is_in_exactly_one_ablation_group(self) -> None:
        grouped = [rule for rules in RULE_GROUPS.values() for rule in rules]
        assert sorted(grouped) == sorted(rule.id for rule in shipped_rule_set().rules)

    def test_no_unapplied_reverification_switch(self) -> None:
        assert "reverify_existing_links" not in {f.name for f in fields(DefenceProfile)}
        for made in [*PROFILES.values(), *ablation_profiles()]:
            assert "re-verification of existing links" not in made.description


class TestRealBankCodes:
    """Scenarios name real banks: a code missing from the Zengin list, or a name the list does
    not give that code, is refused; every shipped scenario passes."""

    def _banks(self, banks: list[dict[str, Any]]) -> dict[str, Any]:
        raw = _base()
        raw["banks"] = banks
        for attacker in raw.get("attackers", []):
            attacker["banks"] = [banks[0]["code"]]
        return raw

    @pytest.mark.parametrize(
        ("bank", "message"),
        [
            ({"code": "0999", "name": "地方銀行A"}, "bank 0999 is not in the Zengin list"),
            ({"code": "0125", "name": "中国銀行"}, "bank 0125 is 七十七 in the Zengin list"),
        ],
    )
    def test_unknown_code_or_wrong_name_refused(self, bank: dict[str, Any], message: str) -> None:
        raw = self._banks([bank | {"profile": "legacy_pin", "customers": 10}])
        with pytest.raises(ScenarioError, match=message):
            parse_scenario(raw, source="t.yaml")

    def test_full_width_and_suffix_are_the_same_name(self) -> None:
        raw = self._banks(
            [{"code": "0005", "name": "三菱ＵＦＪ銀行", "profile": "oauth", "customers": 10}]
        )
        assert parse_scenario(raw, source="t.yaml").banks[0].code == "0005"

    def test_shipped_scenarios_use_real_codes_and_branches(self) -> None:
        shipped = Path(__file__).resolve().parents[2] / "src/kouza/sim/scenarios"
        for path in sorted(shipped.glob("*.yaml")):
            for bank in load_scenario(str(path)).banks:
                home = zengin.branch(bank.code, zengin.home_branch(bank.code))
                assert home.bank_code == bank.code
