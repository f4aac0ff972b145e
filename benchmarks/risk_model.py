"""What a learned model adds to the CPU of one decision (issue 18, ADR 0031).

Usage::

    python benchmarks/risk_model.py --events EXPORT.jsonl --model model.json [--limit 5000]

Replays the first world of a labelled export (``kouza simulate … --export-events``) through the
engine with the shipped rules and an in-memory store, once without and once with the model
(vector + LightGBM prediction with contributions), ``--repeat`` times each, and prints the CPU
per decision (``time.process_time``; the best of the repeats, since the host is shared).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kouza.risk.engine import RiskEngine
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.learned.dataset import read_export
from kouza.risk.learned.model import LearnedModel
from kouza.risk.service import shipped_rule_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    events = read_export(args.events).worlds[0].events[: args.limit]
    model = LearnedModel.load(args.model)
    rules = shipped_rule_set()
    results: dict[str, float] = {}
    for label, learned in (("rules only", None), ("rules + model", model)):
        best = float("inf")
        for _ in range(args.repeat):
            engine = RiskEngine(rules, InMemoryFeatureStore(), learned=learned)
            start = time.process_time()
            for event in events:
                engine.assess(event)
            best = min(best, time.process_time() - start)
        results[label] = best / len(events) * 1000
        print(f"{label:14} {len(events):,} decisions: {results[label]:.3f} ms CPU per decision")
    extra = results["rules + model"] - results["rules only"]
    print(f"the model adds {extra:.3f} ms CPU per decision")


if __name__ == "__main__":
    main()
