"""Backtesting rule sets on labelled events: what each rule costs honest people and what it
stops, in yen.

The simulator exports every event its worlds' risk engines saw, labelled ``honest`` or
``attack:<attacker>`` (``kouza simulate … --export-events``); several *worlds* (one per seed and
defence profile, ``attributes.sim_seed`` / ``sim_profile``) share one file and each is a history
of its own, so each is replayed through a fresh engine on its own (:func:`replay`). Events
recorded by a running kouza carry no label and form one world.

For each rule, :func:`rule_report` counts the events it fired on and the distinct people behind
them, honest and attack apart, and the **yen at stake**: for every attack wallet the rule fired
on, the money that wallet moved at or after the first event it fired on (top-ups, payments,
transfers, withdrawals) — what stopping the attack there could have saved. A rule whose honest
hits are many and whose yen at stake is nil costs friction and saves nothing. The same figures
for the rule set as a whole (a flag: an outcome of ``step_up`` or more) are what
``kouza risk compare`` (:mod:`kouza.risk.comparing`) puts side by side for several versions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kouza.risk.engine import Decision, LearnedScorer, RiskEngine
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.language import Model
from kouza.risk.rules import Outcome, RuleSet

MONEY = frozenset({EventType.TOPUP, EventType.PAYMENT, EventType.TRANSFER, EventType.WITHDRAWAL})
"""Event types that move money (their amounts are the yen at stake)."""
HONEST = "honest"
WORLD_ATTRIBUTES = ("sim_seed", "sim_profile", "sim_shard")
"""Attributes that name a simulated world; events without them form one world."""


@dataclass(frozen=True, slots=True)
class Labelled:
    """An event with its label (``honest``, ``attack:<name>`` or ``""`` when unknown) and the
    world it belongs to."""

    event: RiskEvent
    label: str = ""
    world: tuple[str, ...] = ()

    @property
    def attack(self) -> bool:
        return self.label.startswith("attack")

    @property
    def honest(self) -> bool:
        return self.label == HONEST


def parse_line(record: dict[str, Any]) -> Labelled:
    """One exported JSON record → :class:`Labelled` (ValueError if malformed)."""
    label = record.get("label", "")
    if not isinstance(label, str):
        raise ValueError("label must be a string")
    event = RiskEvent.from_json(record)
    world = tuple(str(event.attributes.get(name, "")) for name in WORLD_ATTRIBUTES)
    return Labelled(event, label, world if any(world) else ())


def read_labelled(path: Path) -> Iterator[Labelled]:
    """Labelled events of a JSON-lines file; ValueError naming the line when one is bad."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield parse_line(json.loads(line))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}: line {number}: {exc}") from None


def worlds(events: Iterable[Labelled]) -> dict[tuple[str, ...], list[Labelled]]:
    """Events by world, each world in time order (stable for equal times)."""
    by_world: dict[tuple[str, ...], list[Labelled]] = defaultdict(list)
    for item in events:
        by_world[item.world].append(item)
    return {
        world: sorted(items, key=lambda item: item.event.at)
        for world, items in sorted(by_world.items())
    }


def replay(
    rules: RuleSet,
    events: Iterable[Labelled],
    models: dict[str, Model] | None = None,
    learned: LearnedScorer | None = None,
) -> Iterator[tuple[Labelled, Decision]]:
    """Every event with the decision ``rules`` would have taken (and the learned model's
    verdict, when given), each world through a fresh engine; nothing is acted on."""
    for items in worlds(events).values():
        engine = RiskEngine(rules, InMemoryFeatureStore(), models, learned)
        for item in items:
            yield item, engine.assess(item.event)


@dataclass
class RuleFigures:
    """What one rule did over the replayed events."""

    rule: str
    shadow: bool = False
    honest_hits: int = 0
    attack_hits: int = 0
    unlabelled_hits: int = 0
    honest_people: set[tuple[tuple[str, ...], str]] = field(default_factory=set)
    attack_wallets: set[tuple[tuple[str, ...], str]] = field(default_factory=set)
    yen_at_stake: int = 0

    def row(self, honest_people: int) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "shadow": self.shadow,
            "honest_hits": self.honest_hits,
            "honest_people": len(self.honest_people),
            "honest_share": round(len(self.honest_people) / honest_people, 6)
            if honest_people
            else None,
            "attack_hits": self.attack_hits,
            "attack_wallets": len(self.attack_wallets),
            "yen_at_stake": self.yen_at_stake,
            "unlabelled_hits": self.unlabelled_hits,
        }


@dataclass
class Backtest:
    """Per-rule and per-outcome figures of one rule set over labelled events."""

    version: str
    events: int = 0
    honest_people: int = 0
    attack_wallets: int = 0
    attack_yen: int = 0
    """Money attack wallets moved in all (the most any rule set could have stopped)."""
    rules: dict[str, RuleFigures] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    """outcome → {"honest": events, "attack": events, "unlabelled": events}."""
    honest_people_by_outcome: dict[str, int] = field(default_factory=dict)
    honest_people_flagged: int = 0
    """Honest people with at least one outcome of ``step_up`` or more."""
    flagged: dict[str, int] = field(default_factory=dict)
    """Events with an outcome of ``step_up`` or more: {"honest", "attack", "unlabelled"}."""
    attack_events: int = 0
    attack_yen_flagged: int = 0
    """Yen of the attack money events that were flagged themselves."""
    yen_at_stake: int = 0
    """What the attack wallets moved at or after the first event flagged on each (as per rule)."""
    attack_wallets_flagged: int = 0
    attack_wallets_stopped: int = 0
    """Attack wallets with at least one outcome of ``review`` or more (held, refused, locked)."""
    decisions: list[tuple[Labelled, Decision]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule_set_version": self.version,
            "events": self.events,
            "honest_people": self.honest_people,
            "attack_wallets": self.attack_wallets,
            "attack_yen": self.attack_yen,
            "outcomes": self.outcomes,
            "honest_people_by_outcome": self.honest_people_by_outcome,
            "honest_people_flagged": self.honest_people_flagged,
            "flagged": self.flagged,
            "attack_events": self.attack_events,
            "attack_yen_flagged": self.attack_yen_flagged,
            "yen_at_stake": self.yen_at_stake,
            "attack_wallets_flagged": self.attack_wallets_flagged,
            "attack_wallets_stopped": self.attack_wallets_stopped,
            "rules": [figures.row(self.honest_people) for figures in self.rules.values()],
        }


def rule_report(
    rules: RuleSet,
    events: Iterable[Labelled],
    models: dict[str, Model] | None = None,
    learned: LearnedScorer | None = None,
    outcome_of: Callable[[Decision], Outcome] | None = None,
) -> Backtest:
    """Replay ``events`` through ``rules`` (world by world) and count, per rule, honest and
    attack hits and the yen at stake (module docstring), and the same for the rule set as a
    whole: a *flag* is an outcome of ``step_up`` or more — the decision's, or what
    ``outcome_of`` makes of it (e.g. a learned model's score against its threshold)."""
    report = Backtest(rules.version)
    report.flagged = {HONEST: 0, "attack": 0, "unlabelled": 0}
    flagged_people: set[tuple[tuple[str, ...], str]] = set()
    stopped: set[tuple[tuple[str, ...], str]] = set()
    first_flag: dict[tuple[tuple[str, ...], str], Any] = {}
    report.rules = {rule.id: RuleFigures(rule.id, rule.shadow) for rule in rules.rules}
    honest: set[tuple[tuple[str, ...], str]] = set()
    attack: set[tuple[tuple[str, ...], str]] = set()
    flagged_honest: dict[str, set[tuple[tuple[str, ...], str]]] = defaultdict(set)
    # (world, wallet) → [(time, yen)] of an attack wallet's money events
    moved: dict[tuple[tuple[str, ...], str], list[tuple[Any, int]]] = defaultdict(list)
    first_fired: dict[tuple[str, tuple[tuple[str, ...], str]], Any] = {}
    owner: dict[tuple[tuple[str, ...], str], str] = {}
    for item, decision in replay(rules, events, models, learned):
        report.decisions.append((item, decision))
        report.events += 1
        event = item.event
        if event.user and event.wallet:
            owner.setdefault((item.world, event.wallet), event.user)
        who = (item.world, event.user or owner.get((item.world, event.wallet), event.wallet))
        wallet = (item.world, event.wallet)
        kind = "attack" if item.attack else HONEST if item.honest else "unlabelled"
        outcome = outcome_of(decision) if outcome_of is not None else decision.outcome
        flag = outcome.severity >= Outcome.STEP_UP.severity
        counts = report.outcomes.setdefault(
            outcome.value, {HONEST: 0, "attack": 0, "unlabelled": 0}
        )
        counts[kind] += 1
        report.flagged[kind] += flag
        if item.honest and who[1]:
            honest.add(who)
            if outcome is not Outcome.ALLOW:
                flagged_honest[outcome.value].add(who)
            if flag:
                flagged_people.add(who)
        if item.attack:
            report.attack_events += 1
            if flag and event.type in MONEY:
                report.attack_yen_flagged += event.amount
        if item.attack and event.wallet:
            attack.add(wallet)
            if event.type in MONEY:
                moved[wallet].append((event.at, event.amount))
            if flag:
                first_flag.setdefault(wallet, event.at)
            if outcome.severity >= Outcome.REVIEW.severity:
                stopped.add(wallet)
        for fired in decision.fired:
            figures = report.rules.setdefault(fired.id, RuleFigures(fired.id, fired.shadow))
            if item.honest:
                figures.honest_hits += 1
                figures.honest_people.add(who)
            elif item.attack:
                figures.attack_hits += 1
                if event.wallet:
                    figures.attack_wallets.add(wallet)
                    first_fired.setdefault((fired.id, wallet), event.at)
            else:
                figures.unlabelled_hits += 1
    for (rule_id, wallet), since in first_fired.items():
        report.rules[rule_id].yen_at_stake += _moved_since(moved, wallet, since)
    for wallet, since in first_flag.items():
        report.yen_at_stake += _moved_since(moved, wallet, since)
    report.attack_wallets_flagged = len(first_flag)
    report.honest_people = len(honest)
    report.attack_wallets = len(attack)
    report.attack_yen = sum(yen for items in moved.values() for _, yen in items)
    report.honest_people_flagged = len(flagged_people)
    report.attack_wallets_stopped = len(stopped)
    report.honest_people_by_outcome = {
        outcome: len(people) for outcome, people in sorted(flagged_honest.items())
    }
    return report


def _moved_since(
    moved: dict[tuple[tuple[str, ...], str], list[tuple[Any, int]]],
    wallet: tuple[tuple[str, ...], str],
    since: Any,
) -> int:
    """Yen an attack wallet moved at or after ``since``."""
    return sum(yen for at, yen in moved.get(wallet, []) if at >= since)
