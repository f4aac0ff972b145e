"""Ranking and friction metrics, in numpy (no scikit-learn for a few lines of arithmetic).

Why these: fraud is rare, so accuracy and ROC say little; *average precision* summarises how
well the scores rank attacks above honest events, and the *friction budget* is what the business
fixes in advance — the share of honest users who may be asked for more proof — so a threshold is
chosen to spend exactly that budget and the yen it stops is what is compared.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kouza.risk.learned.vector import CATEGORICAL_INDICES, FEATURE_NAMES

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]


def average_precision(scores: Floats, labels: Bools) -> float:
    """Σ (Rₙ − Rₙ₋₁) Pₙ over the distinct score thresholds, highest first (tied scores form
    one threshold, as scikit-learn does); NaN scores rank lowest. NaN when there is no
    positive."""
    positives = int(labels.sum())
    if positives == 0:
        return float("nan")
    clean = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-clean, kind="stable")
    ranked, hits = clean[order], labels[order].astype(np.float64)
    true_pos = np.cumsum(hits)
    # the last index of each group of equal scores is a threshold
    last = np.r_[np.nonzero(ranked[1:] != ranked[:-1])[0], ranked.size - 1]
    precision = true_pos[last] / (last + 1)
    recall = true_pos[last] / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def finite(value: float) -> float | None:
    """``value``, or None for NaN and infinities (JSON has neither)."""
    return value if np.isfinite(value) else None


def budget_threshold(user_scores: Floats, budget: float) -> float:
    """The lowest threshold (``score >= t`` flags) at which at most ``budget`` of the users
    are flagged, given each user's highest score. ``inf`` when even one user is too many."""
    if user_scores.size == 0:
        return float("inf")
    allowed = int(np.floor(budget * user_scores.size + 1e-9))
    ranked = np.sort(np.where(np.isnan(user_scores), -np.inf, user_scores))[::-1]
    if allowed >= ranked.size:
        return float(ranked[-1])
    # flag strictly above the (allowed+1)-th highest score
    return float(np.nextafter(ranked[allowed], np.inf))


def users_flagged(users: Sequence[Hashable], flagged: Bools) -> tuple[int, int]:
    """(users with a flagged event, users) over ``users`` (one per event)."""
    everyone = set(users)
    hit = {user for user, flag in zip(users, flagged, strict=True) if flag}
    return len(hit), len(everyone)


def max_per_user(users: Sequence[Hashable], scores: Floats) -> dict[Hashable, float]:
    """Each user's highest score (NaN counts as lowest)."""
    best: dict[Hashable, float] = {}
    for user, score in zip(users, scores.tolist(), strict=True):
        value = -np.inf if score != score else score
        if value > best.get(user, -np.inf) or user not in best:
            best[user] = value
    return best


LEAK_LIMIT = 0.95
"""A single feature ranking attacks this well alone is more likely a leak than a signal."""


def single_feature_ap(vectors: Floats, labels: Bools) -> dict[str, Any]:
    """The leak check: the average precision of each feature used alone as the score (in
    whichever direction ranks better; a categorical feature scored by its categories' attack
    rate on these same rows — an optimistic probe, on purpose), and those above
    :data:`LEAK_LIMIT`."""
    result: dict[str, float] = {}
    for index, name in enumerate(FEATURE_NAMES):
        column = vectors[:, index]
        if index in CATEGORICAL_INDICES:
            rates = np.zeros_like(column)
            for value in np.unique(column):
                where = column == value
                rates[where] = labels[where].mean()
            ap = average_precision(rates, labels)
        else:
            ap = max(average_precision(column, labels), average_precision(-column, labels))
        result[name] = round(ap, 4) if np.isfinite(ap) else 0.0
    suspected = sorted(name for name, ap in result.items() if ap > LEAK_LIMIT)
    return {"limit": LEAK_LIMIT, "single_feature_ap": result, "suspected_leaks": suspected}
