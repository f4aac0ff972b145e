"""What a rule set reads, so a shared feature store can fetch it in one round trip.

A feature function names a key (a dimension such as ``device``) and a window; the rule set is
data, so the keys and the longest window each event type can need are known before any event
arrives. :func:`plan_reads` walks every rule's expression once and returns, per event type, the
longest window per dimension (``None``: the key's whole history, for ``since``/``first`` or a
window that is not a literal). A store that serves reads over the network
(:class:`~kouza.risk.redis_store.RedisFeatureStore`) fetches exactly that per decision; anything
the plan cannot see (a key given as a computed value) is still answered, by a direct read.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType

from kouza.risk.events import EventType
from kouza.risk.features import DIMENSIONS
from kouza.risk.language import ExpressionError, parse_window
from kouza.risk.rules import RuleSet

_WINDOW_ARGUMENT = {"count": 1, "total": 1, "distinct": 2, "others": 2}
"""Position of the window argument of each windowed function."""
_WHOLE_HISTORY = frozenset({"since", "first"})

ReadPlan = Mapping[str, timedelta | None]
"""The reads one event type's rules need: dimension → longest window (``None``: all of it)."""
EMPTY_PLAN: ReadPlan = MappingProxyType({})


def plan_reads(rules: RuleSet) -> dict[EventType, ReadPlan]:
    """Per event type, the longest window each dimension is read over by ``rules``."""
    plans: dict[EventType, ReadPlan] = {}
    for event_type in EventType:
        windows: dict[str, timedelta | None] = {}
        for rule in rules.for_event(event_type):
            for dimension, window in reads_of(rule.when).items():
                windows[dimension] = (
                    _longer(windows[dimension], window) if (dimension in windows) else window
                )
        plans[event_type] = MappingProxyType(windows) if windows else EMPTY_PLAN
    return plans


def _longer(a: timedelta | None, b: timedelta | None) -> timedelta | None:
    return None if a is None or b is None else max(a, b)


def reads_of(expression: str) -> dict[str, timedelta | None]:
    """The dimensions ``expression`` reads and the longest window of each."""
    reads: dict[str, timedelta | None] = {}
    for node in ast.walk(ast.parse(expression.strip(), mode="eval")):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
            continue
        key = node.args[0]
        if not (isinstance(key, ast.Name) and key.id in DIMENSIONS):
            continue  # a computed key: read directly when the rule runs
        name = node.func.id
        if name in _WHOLE_HISTORY:
            window = None
        elif name in _WINDOW_ARGUMENT:
            window = _literal_window(node, _WINDOW_ARGUMENT[name])
        else:
            continue
        reads[key.id] = _longer(reads[key.id], window) if key.id in reads else window
    return reads


def _literal_window(call: ast.Call, position: int) -> timedelta | None:
    if len(call.args) <= position:
        return None
    node = call.args[position]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return parse_window(node.value)
        except ExpressionError:
            return None
    return None


def history_needed(rules: RuleSet, retention: timedelta) -> timedelta:
    """How far back ``rules`` can look: the longest literal window of any rule, or the whole
    ``retention`` when a rule reads a key's age, its last or first event of a type, or a
    window that is not a literal. What a restarted in-memory store must be warmed with."""
    longest = timedelta(0)
    for rule in rules.rules:
        for node in ast.walk(ast.parse(rule.when.strip(), mode="eval")):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            name = node.func.id
            if name in _WHOLE_HISTORY or name == "age":
                return retention
            if name in _WINDOW_ARGUMENT:
                window = _literal_window(node, _WINDOW_ARGUMENT[name])
                if window is None:
                    return retention
                longest = max(longest, window)
    return min(longest, retention)


class ReadPlanner:
    """Plans for the rule sets in use (the live one and a candidate beside it), computed once per
    rule set (rule sets are immutable)."""

    def __init__(self) -> None:
        # one tuple, replaced whole, so a thread never pairs one rule set with another's plans;
        # the two most recently planned rule sets are kept (live and candidate)
        self._cache: tuple[tuple[RuleSet, dict[EventType, ReadPlan]], ...] = ()

    def plan(self, rules: RuleSet, event_type: EventType) -> ReadPlan:
        """The plan of ``event_type`` under ``rules``."""
        cache = self._cache
        for cached_rules, plans in cache:
            if cached_rules is rules:
                return plans.get(event_type, EMPTY_PLAN)
        plans = plan_reads(rules)
        self._cache = ((rules, plans), *cache[:1])
        return plans.get(event_type, EMPTY_PLAN)


def merge(plan: ReadPlan, more: ReadPlan) -> ReadPlan:
    """Both plans' reads: per dimension the longer window (None, the whole history, wins)."""
    if not more:
        return plan
    merged = dict(plan)
    for dimension, window in more.items():
        merged[dimension] = _longer(merged[dimension], window) if dimension in merged else window
    return merged
