"""Figures over several seeds: the median and the range of every number a run measured.

One seed is one draw of the population and of the attackers' luck; a difference between two
profiles that a second seed reverses is not a finding. :func:`spread` takes the same figures
from several independent worlds (one per seed, e.g. :meth:`ProfileResult.summary` of each) and
gives, leaf by leaf, the median, the lowest and the highest value, plus the per-seed figures
themselves, so every aggregated number can be checked against the runs it came from.

Rules, applied the same way to every tree:

* A leaf is numeric when it is an ``int`` or a ``float`` (``bool`` is not). The median is
  :func:`statistics.median`: with an even number of seeds, the mean of the two middle values.
  The median of integers stays an ``int`` when it is whole and is otherwise a ``float`` ending in
  ``.5`` (¥462,500.5 or 3.5 victims): a statistic over worlds, not an amount posted anywhere.
* A numeric leaf that is ``None`` in a seed (e.g. no detection delay because nothing was locked)
  is left out of that leaf's median and range; ``None`` in every seed stays ``None``.
* A key some seeds lack while others have a number there counts as 0 in those seeds: maps like
  ``losses_by_bank`` only list what happened.
* Non-numeric leaves (names, descriptions) are taken from the first seed.
* Friction rates (a dict holding ``rate`` and ``of`` beside a count ``users`` or ``count``) are
  not medians of rates in the ``median`` tree: there the rate is recomputed as median count /
  median denominator, so the three numbers a reader sees side by side agree. ``min`` and
  ``max`` hold the lowest and highest per-seed rate (the range of what was observed).
* Keys keep the first seed's order; keys only later seeds have follow, sorted.

:func:`ablation` builds the ablation table from per-seed summaries: for each layer of
:data:`kouza.sim.profiles.LAYERS` whose ``kouza-without-<layer>`` profile ran beside ``kouza``,
the per-seed differences (yen saved = loss without the layer − loss with it; friction caused =
kouza's friction − the ablated profile's) and their spread. The differences are paired by seed
before the median is taken, because both profiles replay the same plan of that seed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kouza.sim.profiles import ABLATION_BASE, LAYERS

Number = int | float

SPREADS = ("median", "min", "max")
"""The aggregated trees of :func:`spread`, beside ``per_seed``."""

_COUNTS = ("users", "count")


def is_number(value: object) -> bool:
    """A numeric leaf: ``int`` or ``float``, never ``bool``."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def median(values: Sequence[Number]) -> Number:
    """:func:`statistics.median`, kept an ``int`` when every value is one and it is whole."""
    middle = statistics.median(values)
    if all(isinstance(value, int) for value in values) and float(middle).is_integer():
        return int(middle)
    return middle


def spread(per_seed: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{"median", "min", "max", "per_seed"}`` over the seeds' figure trees (seed label →
    tree, in seed order); see the module docstring for the rules."""
    trees = list(per_seed.values())
    if not trees:
        return {"median": {}, "min": {}, "max": {}, "per_seed": {}}
    middle = _combine(trees, median)
    _recompute_rates(middle)
    return {
        "median": middle,
        "min": _combine(trees, min),
        "max": _combine(trees, max),
        "per_seed": {label: dict(tree) for label, tree in per_seed.items()},
    }


def _combine(
    trees: Sequence[Mapping[str, Any]], reduce: Callable[[Sequence[Number]], Number]
) -> dict[str, Any]:
    """One tree: each numeric leaf reduced over the seeds, other leaves from the first seed."""
    combined: dict[str, Any] = {}
    for key in _keys(trees):
        present = [tree[key] for tree in trees if key in tree]
        if any(isinstance(value, Mapping) for value in present):
            combined[key] = _combine([tree.get(key) or {} for tree in trees], reduce)
        elif any(is_number(value) for value in present):
            numbers = [tree.get(key, 0) for tree in trees]
            numbers = [value for value in numbers if value is not None]
            combined[key] = reduce(numbers)
        else:
            combined[key] = present[0]
    return combined


def _keys(trees: Iterable[Mapping[str, Any]]) -> list[str]:
    """The first tree's keys in order, then keys only later trees have, sorted."""
    trees = list(trees)
    first = list(trees[0])
    later = sorted({key for tree in trees[1:] for key in tree} - set(first))
    return first + later


def _recompute_rates(tree: dict[str, Any]) -> None:
    """Friction rates in a median tree: median count / median denominator (6 decimals)."""
    count_key = next((key for key in _COUNTS if key in tree), None)
    if count_key is not None and "rate" in tree and "of" in tree:
        count, of = tree[count_key], tree["of"]
        tree["rate"] = round(count / of, 6) if is_number(count) and of else None
    for value in tree.values():
        if isinstance(value, dict):
            _recompute_rates(value)


@dataclass(frozen=True)
class Spread:
    """One figure over the seeds: its median and its range (``None`` where not measured)."""

    median: Number | None
    low: Number | None
    high: Number | None

    @property
    def varies(self) -> bool:
        """Whether the seeds disagree (a cell then shows the range)."""
        return self.low != self.high


def pick(aggregated: Mapping[str, Any], *path: str) -> Spread:
    """The figure at ``path`` (e.g. ``"friction_per_1000", "step_ups"``) of a :func:`spread`."""

    def walk(tree: Any) -> Number | None:
        for key in path:
            tree = tree.get(key) if isinstance(tree, Mapping) else None
        return tree if is_number(tree) else None

    median_, low, high = (walk(aggregated.get(name)) for name in SPREADS)
    return Spread(median_, low, high)


# --- the ablation table ---------------------------------------------------------------------


def ablation_profile(layer: str) -> str:
    """The profile that removes ``layer`` from kouza."""
    return f"{ABLATION_BASE}-without-{layer}"


def ablation(summaries: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The ablation table: one row per layer whose profile ran beside ``kouza``, in
    :data:`LAYERS` order (empty when ``kouza`` or every ablated profile is missing).

    ``summaries`` maps profile name → seed label → :meth:`ProfileResult.summary`. Each row has
    the layer, its description, the ablated profile's name and the :func:`spread` of the
    per-seed differences (see :func:`layer_effect`).
    """
    base = summaries.get(ABLATION_BASE)
    if not base:
        return []
    rows = []
    for layer, (description, _switches) in LAYERS.items():
        without = summaries.get(ablation_profile(layer))
        if not without:
            continue
        per_seed = {
            seed: layer_effect(base[seed], without[seed]) for seed in base if seed in without
        }
        rows.append(
            {
                "layer": layer,
                "description": description,
                "profile": ablation_profile(layer),
                **spread(per_seed),
            }
        )
    return rows


def layer_effect(kouza: Mapping[str, Any], without: Mapping[str, Any]) -> dict[str, Any]:
    """What one layer did in one seed: yen it saved (loss and net loss without it − with it),
    honest friction it caused (kouza's − the ablated profile's, users and events per kind) and
    kouza's honest population beside it (the denominators)."""
    mine, theirs = kouza["friction"], without["friction"]
    return {
        "yen_saved": without["loss_yen"] - kouza["loss_yen"],
        "net_yen_saved": without["net_loss_yen"] - kouza["net_loss_yen"],
        "friction_caused": {
            "per_user": {
                kind: figures["users"] - theirs["per_user"].get(kind, {}).get("users", 0)
                for kind, figures in mine["per_user"].items()
            },
            "per_event": {
                kind: figures["count"] - theirs["per_event"].get(kind, {}).get("count", 0)
                for kind, figures in mine["per_event"].items()
            },
        },
        "honest_active_users": mine["honest_active_users"],
        "honest_link_attempters": mine["honest_link_attempters"],
        "honest_operations": mine["honest_operations"],
    }
