"""Rule sets: rules as data (YAML), validated on load, versioned.

A rule set file::

    version: "2026-11-22.1"
    thresholds: {step_up: 30, review: 60, block: 90}   # optional: summed score → outcome
    rules:
      - id: link-soon-after-signup
        description: A bank link within a day of opening the wallet.
        events: [link_attempt]             # event types the rule looks at
        when: age(wallet) < hours(24)      # see kouza.risk.language
        score: 30                          # optional
        outcome: step_up                   # optional: allow|step_up|review|block|lock
        shadow: false                      # optional: recorded, never enforced

Loading refuses a bad file as a whole with the line and the reason (:class:`RuleSetError`), so
the caller keeps the rule set that was active before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from kouza.errors import BadRequest
from kouza.risk.events import EventType
from kouza.risk.language import Compiled, ExpressionError, compile_expression, validate_windows


class Outcome(StrEnum):
    """What a decision tells the caller to do; later members are more severe."""

    ALLOW = "allow"
    """Go ahead."""
    STEP_UP = "step_up"
    """Ask for more proof first (SMS OTP, or eKYC again)."""
    REVIEW = "review"
    """Hold the funds until a person has looked."""
    BLOCK = "block"
    """Refuse this action."""
    LOCK = "lock"
    """Refuse, freeze the wallet, notify the bank, open a case."""

    @property
    def severity(self) -> int:
        return list(Outcome).index(self)


def most_severe(outcomes: list[Outcome]) -> Outcome:
    """The most severe of ``outcomes`` (``allow`` if none)."""
    return max(outcomes, key=lambda o: o.severity, default=Outcome.ALLOW)


class RuleSetError(BadRequest):
    """A rule file that cannot be loaded; names the line and the reason."""

    code = "invalid_rule_set"


@dataclass(frozen=True)
class Rule:
    """One compiled rule."""

    id: str
    description: str
    on: frozenset[EventType]
    when: str
    condition: Compiled
    score: int
    outcome: Outcome | None
    shadow: bool
    line: int


@dataclass(frozen=True)
class RuleSet:
    """A versioned list of rules and the score thresholds."""

    version: str
    rules: tuple[Rule, ...]
    thresholds: tuple[tuple[int, Outcome], ...]
    text: str = field(default="", repr=False, compare=False)
    """The YAML it was compiled from (shown, compared and recorded by rule-set versions)."""

    def for_event(self, event_type: EventType) -> list[Rule]:
        return [rule for rule in self.rules if event_type in rule.on]

    def outcome_for_score(self, score: int) -> Outcome:
        reached = [outcome for floor, outcome in self.thresholds if score >= floor]
        return most_severe(reached)


def load_rule_set(path: Path) -> RuleSet:
    """Load and compile a rule file; :class:`RuleSetError` if anything in it is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleSetError(f"{path}: cannot read: {exc}") from None
    return parse_rule_set(text, source=str(path))


def parse_rule_set(text: str, *, source: str = "<rules>") -> RuleSet:
    """Compile a rule set from YAML text."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise RuleSetError(f"{source}: {line}not valid YAML") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise RuleSetError(f"{source}: the YAML is nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleSetError(f"{source}: line 1: expected a mapping with a 'rules' list")
    lines = _rule_lines(root)
    rules = tuple(
        _rule(raw, lines[i] if i < len(lines) else _Lines(1, None), source)
        for i, raw in enumerate(data["rules"])
    )
    ids = [rule.id for rule in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RuleSetError(f"{source}: duplicate rule ids: {', '.join(duplicates)}")
    return RuleSet(
        version=str(data.get("version", "unversioned")),
        rules=rules,
        thresholds=_thresholds(data.get("thresholds") or {}, source),
        text=text,
    )


@dataclass(frozen=True)
class _Lines:
    """Where a rule starts in its file, and its ``when`` value's node (if it is a mapping)."""

    start: int
    when: yaml.Node | None

    def of_expression(self, line_in_expression: int) -> int:
        """The file line of a line of the ``when`` expression."""
        node = self.when
        if node is None:
            return self.start
        first = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode) and node.style == "|":
            return first + line_in_expression  # a literal block starts on the next line
        return first  # a one-line or folded scalar: the expression's lines are joined


def _rule_lines(root: Any) -> list[_Lines]:
    for key, value in getattr(root, "value", []):
        if getattr(key, "value", None) == "rules" and isinstance(value, yaml.SequenceNode):
            return [_Lines(item.start_mark.line + 1, _when_node(item)) for item in value.value]
    return []


def _when_node(item: yaml.Node) -> yaml.Node | None:
    if not isinstance(item, yaml.MappingNode):
        return None
    return next((value for key, value in item.value if getattr(key, "value", None) == "when"), None)


def _rule(raw: Any, lines: _Lines, source: str) -> Rule:
    line = lines.start
    where = f"{source}: line {line}"
    if not isinstance(raw, dict):
        raise RuleSetError(f"{where}: a rule is a mapping")
    unknown = set(raw) - {"id", "description", "events", "when", "score", "outcome", "shadow"}
    if unknown:
        raise RuleSetError(f"{where}: unknown keys {sorted(map(str, unknown))}")
    rule_id, when = raw.get("id"), raw.get("when")
    if not isinstance(rule_id, str) or not rule_id:
        raise RuleSetError(f"{where}: every rule needs an 'id'")
    if not isinstance(when, str) or not when.strip():
        raise RuleSetError(f"{where} ({rule_id}): every rule needs a 'when' expression")
    try:
        condition = compile_expression(when)
        validate_windows(when)
    except ExpressionError as exc:
        at = f"{source}: line {lines.of_expression(exc.line)}"
        raise RuleSetError(f"{at} ({rule_id}): 'when': {exc.message}") from None
    return Rule(
        id=rule_id,
        description=str(raw.get("description", "")),
        on=_event_types(raw.get("events"), where, rule_id),
        when=when.strip(),
        condition=condition,
        score=_score(raw.get("score", 0), where, rule_id),
        outcome=_outcome(raw.get("outcome"), where, rule_id),
        shadow=bool(raw.get("shadow", False)),
        line=line,
    )


def _event_types(raw: Any, where: str, rule_id: str) -> frozenset[EventType]:
    names = raw if isinstance(raw, list) else [raw]
    try:
        return frozenset(EventType(name) for name in names)
    except ValueError:
        valid = ", ".join(t.value for t in EventType)
        raise RuleSetError(
            f"{where} ({rule_id}): 'events' must list event types ({valid})"
        ) from None


def _score(raw: Any, where: str, rule_id: str) -> int:
    if type(raw) is not int or not -1000 <= raw <= 1000:
        raise RuleSetError(f"{where} ({rule_id}): 'score' is an integer from -1000 to 1000")
    return raw


def _outcome(raw: Any, where: str, rule_id: str) -> Outcome | None:
    if raw is None:
        return None
    try:
        return Outcome(raw)
    except ValueError:
        valid = ", ".join(o.value for o in Outcome)
        raise RuleSetError(f"{where} ({rule_id}): 'outcome' must be one of {valid}") from None


def _thresholds(raw: Any, source: str) -> tuple[tuple[int, Outcome], ...]:
    if not isinstance(raw, dict):
        raise RuleSetError(f"{source}: 'thresholds' maps outcomes to scores")
    try:
        pairs = [(int(score), Outcome(name)) for name, score in raw.items()]
    except (TypeError, ValueError):
        raise RuleSetError(f"{source}: 'thresholds' maps outcomes to integer scores") from None
    return tuple(sorted(pairs))
