"""What the rules page shows: the rule-set versions one can read, their differences, the
candidate's shadow figures, and a bounded backtest over recorded events.

**Versions.** The live set and the candidate come from this process's engine (their text kept
on the :class:`~kouza.risk.rules.RuleSet`); the shipped default from the package; earlier ones
from ``risk_rule_sets`` (:mod:`kouza.risk.versions`, every publish and candidate recorded with
its text). Versions named by stored decisions but never recorded (loaded from a file at
start) are listed by name and decision count only. Each readable version has a key: ``live``,
``candidate``, ``shipped`` or ``r<id>``.

**Difference.** Rule by rule (added, removed, changed, and which fields changed) and the
thresholds, plus a unified diff of the YAML texts (:mod:`difflib`).

**Backtest.** The latest :data:`MAX_EVENTS` recorded events of the chosen period are replayed
through the live set and the tested one (:func:`kouza.risk.backtesting.rule_report`, each
through a fresh engine), so the page answers in seconds. Events of wallets confirmed as fraud
(:func:`kouza.ops.shadow.confirmed_wallets`) are labelled attack, the others honest — an
approximation the page says out loud: fraud not yet confirmed counts as honest.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from kouza.ops.shadow import OUTCOMES, confirmed_wallets
from kouza.risk.backtesting import Backtest, Labelled, rule_report
from kouza.risk.comparing import figures
from kouza.risk.rules import Rule, RuleSet, parse_rule_set
from kouza.risk.service import risk, shipped_rule_set
from kouza.risk.versions import digest, rule_versions
from kouza.runtime import Runtime

MAX_EVENTS = 20_000
"""The most recorded events one backtest from the page replays (the latest of its period)."""
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RULE_FIELDS = ("description", "events", "when", "score", "outcome", "shadow")


@dataclass(frozen=True)
class Version:
    """A rule set whose text can be read."""

    key: str
    kind: str
    """live, candidate, shipped, or the role of a record (recorded_live, recorded_candidate)."""
    rules: RuleSet
    loaded_at: datetime | None = None
    actor: str = ""
    reason: str = ""

    @property
    def digest(self) -> str:
        return digest(self.rules.text)


def current(runtime: Runtime, session: Session) -> tuple[RuleSet, RuleSet | None]:
    """This process's live rule set and candidate."""
    engine = risk.engine(runtime, session)
    return engine.rules, engine.candidate


def versions(runtime: Runtime, session: Session) -> list[Version]:
    """Every readable version: live, candidate, shipped, then the records (newest first)."""
    live, candidate = current(runtime, session)
    found = [Version("live", "live", live)]
    if candidate is not None:
        found.append(Version("candidate", "candidate", candidate))
    found.append(Version("shipped", "shipped", shipped_rule_set()))
    for record in rule_versions.history(session):
        found.append(
            Version(
                f"r{record.id}",
                f"recorded_{record.role}",
                parse_rule_set(record.text, source=f"record {record.id}"),
                record.loaded_at,
                record.actor,
                record.reason,
            )
        )
    return found


def find(runtime: Runtime, session: Session, key: str) -> Version | None:
    """The version with ``key`` (None if there is none)."""
    if key.startswith("r") and key[1:].isdigit():
        record = rule_versions.get(session, int(key[1:]))
        if record is None:
            return None
        rules = parse_rule_set(record.text, source=f"record {record.id}")
        kind = f"recorded_{record.role}"
        return Version(key, kind, rules, record.loaded_at, record.actor, record.reason)
    return next((v for v in versions(runtime, session) if v.key == key), None)


@dataclass(frozen=True)
class RuleChange:
    """One rule's difference between two versions."""

    rule: str
    kind: str
    """added, removed or changed."""
    fields: tuple[tuple[str, str, str], ...] = ()
    """For a change: (field, before, after)."""


def _fields(rule: Rule) -> dict[str, str]:
    return {
        "description": rule.description,
        "events": ", ".join(sorted(e.value for e in rule.on)),
        "when": rule.when,
        "score": str(rule.score),
        "outcome": rule.outcome.value if rule.outcome else "",
        "shadow": "yes" if rule.shadow else "no",
    }


@dataclass(frozen=True)
class Difference:
    """Two versions compared."""

    changes: list[RuleChange]
    thresholds: tuple[str, str] | None
    """(before, after) when the score thresholds differ."""
    unified: list[str]
    """The unified diff of the two texts, line by line."""


def _thresholds(rules: RuleSet) -> str:
    return ", ".join(f"{outcome.value} ≥ {floor}" for floor, outcome in rules.thresholds)


def compare(before: Version, after: Version) -> Difference:
    """Rule by rule, thresholds, and the unified diff of the texts."""
    old = {rule.id: rule for rule in before.rules.rules}
    new = {rule.id: rule for rule in after.rules.rules}
    changes = [RuleChange(rule_id, "removed") for rule_id in old if rule_id not in new]
    for rule_id, rule in new.items():
        if rule_id not in old:
            changes.append(RuleChange(rule_id, "added"))
            continue
        was, now = _fields(old[rule_id]), _fields(rule)
        moved = tuple(
            (name, was[name], now[name]) for name in RULE_FIELDS if was[name] != now[name]
        )
        if moved:
            changes.append(RuleChange(rule_id, "changed", moved))
    thresholds = (_thresholds(before.rules), _thresholds(after.rules))
    unified = difflib.unified_diff(
        before.rules.text.splitlines(),
        after.rules.text.splitlines(),
        fromfile=f"{before.key} ({before.rules.version})",
        tofile=f"{after.key} ({after.rules.version})",
        lineterm="",
    )
    return Difference(
        changes, thresholds if thresholds[0] != thresholds[1] else None, list(unified)
    )


@dataclass
class BacktestView:
    """The live set and a tested one over the same recorded events."""

    period: str
    events: int
    truncated: bool
    confirmed_wallets: int
    live: Backtest
    tested: Backtest
    live_figures: dict[str, Any] = field(default_factory=dict)
    tested_figures: dict[str, Any] = field(default_factory=dict)
    changed: dict[tuple[str, str], int] = field(default_factory=dict)
    """(live outcome, tested outcome) → events where they differ."""

    def outcome_rows(self) -> list[tuple[str, int, int]]:
        """(outcome, events live, events tested) for every outcome."""
        return [
            (outcome, _events(self.live, outcome), _events(self.tested, outcome))
            for outcome in OUTCOMES
        ]


def _events(report: Backtest, outcome: str) -> int:
    return sum(report.outcomes.get(outcome, {}).values())


def backtest(
    session: Session, *, live: RuleSet, tested: RuleSet, period: str, now: datetime
) -> BacktestView:
    """Replay the period's latest recorded events through both sets (module docstring)."""
    since = now - PERIODS[period]
    events = risk.recorded_events(session, since=since, limit=MAX_EVENTS + 1)
    truncated = len(events) > MAX_EVENTS
    events = events[-MAX_EVENTS:]
    confirmed = confirmed_wallets(session)
    labelled = [
        Labelled(event, "attack:confirmed" if event.wallet in confirmed else "honest")
        for event in events
    ]
    live_report = rule_report(live, labelled)
    tested_report = rule_report(tested, labelled)
    changed: dict[tuple[str, str], int] = {}
    for (_, before), (_, after) in zip(live_report.decisions, tested_report.decisions, strict=True):
        if before.outcome is not after.outcome:
            pair = (before.outcome.value, after.outcome.value)
            changed[pair] = changed.get(pair, 0) + 1
    return BacktestView(
        period,
        len(events),
        truncated,
        len(confirmed),
        live_report,
        tested_report,
        figures(live_report),
        figures(tested_report),
        dict(sorted(changed.items())),
    )
