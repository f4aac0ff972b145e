"""The risk engine: judge an event against the rule set, then remember it.

:meth:`RiskEngine.assess` evaluates every rule that applies to the event type against the
features *before* the event (history), decides, then records the event so that later events see
it. The decision is the most severe of: the outcomes named by fired rules, and the outcome the
summed score reaches in the thresholds. Shadow rules are evaluated and reported but count for
neither. Every decision carries the rules that fired and the feature values their conditions
read, so it can be stored, explained and backtested.

The engine does not care where a score comes from: a learned model is registered by name and
read in a rule with ``model("name")`` like any other feature.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kouza.risk.events import RiskEvent
from kouza.risk.features import FeatureStore, InMemoryFeatureStore
from kouza.risk.language import Context, Model
from kouza.risk.rules import Outcome, RuleSet, most_severe


@dataclass(frozen=True)
class FiredRule:
    """A rule whose condition held."""

    id: str
    score: int
    outcome: Outcome | None
    shadow: bool
    features: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    """What the engine decided about one event."""

    event: RiskEvent
    outcome: Outcome
    score: int
    rule_set_version: str
    fired: tuple[FiredRule, ...] = field(default_factory=tuple)
    record_id: int | None = None
    """The stored decision's id, once stored: the reference a refused customer is given."""

    @property
    def enforced(self) -> tuple[FiredRule, ...]:
        return tuple(rule for rule in self.fired if not rule.shadow)

    @property
    def shadow(self) -> tuple[FiredRule, ...]:
        return tuple(rule for rule in self.fired if rule.shadow)


class RiskEngine:
    """Rules + feature store + models; thread-safe."""

    def __init__(
        self,
        rules: RuleSet,
        store: FeatureStore | None = None,
        models: dict[str, Model] | None = None,
    ) -> None:
        self.rules = rules
        self.store = store if store is not None else InMemoryFeatureStore()
        self.models = dict(models or {})
        self._lock = threading.Lock()

    def replace_rules(self, rules: RuleSet) -> None:
        """Switch to a new (already validated) rule set at once."""
        self.rules = rules

    def assess(self, event: RiskEvent) -> Decision:
        """Decide about ``event`` from what came before it, then record it."""
        with self._lock:
            decision = self.evaluate(event)
            self.store.record(event)
        return decision

    def evaluate(self, event: RiskEvent) -> Decision:
        """Decide without recording (what-if)."""
        rules = self.rules
        fired = []
        for rule in rules.for_event(event.type):
            ctx = Context.for_event(event, self.store, self.models)
            if rule.condition(ctx):
                fired.append(
                    FiredRule(rule.id, rule.score, rule.outcome, rule.shadow, dict(ctx.seen))
                )
        enforced = [rule for rule in fired if not rule.shadow]
        score = sum(rule.score for rule in enforced)
        outcomes = [rule.outcome for rule in enforced if rule.outcome is not None]
        outcome = most_severe([*outcomes, rules.outcome_for_score(score)])
        return Decision(
            event=event,
            outcome=outcome,
            score=score,
            rule_set_version=rules.version,
            fired=tuple(fired),
        )


def backtest(
    rules: RuleSet, events: Iterable[RiskEvent], models: dict[str, Model] | None = None
) -> list[Decision]:
    """Replay ``events`` (in time order) through a fresh engine; nothing is acted on."""
    engine = RiskEngine(rules, InMemoryFeatureStore(), models)
    return [engine.assess(event) for event in sorted(events, key=lambda e: e.at)]
