"""Several rule and model versions side by side on the same labelled events.

``kouza risk compare`` replays one labelled export through every candidate — a rule set, a rule
set with a learned model loaded beside it (its rules may read ``model("risk")``), or a model
alone at its file's threshold — each world through a fresh engine
(:func:`kouza.risk.backtesting.rule_report`, the same replay as ``kouza risk backtest``; the
model scores every event from that replay's store exactly as at decision time), and reports per
candidate the figures a fraud team weighs before publishing: precision and recall (in events and
in yen), the yen at stake behind its flags, the honest people it asks for more proof and how
(step-up, review, block or lock) with their denominators, and the attack wallets it stopped.
The first candidate is the reference (the live version): every other one also carries its
difference to it.

A *flag* is an outcome of ``step_up`` or more (as in ``kouza risk evaluate``); a wallet is
*stopped* by an outcome of ``review`` or more (an attacker who holds the phone answers a step-up,
ADR 0033). A model alone names no outcome: a score at or above its threshold counts as a
``step_up``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kouza.risk.backtesting import Backtest, Labelled, rule_report
from kouza.risk.engine import Decision
from kouza.risk.learned.model import LearnedModel
from kouza.risk.rules import Outcome, RuleSet, RuleSetError, load_rule_set, parse_rule_set

NO_RULES = parse_rule_set("version: none\nrules: []\n", source="a model alone")
"""The rule set of a model-alone candidate: the engine then only scores."""
FLAG_CLASSES = {
    "step_up": (Outcome.STEP_UP,),
    "review": (Outcome.REVIEW,),
    "block_or_lock": (Outcome.BLOCK, Outcome.LOCK),
}
"""How honest people were asked for more: one class per kind of friction."""


class CandidateError(ValueError):
    """A candidate that cannot be compared; the message says why."""


@dataclass(frozen=True)
class Candidate:
    """One version to compare: rules, a model, or both."""

    name: str
    rules: RuleSet | None
    model: LearnedModel | None

    @property
    def version(self) -> str:
        parts = []
        if self.rules is not None:
            parts.append(self.rules.version)
        if self.model is not None:
            alone = f" ≥ {self.model.threshold:.4f}" if self.rules is None else ""
            parts.append(f"{self.model.version}{alone}")
        return " + ".join(parts)

    def outcome_of(self) -> Callable[[Decision], Outcome] | None:
        """A model alone flags by its threshold; otherwise the rules' outcome is the outcome."""
        if self.rules is not None or self.model is None:
            return None
        threshold = self.model.threshold

        def by_score(decision: Decision) -> Outcome:
            score = decision.model.score if decision.model is not None else 0.0
            return Outcome.STEP_UP if score >= threshold else Outcome.ALLOW

        return by_score


def parse_candidate(spec: str) -> Candidate:
    """``rules.yaml``, ``model.json`` or ``rules.yaml+model.json`` → a loaded candidate;
    :class:`CandidateError` naming the file and the reason when one is bad."""
    parts = spec.split("+")
    if len(parts) > 2 or not all(parts):
        raise CandidateError(f"{spec!r}: give RULES.yaml, MODEL.json or RULES.yaml+MODEL.json")
    rules: RuleSet | None = None
    model: LearnedModel | None = None
    for part in parts:
        path = Path(part)
        if path.suffix.lower() == ".json":
            if model is not None:
                raise CandidateError(f"{spec!r}: two models in one candidate")
            try:
                model = LearnedModel.load(path)
            except ValueError as exc:  # ModelFileError
                raise CandidateError(str(exc)) from None
        elif path.suffix.lower() in (".yaml", ".yml"):
            if rules is not None:
                raise CandidateError(f"{spec!r}: two rule sets in one candidate")
            try:
                rules = load_rule_set(path)
            except RuleSetError as exc:
                raise CandidateError(exc.message) from None
        else:
            raise CandidateError(
                f"{part!r}: a candidate file is a rule set (.yaml, .yml) or a model (.json)"
            )
    return Candidate("+".join(Path(part).name for part in parts), rules, model)


def figures(report: Backtest) -> dict[str, Any]:
    """One candidate's figures from its replay (see the module docstring)."""
    flagged = sum(report.flagged.values())
    attacks = report.flagged["attack"]
    honest = report.honest_people
    by_class = {
        name: sum(report.honest_people_by_outcome.get(o.value, 0) for o in outcomes)
        for name, outcomes in FLAG_CLASSES.items()
    }
    return {
        "flagged": flagged,
        "attacks_flagged": attacks,
        "precision": attacks / flagged if flagged else None,
        "recall": attacks / report.attack_events if report.attack_events else None,
        "recall_yen": report.attack_yen_flagged / report.attack_yen if report.attack_yen else None,
        "attack_yen_flagged": report.attack_yen_flagged,
        "yen_at_stake": report.yen_at_stake,
        "honest_people_flagged": report.honest_people_flagged,
        "honest_share": report.honest_people_flagged / honest if honest else None,
        "honest_people_by_class": by_class,
        "attack_wallets_flagged": report.attack_wallets_flagged,
        "attack_wallets_stopped": report.attack_wallets_stopped,
    }


def _difference(mine: dict[str, Any], first: dict[str, Any]) -> dict[str, Any]:
    """``mine`` minus ``first``, figure by figure (None where either is unknown)."""
    out: dict[str, Any] = {}
    for key, value in mine.items():
        other = first[key]
        if isinstance(value, dict):
            out[key] = _difference(value, other)
        elif value is None or other is None:
            out[key] = None
        else:
            out[key] = value - other
    return out


def compare(
    candidates: Sequence[Candidate],
    events: Sequence[Labelled],
    *,
    budget: float = 0.01,
    progress: Callable[[Iterable[Labelled], str], Iterable[Labelled]] | None = None,
) -> dict[str, Any]:
    """Replay ``events`` through every candidate and put their figures side by side; the
    first candidate is the reference. ``within_budget``: the candidate flags at most
    ``budget`` of the honest people."""
    if not candidates:
        raise CandidateError("give at least one candidate")
    rows: list[dict[str, Any]] = []
    common: dict[str, int] = {}
    for candidate in candidates:
        replayed: Iterable[Labelled] = events
        if progress is not None:
            replayed = progress(events, candidate.name)
        report = rule_report(
            candidate.rules or NO_RULES,
            replayed,
            learned=candidate.model,
            outcome_of=candidate.outcome_of(),
        )
        common = {
            "events": report.events,
            "attack_events": report.attack_events,
            "honest_people": report.honest_people,
            "attack_wallets": report.attack_wallets,
            "attack_yen": report.attack_yen,
        }
        mine = figures(report)
        share = mine["honest_share"]
        rows.append(
            {
                "name": candidate.name,
                "version": candidate.version,
                **mine,
                "within_budget": share is not None and share <= budget,
            }
        )
    first = {k: v for k, v in rows[0].items() if k not in ("name", "version", "within_budget")}
    for row in rows[1:]:
        mine = {k: v for k, v in row.items() if k not in ("name", "version", "within_budget")}
        row["difference"] = _difference(mine, first)
    return {**common, "budget": budget, "candidates": rows}
