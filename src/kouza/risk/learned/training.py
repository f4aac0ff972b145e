"""Training: a time split per world, late labels, LightGBM, and a threshold for the budget.

Why a time split and not a random one: a model is used on the future, and a random split lets
it learn a campaign from its own later events (the same attacker's wallets and bursts on both
sides). Each world's period is cut at ``cutoff`` (an absolute date, or ``train_share`` of the
way through it): the model learns from the events before, and is validated on the events after.

Why late labels: nobody knows an event was fraud when it happens. A victim notices, the bank
confirms, the case closes — about a week later (``label_delay``). Training at the cutoff uses what
the fraud team would have had then: an attack event whose label is known only after the cutoff
counts as *not fraud*. The validation part is judged with the true labels.

Deterministic: the same files, options and seed give the same model file, byte for byte (one
thread, LightGBM's deterministic mode, no wall-clock time in the file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from kouza.risk.learned.dataset import ExportFile, Replayed, World, replay
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
from kouza.risk.learned.model import FORMAT, LearnedModel
from kouza.risk.learned.vector import (
    CATEGORICAL_INDICES,
    FEATURE_NAMES,
    FEATURE_SET,
    FEATURES,
)

PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "lambda_l2": 1.0,
    "feature_fraction": 0.9,
    "feature_fraction_bynode": 1.0,
    "max_cat_to_onehot": 16,
    "deterministic": True,
    "force_col_wise": True,
    "num_threads": 1,
    "verbosity": -1,
}
"""Small trees, few rounds: tens of thousands of events, and a decision must stay cheap — the
per-decision contributions (TreeSHAP) cost in proportion to the trees: 200 rounds at 0.05 cost
0.54 ms of CPU per decision for them, 100 at 0.1 half that, with the same or better average
precision on the scenarios not trained on (measured 2026-12-03, docs/risk.md)."""
ROUNDS = 100


@dataclass(frozen=True)
class TrainOptions:
    """How the data is cut and labelled."""

    cutoff: datetime | None = None
    train_share: float = 0.7
    label_delay: timedelta = timedelta(days=7)
    seed: int = 0
    budget: float = 0.01


class TrainingError(ValueError):
    """Training cannot produce a usable model from these data (the message says why)."""


def world_cutoff(world: World, options: TrainOptions) -> datetime:
    """Where ``world`` is cut: the absolute cutoff, or ``train_share`` through its period."""
    if options.cutoff is not None:
        return options.cutoff
    start, end = world.events[0].at, world.events[-1].at
    return start + (end - start) * options.train_share


def split(
    replayed: Replayed, cutoff: datetime, label_delay: timedelta
) -> tuple[Bools, Bools, Bools]:
    """(training rows, their labels as known at ``cutoff``, validation rows). An event at or
    after the cutoff is never trained on; an attack before it counts as fraud only if its
    label arrived (``at + label_delay``) by the cutoff."""
    at = np.array([e.at.timestamp() for e in replayed.world.events], dtype=np.float64)
    train = at < cutoff.timestamp()
    known = at + label_delay.total_seconds() <= cutoff.timestamp()
    labels = replayed.attack & known & train
    return train, labels, ~train


def train(
    files: Sequence[ExportFile],
    options: TrainOptions,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Replay every world, split and label it, train, validate; the model file's document."""
    x_train: list[Floats] = []
    y_train: list[Bools] = []
    x_valid: list[Floats] = []
    y_valid: list[Bools] = []
    valid_amounts: list[Floats] = []
    valid_users: list[tuple[str, str]] = []
    described: list[dict[str, Any]] = []
    counts = {"train_events": 0, "train_fraud_labels": 0, "train_attacks_unlabelled": 0}
    counts |= {"validation_events": 0, "validation_attacks": 0}
    cutoffs: list[datetime] = []
    for file in files:
        described.append(
            {"path": file.path, "sha256": file.sha256, "events": file.events, "worlds": []}
        )
        for world in file.worlds:
            replayed = replay(world, progress=progress)
            cutoff = world_cutoff(world, options)
            cutoffs.append(cutoff)
            train_rows, labels, valid_rows = split(replayed, cutoff, options.label_delay)
            x_train.append(replayed.vectors[train_rows])
            y_train.append(labels[train_rows])
            x_valid.append(replayed.vectors[valid_rows])
            y_valid.append(replayed.attack[valid_rows])
            valid_amounts.append(replayed.amounts[valid_rows])
            valid_users.extend(u for u, v in zip(replayed.users, valid_rows, strict=True) if v)
            unlabelled = int((replayed.attack & train_rows & ~labels).sum())
            counts["train_events"] += int(train_rows.sum())
            counts["train_fraud_labels"] += int(labels.sum())
            counts["train_attacks_unlabelled"] += unlabelled
            counts["validation_events"] += int(valid_rows.sum())
            counts["validation_attacks"] += int((replayed.attack & valid_rows).sum())
            described[-1]["worlds"].append(
                {
                    "seed": world.seed,
                    "profile": world.profile,
                    "events": len(world.events),
                    "cutoff": cutoff.isoformat(),
                    "train_events": int(train_rows.sum()),
                    "train_fraud_labels": int(labels.sum()),
                    "train_attacks_unlabelled": unlabelled,
                }
            )
    x = np.vstack(x_train)
    y = np.concatenate(y_train)
    if y.sum() == 0 or y.sum() == y.size:
        raise TrainingError(
            f"the training part has {int(y.sum())} fraud labels among {y.size} events: both "
            "classes are needed (an earlier --cutoff or a shorter --label-delay-days?)"
        )
    import lightgbm as lgb  # only to train: every kouza command would pay ~1 s to import it

    booster = lgb.train(
        {**PARAMS, "seed": options.seed},
        lgb.Dataset(
            x,
            label=y.astype(np.float64),
            feature_name=list(FEATURE_NAMES),
            categorical_feature=list(CATEGORICAL_INDICES),
            params={"verbosity": -1},
        ),
        num_boost_round=ROUNDS,
    )
    text = booster.model_to_string()
    last_cutoff = max(cutoffs)
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": "",
        "feature_set": FEATURE_SET,
        "features": list(FEATURE_NAMES),
        "feature_descriptions": {
            f.name: {"kind": f.kind, "source": f.source, "description": f.description}
            | ({"vocabulary": list(f.vocabulary)} if f.vocabulary else {})
            for f in FEATURES
        },
        "lightgbm": text,
        "threshold": 1.0,
        "budget": options.budget,
        "training": {
            "files": described,
            "cutoff": options.cutoff.isoformat() if options.cutoff else None,
            "train_share": None if options.cutoff else options.train_share,
            "label_delay_days": options.label_delay.total_seconds() / 86400,
            "seed": options.seed,
            "params": {**PARAMS, "seed": options.seed, "rounds": ROUNDS},
            "counts": counts,
        },
    }
    model = LearnedModel({**document, "version": "unversioned"})
    xv, yv = np.vstack(x_valid), np.concatenate(y_valid)
    scores = model.scores(xv)
    honest = ~yv
    honest_users = [u for u, h in zip(valid_users, honest.tolist(), strict=True) if h]
    per_user = max_per_user(honest_users, scores[honest])
    threshold = budget_threshold(np.array(list(per_user.values())), options.budget)
    if not np.isfinite(threshold):
        threshold = 1.0
    flagged = scores >= threshold
    hit, everyone = users_flagged(honest_users, flagged[honest])
    amounts = np.concatenate(valid_amounts)
    document["threshold"] = threshold
    document["validation"] = {
        "events": int(yv.size),
        "attacks": int(yv.sum()),
        "average_precision": finite(average_precision(scores, yv)),
        "threshold": threshold,
        "flagged": int(flagged.sum()),
        "precision": float((flagged & yv).sum() / flagged.sum()) if flagged.any() else None,
        "recall": float((flagged & yv).sum() / yv.sum()) if yv.any() else None,
        "recall_yen": float(amounts[flagged & yv].sum() / amounts[yv].sum())
        if amounts[yv].sum() > 0
        else None,
        "honest_users_flagged": hit,
        "honest_users": everyone,
    }
    document["leak_check"] = single_feature_ap(x, y)
    digest = hashlib.sha256((text + FEATURE_SET + repr(threshold)).encode("utf-8")).hexdigest()[:8]
    document["version"] = f"lgbm-{last_cutoff:%Y%m%d}-{digest}"
    return document
