"""A learned risk model beside the rules (issue 18): LightGBM over a fixed feature vector.

* :mod:`~kouza.risk.learned.vector` — the features, computed with the rule language's functions
  from the store before the event, the same code at training and at decision time;
* :mod:`~kouza.risk.learned.dataset` — labelled exports read as separate worlds and replayed;
* :mod:`~kouza.risk.learned.training` — time split, late labels, LightGBM, budget threshold;
* :mod:`~kouza.risk.learned.model` — the versioned model file, scoring and contributions;
* :mod:`~kouza.risk.learned.evaluation` — rules vs model vs both, leak check, frontier.

See docs/risk.md ("A learned model") and ADR 0031.
"""
