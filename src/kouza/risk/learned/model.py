"""A trained model file, loaded to score events at decision time and to explain each score.

One JSON document (:data:`FORMAT`) holds everything a decision needs and an auditor asks: the
version, the feature list it was trained on (refused if the code's list differs: the numbers
would mean something else), the LightGBM model as text, what it was trained on (files and
their sha256, cutoff, label delay, counts), its validation figures, and the score threshold that
spends the friction budget. JSON, not pickle: loading a model file runs no code.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from kouza.risk.engine import Contribution, ModelVerdict
from kouza.risk.events import RiskEvent
from kouza.risk.features import FeatureStore
from kouza.risk.learned.metrics import Floats
from kouza.risk.learned.vector import FEATURE_NAMES, FEATURE_SET, display_value, reads, vector

FORMAT = "kouza-risk-model/1"
TOP_CONTRIBUTIONS = 5
"""How many features a decision names: enough to explain, few enough to read."""


class ModelFileError(ValueError):
    """A model file that cannot be used; the message says why."""


class LearnedModel:
    """A loaded model: ``model("risk")`` for rules, and its verdict on every decision."""

    name = "risk"

    def __init__(self, document: dict[str, Any]) -> None:
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ModelFileError(f"not a kouza risk model (format must be {FORMAT!r})")
        if document.get("feature_set") != FEATURE_SET or tuple(
            document.get("features", ())
        ) != tuple(FEATURE_NAMES):
            raise ModelFileError(
                f"the model was trained on feature set {document.get('feature_set')!r}; this "
                f"kouza computes {FEATURE_SET!r}: retrain it"
            )
        text = document.get("lightgbm")
        version = document.get("version")
        threshold = document.get("threshold")
        if not isinstance(text, str) or not isinstance(version, str):
            raise ModelFileError("the model file lacks its version or its LightGBM model")
        if not isinstance(threshold, (int, float)):
            raise ModelFileError("the model file lacks its score threshold")
        import lightgbm as lgb  # only when a model is loaded: ~1 s at start otherwise

        try:
            self.booster = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as exc:
            raise ModelFileError(f"the LightGBM model does not load: {exc}") from None
        if self.booster.num_feature() != len(FEATURE_NAMES):
            raise ModelFileError("the LightGBM model has another number of features")
        self.document = document
        self.version = version
        self.threshold = float(threshold)
        self.reads: Mapping[str, timedelta | None] = dict(reads())
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> LearnedModel:
        """Read a model file; :class:`ModelFileError` says what is wrong with a bad one."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{path}: cannot read the model: {exc}") from None
        try:
            return cls(document)
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None

    def scores(self, vectors: Floats) -> Floats:
        """Probability of fraud for each row (a batch: evaluation)."""
        if vectors.shape[0] == 0:
            return np.zeros(0)
        with self._lock:
            out = self.booster.predict(vectors, num_threads=1)
        return np.asarray(out, dtype=np.float64)

    def assess(self, event: RiskEvent, store: FeatureStore) -> ModelVerdict:
        """Score ``event`` from the history in ``store`` (before the event) and name the
        features that moved the score most (LightGBM's exact per-tree contributions; they sum
        with the bias to the log-odds, so the score is computed from them in one call)."""
        row = vector(event, store)
        with self._lock:
            raw = self.booster.predict(np.array([row]), pred_contrib=True, num_threads=1)
        contributions = np.asarray(raw, dtype=np.float64)[0]
        log_odds = float(contributions.sum())
        score = 1.0 / (1.0 + math.exp(-log_odds))
        order = np.argsort(-np.abs(contributions[:-1]), kind="stable")[:TOP_CONTRIBUTIONS]
        top = tuple(
            Contribution(FEATURE_NAMES[i], display_value(int(i), row[i]), float(contributions[i]))
            for i in order
        )
        return ModelVerdict(self.version, score, top)
