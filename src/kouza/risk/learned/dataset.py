"""Labelled event exports, read as separate worlds and replayed into feature vectors.

An export of ``kouza simulate … --export-events`` holds several *worlds*: one history per
(``sim_seed``, ``sim_profile``), each with its own wallets, devices and clock. Mixing them in
one feature store would let one world's events change another's counts, so every world is
replayed on its own, in time order, through a fresh
:class:`~kouza.risk.features.InMemoryFeatureStore`: for each event the vector is computed
*before* the event is recorded, exactly as the engine does at decision time (and the rules,
when given, decide from the same store at the same moment, for the side-by-side comparison).

The simulator's own marks (``label``, every ``sim_*`` attribute) are taken off the event on
load: the engine never sees them in production, so neither do the features.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from kouza.risk.engine import RiskEngine
from kouza.risk.events import RiskEvent
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.learned.metrics import Bools, Floats
from kouza.risk.learned.vector import FEATURE_NAMES, vector
from kouza.risk.rules import Outcome, RuleSet


@dataclass
class World:
    """One simulated history: its events in time order and who caused each."""

    file: str
    seed: object
    profile: str
    events: list[RiskEvent] = field(default_factory=list)
    attackers: list[str | None] = field(default_factory=list)
    """``None`` for an honest event, else the attacker's name."""

    @property
    def name(self) -> str:
        return f"{Path(self.file).name}[{self.seed}/{self.profile}]"


@dataclass(frozen=True)
class ExportFile:
    """A read export: its worlds and what identifies it in a model file."""

    path: str
    sha256: str
    events: int
    worlds: list[World]


def read_export(path: Path) -> ExportFile:
    """Read a JSON-lines export; raises ValueError naming the line of a malformed record."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    worlds: dict[tuple[object, str], World] = {}
    count = 0
    for number, line in enumerate(data.decode("utf-8", errors="strict").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            label = record.get("label")
            if not isinstance(label, str) or not (label == "honest" or label.startswith("attack:")):
                raise ValueError("needs a 'label': 'honest' or 'attack:<attacker>'")
            event = RiskEvent.from_json(record)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: line {number}: {exc}") from None
        attributes = event.attributes
        key = (attributes.get("sim_seed"), str(attributes.get("sim_profile", "")))
        world = worlds.get(key)
        if world is None:
            world = worlds[key] = World(str(path), key[0], key[1])
        clean = {k: v for k, v in attributes.items() if not str(k).startswith("sim_")}
        world.events.append(replace(event, attributes=clean))
        world.attackers.append(None if label == "honest" else label.removeprefix("attack:"))
        count += 1
    if count == 0:
        raise ValueError(f"{path}: no events")
    for world in worlds.values():  # time order; the export's order breaks ties
        order = sorted(range(len(world.events)), key=lambda i: world.events[i].at)
        world.events = [world.events[i] for i in order]
        world.attackers = [world.attackers[i] for i in order]
    return ExportFile(str(path), hashlib.sha256(data).hexdigest(), count, list(worlds.values()))


@dataclass
class Replayed:
    """A world's events as the engine saw them: vectors, and the rules' verdicts if asked."""

    world: World
    vectors: Floats
    attack: Bools
    amounts: Floats
    users: list[tuple[str, str]]
    """(world, user) per event: the honest user a flag would bother."""
    rules_flagged: Bools | None = None
    """Outcome ``step_up`` or more from the rules."""

    @property
    def at(self) -> list[datetime]:
        return [event.at for event in self.world.events]


def user_of(event: RiskEvent) -> str:
    """Who a decision asks for more proof: the user, else the wallet, else the device."""
    return event.user or event.wallet or event.device or "-"


def replay(
    world: World,
    rules: RuleSet | None = None,
    progress: Callable[[int], None] | None = None,
) -> Replayed:
    """Replay ``world`` through a fresh store: vector (and rules' decision) before recording."""
    store = InMemoryFeatureStore()
    engine = RiskEngine(rules, store) if rules is not None else None
    rows: list[list[float]] = []
    flagged: list[bool] = []
    for i, event in enumerate(world.events):
        if engine is not None:
            outcome = engine.evaluate(event).outcome
            flagged.append(outcome.severity >= Outcome.STEP_UP.severity)
        rows.append(vector(event, store))
        store.record(event)
        if progress is not None and (i + 1) % 500 == 0:
            progress(500)
    if progress is not None:
        progress(len(world.events) % 500)
    return Replayed(
        world=world,
        vectors=np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES)),
        attack=np.array([a is not None for a in world.attackers], dtype=np.bool_),
        amounts=np.array([float(e.amount) for e in world.events], dtype=np.float64),
        users=[(world.name, user_of(e)) for e in world.events],
        rules_flagged=np.array(flagged, dtype=np.bool_) if engine is not None else None,
    )
