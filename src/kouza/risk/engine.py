"""The risk engine: judge an event against the rule set, then remember it.

:meth:`RiskEngine.assess` evaluates every rule that applies to the event type against the
features *before* the event (history), decides, then records the event so that later events see
it. The decision is the most severe of: the outcomes named by fired rules, and the outcome the
summed score reaches in the thresholds. Shadow rules are evaluated and reported but count for
neither. Every decision carries the rules that fired and the feature values their conditions
read, so it can be stored, explained and backtested.

The engine does not care where a score comes from: a model is registered by name and read in a
rule with ``model("name")`` like any other feature. A *learned* model (:class:`LearnedScorer`,
e.g. :mod:`kouza.risk.learned`) needs the history too, so the engine scores it once per decision
from the same store the rules read, registers that score under the model's name for the rules,
and puts the score and its largest feature contributions on the decision (for operators). It
changes nothing unless a rule reads it: until then it runs in shadow.

A *candidate* rule set can sit beside the live one (:attr:`RiskEngine.candidate`): every event
is also judged by it, over the same features at the same moment (before the event is recorded,
with the same model score), and the decision carries the candidate's verdict
(:class:`CandidateVerdict`) — but only the live rules decide. That is how a new rule set's
friction and catch are measured on live traffic before it is published.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

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
class Contribution:
    """How much one feature moved a learned model's score (log-odds), and its value."""

    feature: str
    value: float | str | None
    contribution: float


@dataclass(frozen=True)
class ModelVerdict:
    """A learned model's score on one event, with the features that moved it most."""

    version: str
    score: float
    top: tuple[Contribution, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """What is stored on the decision and shown to operators (never to customers)."""
        return {
            "version": self.version,
            "score": round(self.score, 6),
            "top": [
                {"feature": c.feature, "value": c.value, "contribution": round(c.contribution, 6)}
                for c in self.top
            ],
        }


@dataclass(frozen=True)
class CandidateVerdict:
    """What the candidate rule set would have decided (never enforced)."""

    version: str
    outcome: Outcome
    score: int
    fired: tuple[str, ...] = ()
    """Ids of the candidate's rules that fired (its shadow rules included)."""

    def to_json(self) -> dict[str, Any]:
        """What is stored on the decision and shown to operators (never to customers)."""
        return {
            "version": self.version,
            "outcome": self.outcome.value,
            "score": self.score,
            "fired": list(self.fired),
        }


class LearnedScorer(Protocol):
    """A model that scores an event from the history before it (the engine's store)."""

    name: str
    """What rules call it: ``model("risk")``."""
    version: str
    reads: Mapping[str, timedelta | None]
    """Dimension → longest window it reads (``None``: all), for the shared store's one read."""

    def assess(self, event: RiskEvent, store: FeatureStore) -> ModelVerdict: ...


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
    model: ModelVerdict | None = None
    """The learned model's verdict when one is loaded (operators only)."""
    candidate: CandidateVerdict | None = None
    """The candidate rule set's verdict when one is set (operators only; never enforced)."""

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
        learned: LearnedScorer | None = None,
        candidate: RuleSet | None = None,
    ) -> None:
        self.rules = rules
        self.candidate = candidate
        self.store = store if store is not None else InMemoryFeatureStore()
        self.models = dict(models or {})
        self.learned = learned
        self.published_id: int | None = None
        """The ``risk_rule_sets`` record the live rules came from (None: a file or the default)."""
        self.published_checked_at = float("-inf")
        """When (monotonic seconds) this process last looked for a newer published rule set."""
        self._lock = threading.Lock()

    def replace_rules(self, rules: RuleSet) -> None:
        """Switch to a new (already validated) rule set at once."""
        self.rules = rules

    def replace_candidate(self, candidate: RuleSet | None) -> None:
        """Set (an already validated) candidate rule set beside the live one, or remove it."""
        self.candidate = candidate

    def assess(self, event: RiskEvent) -> Decision:
        """Decide about ``event`` from what came before it, then record it."""
        with self._lock:
            decision = self.evaluate(event)
            self.store.record(event)
        return decision

    def evaluate(self, event: RiskEvent) -> Decision:
        """Decide without recording (what-if)."""
        rules, candidate = self.rules, self.candidate
        models, verdict = self.models, None
        if self.learned is not None:
            verdict = self.learned.assess(event, self.store)
            score_ = verdict.score
            models = {**models, self.learned.name: lambda _event: score_}
        outcome, score, fired = judge(rules, event, self.store, models)
        shadowed = None
        if candidate is not None:
            # the same store and model score, before the event is recorded: only the rules differ
            c_outcome, c_score, c_fired = judge(candidate, event, self.store, models)
            shadowed = CandidateVerdict(
                candidate.version, c_outcome, c_score, tuple(rule.id for rule in c_fired)
            )
        return Decision(
            event=event,
            outcome=outcome,
            score=score,
            rule_set_version=rules.version,
            fired=tuple(fired),
            model=verdict,
            candidate=shadowed,
        )


def judge(
    rules: RuleSet, event: RiskEvent, store: FeatureStore, models: dict[str, Model]
) -> tuple[Outcome, int, list[FiredRule]]:
    """``rules``' outcome, score and fired rules for ``event`` over the history in ``store``."""
    fired = []
    for rule in rules.for_event(event.type):
        ctx = Context.for_event(event, store, models)
        if rule.condition(ctx):
            fired.append(FiredRule(rule.id, rule.score, rule.outcome, rule.shadow, dict(ctx.seen)))
    enforced = [rule for rule in fired if not rule.shadow]
    score = sum(rule.score for rule in enforced)
    outcomes = [rule.outcome for rule in enforced if rule.outcome is not None]
    return most_severe([*outcomes, rules.outcome_for_score(score)]), score, fired


def backtest(
    rules: RuleSet, events: Iterable[RiskEvent], models: dict[str, Model] | None = None
) -> list[Decision]:
    """Replay ``events`` (in time order) through a fresh engine; nothing is acted on."""
    engine = RiskEngine(rules, InMemoryFeatureStore(), models)
    return [engine.assess(event) for event in sorted(events, key=lambda e: e.at)]
