"""Rules, model, and both, side by side on labelled exports the model was not trained on.

Each world is replayed once: at every event the shipped (or given) rules decide and the vector
is computed from the same store before the event is recorded; the model then scores the vectors
in one batch (the same numbers :meth:`LearnedModel.assess` gives one at a time). A flag is:
rules — an outcome of ``step_up`` or more; model — a score at or above the model file's
threshold (chosen on its validation data for the budget); either — one or the other.

What is reported, and why: precision and recall in events and in yen (an attack event carrying
¥300,000 matters more than a login); *recall at the budget* — the threshold re-chosen on these
data so that exactly ``budget`` of the honest users are flagged, the comparison a fraud team
makes; yen at stake per 1,000 flags (what a flag is worth to the team that works it); honest users
flagged; and the *leak check*, the average precision of each feature alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kouza.risk.learned.dataset import ExportFile, Replayed, replay
from kouza.risk.learned.metrics import (
    Bools,
    Floats,
    average_precision,
    budget_threshold,
    finite,
    max_per_user,
    single_feature_ap,
    users_flagged,
)
from kouza.risk.learned.model import LearnedModel
from kouza.risk.rules import RuleSet

FRONTIER_POINTS = 40


def _row(flagged: Bools, part: _Part) -> dict[str, Any]:
    attack, amounts = part.attack, part.amounts
    hits = flagged & attack
    honest = ~attack
    hit_users, users = users_flagged(part.honest_users, flagged[honest])
    attack_yen = float(amounts[attack].sum())
    return {
        "flagged": int(flagged.sum()),
        "attacks_flagged": int(hits.sum()),
        "precision": float(hits.sum() / flagged.sum()) if flagged.any() else None,
        "recall": float(hits.sum() / attack.sum()) if attack.any() else None,
        "recall_yen": float(amounts[hits].sum() / attack_yen) if attack_yen else None,
        "yen_flagged_per_1000_flags": float(amounts[hits].sum() / flagged.sum() * 1000)
        if flagged.any()
        else None,
        "honest_users_flagged": hit_users,
        "honest_users": users,
        "honest_user_share": hit_users / users if users else None,
        "attack_yen_not_flagged": int(amounts[attack & ~flagged].sum()),
    }


class _Part:
    """The concatenated rows of some worlds (one file, or all)."""

    def __init__(self, replayed: Sequence[Replayed], scores: Sequence[Floats]) -> None:
        self.vectors = np.vstack([r.vectors for r in replayed])
        self.attack = np.concatenate([r.attack for r in replayed])
        self.amounts = np.concatenate([r.amounts for r in replayed])
        self.rules = np.concatenate(
            [r.rules_flagged for r in replayed if r.rules_flagged is not None]
        )
        self.scores = np.concatenate(scores)
        users = [u for r in replayed for u in r.users]
        self.honest_users = [u for u, a in zip(users, self.attack.tolist(), strict=True) if not a]
        self.honest_scores = self.scores[~self.attack]
        self.honest_rules = self.rules[~self.attack]


def _at_budget(part: _Part, budget: float, with_rules: bool) -> dict[str, Any] | None:
    """Recall when the threshold is re-chosen here so that ``budget`` of the honest users are
    flagged (with the rules: by rules or model). None when the rules alone exceed it."""
    if with_rules:
        by_rules = {u for u, f in zip(part.honest_users, part.honest_rules, strict=True) if f}
        users = set(part.honest_users)
        room = budget - len(by_rules) / max(len(users), 1)
        if room < 0:
            return None
        rest = [u not in by_rules for u in part.honest_users]
        per_user = max_per_user(
            [u for u, r in zip(part.honest_users, rest, strict=True) if r],
            part.honest_scores[np.array(rest, dtype=np.bool_)],
        )
        scores = np.array(list(per_user.values()))
        allowed = room * len(users) / max(scores.size, 1)
        threshold = budget_threshold(scores, allowed)
        flagged = part.rules | (part.scores >= threshold)
    else:
        per_user = max_per_user(part.honest_users, part.honest_scores)
        threshold = budget_threshold(np.array(list(per_user.values())), budget)
        flagged = part.scores >= threshold
    return {"threshold": finite(threshold), **_row(flagged, part)}


def _frontier(part: _Part) -> dict[str, Any]:
    """(honest-user friction share, attack yen not flagged) over a range of thresholds: those
    that flag 0.1 % … 100 % of the honest users (log-spaced, where the budget decisions are),
    and one that flags nothing."""
    per_user = np.array(list(max_per_user(part.honest_users, part.honest_scores).values()))
    budgets = np.geomspace(0.001, 1.0, FRONTIER_POINTS)
    thresholds = sorted({budget_threshold(per_user, float(b)) for b in budgets} | {np.inf})
    model, both = [], []
    for t in thresholds:
        flagged = part.scores >= t
        m = _row(flagged, part)
        b = _row(flagged | part.rules, part)
        model.append([finite(t), m["honest_user_share"], m["attack_yen_not_flagged"]])
        both.append([finite(t), b["honest_user_share"], b["attack_yen_not_flagged"]])
    rules = _row(part.rules, part)
    return {
        "columns": ["threshold", "honest_user_share", "attack_yen_not_flagged"],
        "model": model,
        "rules_or_model": both,
        "rules": [rules["honest_user_share"], rules["attack_yen_not_flagged"]],
    }


def summarise(part: _Part, threshold: float, budget: float) -> dict[str, Any]:
    """Every figure for one part."""
    by_model = part.scores >= threshold
    return {
        "events": int(part.attack.size),
        "attacks": int(part.attack.sum()),
        "attack_yen": int(part.amounts[part.attack].sum()),
        "average_precision": finite(average_precision(part.scores, part.attack)),
        "rules": _row(part.rules, part),
        "model": _row(by_model, part),
        "rules_or_model": _row(part.rules | by_model, part),
        "at_budget": {
            "model": _at_budget(part, budget, with_rules=False),
            "rules_or_model": _at_budget(part, budget, with_rules=True),
        },
        "leak_check": single_feature_ap(part.vectors, part.attack),
        "frontier": _frontier(part),
    }


def evaluate(
    files: Sequence[ExportFile],
    model: LearnedModel,
    rules: RuleSet,
    *,
    budget: float = 0.01,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Per file and overall, rules vs model vs either (see the module's docstring)."""
    everything: list[Replayed] = []
    all_scores: list[Floats] = []
    report: dict[str, Any] = {
        "model": model.version,
        "rules": rules.version,
        "budget": budget,
        "threshold": model.threshold,
        "files": {},
    }
    trained_on = {f["sha256"] for f in model.document.get("training", {}).get("files", [])}
    for file in files:
        replayed = [replay(world, rules, progress) for world in file.worlds]
        scores = [model.scores(r.vectors) for r in replayed]
        everything.extend(replayed)
        all_scores.extend(scores)
        report["files"][file.path] = {
            "sha256": file.sha256,
            "trained_on": file.sha256 in trained_on,
            "worlds": [w.name for w in file.worlds],
            **summarise(_Part(replayed, scores), model.threshold, budget),
        }
    report["overall"] = summarise(_Part(everything, all_scores), model.threshold, budget)
    report["suspected_leaks"] = sorted(
        {
            name
            for part in [report["overall"], *report["files"].values()]
            for name in part["leak_check"]["suspected_leaks"]
        }
    )
    return report


def draw_frontier(part: dict[str, Any], path: str, title: str) -> None:
    """The friction–loss frontier of one part as a PNG: the model's and rules-or-model's
    curves, the rules alone as a point (Agg canvas, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frontier = part["frontier"]
    figure = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for key, label, style in (
        ("model", "model alone", "-"),
        ("rules_or_model", "rules or model", "--"),
    ):
        points = sorted((p[1] * 100, p[2] / 1e6) for p in frontier[key] if p[1] is not None)
        axes.plot([p[0] for p in points], [p[1] for p in points], style, marker=".", label=label)
    share, missed = frontier["rules"]
    if share is not None:
        axes.plot([share * 100], [missed / 1e6], "o", color="black", label="rules alone")
    axes.set_xscale("symlog", linthresh=0.1)
    axes.set_xlabel("honest users flagged (%)")
    axes.set_ylabel("attack yen not flagged (¥ millions)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
