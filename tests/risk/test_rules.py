"""Rule files: loading, refusal with line and reason, outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kouza.risk.rules import Outcome, RuleSetError, load_rule_set, most_severe, parse_rule_set

SHIPPED = Path(__file__).resolve().parents[2] / "src/kouza/risk/rulesets/default.yaml"

GOOD = """
version: "t1"
thresholds: {review: 50}
rules:
  - id: big
    events: [topup]
    when: event.amount >= 100000
    score: 50
"""


def test_shipped_rule_set_loads() -> None:
    rules = load_rule_set(SHIPPED)
    assert rules.version == "2026-12-03.1"
    assert len(rules.rules) == 13


def test_parse_and_thresholds() -> None:
    rules = parse_rule_set(GOOD)
    assert [r.id for r in rules.rules] == ["big"]
    assert rules.outcome_for_score(49) is Outcome.ALLOW
    assert rules.outcome_for_score(50) is Outcome.REVIEW


def test_most_severe() -> None:
    assert most_severe([Outcome.STEP_UP, Outcome.LOCK, Outcome.REVIEW]) is Outcome.LOCK
    assert most_severe([]) is Outcome.ALLOW


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [", "line"),
        ("version: 1\n", "expected a mapping with a 'rules' list"),
        ("rules:\n  - id: a\n    events: [topup]\n", "line 2 (a): every rule needs a 'when'"),
        (
            "rules:\n  - id: a\n    events: [nope]\n    when: 'true'\n",
            "line 2 (a): 'events' must list",
        ),
        ("rules:\n  - events: [topup]\n    when: 'true'\n", "line 2: every rule needs an 'id'"),
        (
            "rules:\n  - id: a\n    events: [topup]\n    when: os.system('x')\n",
            "line 4 (a): 'when': calling anything",
        ),
        (
            "rules:\n  - id: a\n    events: [topup]\n    when: count(wallet, '1 week') > 1\n",
            "not a window",
        ),
        (
            "rules:\n  - id: a\n    events: [topup]\n    when: 'true'\n    outcome: nuke\n",
            "'outcome' must be one of",
        ),
        ("rules:\n  - id: a\n    events: [topup]\n    when: 'true'\n    score: 1.5\n", "'score'"),
        (
            "rules:\n  - id: a\n    events: [topup]\n    when: 'true'\n    colour: red\n",
            "unknown keys",
        ),
        (
            "rules:\n  - {id: a, events: [topup], when: 'true'}\n  - {id: a, events: [topup], "
            "when: 'true'}\n",
            "duplicate rule ids: a",
        ),
    ],
)
def test_bad_files_refused_with_line_and_reason(text: str, expected: str) -> None:
    with pytest.raises(RuleSetError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_rule_set(text)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="cannot read"):
        load_rule_set(tmp_path / "missing.yaml")


class TestExpressionLimitsInFiles:
    """A rule whose expression breaks a limit is refused on load, naming the file's line."""

    def _refused(self, when: str) -> str:
        text = (
            f"rules:\n  - id: ok\n    events: [topup]\n    when: 'true'\n"
            f"  - id: bad\n    events: [topup]\n    when: {when}\n"
        )
        with pytest.raises(RuleSetError) as caught:
            parse_rule_set(text, source="r.yaml")
        return caught.value.message

    def test_deep_nesting(self) -> None:
        assert self._refused("not " * 900 + "true") == (
            "r.yaml: line 7 (bad): 'when': the expression is nested more than 40 levels deep "
            "(column 161)"
        )

    def test_long_sum(self) -> None:
        assert self._refused("1" + " + 1" * 5000 + " > 0").startswith(
            "r.yaml: line 7 (bad): 'when': the expression is longer than 4000 characters"
        )
        assert self._refused("1" + " + 1" * 60 + " > 0") == (
            "r.yaml: line 7 (bad): 'when': the expression is nested more than 40 levels deep "
            "(column 89)"
        )

    def test_string_repetition(self) -> None:
        assert self._refused("\"'a' * 1000000000 == event.holder_name\"") == (
            "r.yaml: line 7 (bad): 'when': arithmetic on a string or a list is not allowed "
            "(column 1)"
        )

    def test_line_inside_a_literal_block(self) -> None:
        when = "|\n      (event.amount > 1 and\n       event.nope.x == 1)\n"
        assert self._refused(when) == (
            "r.yaml: line 9 (bad): 'when': attribute access other than event.<field> is not "
            "allowed (column 2)"
        )

    def test_deeply_nested_yaml(self) -> None:
        with pytest.raises(RuleSetError, match="nested too deeply"):
            parse_rule_set("rules: " + "[" * 5000 + "]" * 5000)
