"""The feature stores under test: the behavioural tests of features and rules run against each.

``stores`` is parametrised: ``memory`` (:class:`InMemoryFeatureStore`), ``redis`` (the shared
store read feature by feature, as a caller of the plain protocol does) and ``redis-snapshot``
(decisions made as the service makes them: one snapshot per decision). The Redis cases need
``KOUZA_TEST_REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/15``) and skip with that reason without
it — unless ``KOUZA_REQUIRE_REDIS=1`` (set by ``.ci/run`` in CI), where they fail. Each test gets
its own key prefix, deleted afterwards, so parallel workers never see each other's keys.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from kouza.risk.engine import Decision, RiskEngine
from kouza.risk.events import RiskEvent
from kouza.risk.features import FeatureStore, InMemoryFeatureStore
from kouza.risk.language import Context, compile_expression
from kouza.risk.plan import ReadPlanner, reads_of
from kouza.risk.redis_store import RedisFeatureStore
from kouza.risk.service import decide

REDIS_URL = os.environ.get("KOUZA_TEST_REDIS_URL", "")
REQUIRE_REDIS = os.environ.get("KOUZA_REQUIRE_REDIS") == "1"


def redis_client() -> redis.Redis:
    """A client of the test server, or skip (fail under ``KOUZA_REQUIRE_REDIS=1``)."""
    if not REDIS_URL:
        if REQUIRE_REDIS:
            pytest.fail("KOUZA_REQUIRE_REDIS=1 but KOUZA_TEST_REDIS_URL is not set")
        pytest.skip(
            "Redis feature-store tests need KOUZA_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)"
        )
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # an unreachable server fails the test, it does not skip it
    return client


def unique_prefix() -> str:
    """A key prefix no other test or worker uses."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"kouza:test:{worker}:{uuid.uuid4().hex}:"


@dataclass
class Stores:
    """Makes empty stores of one kind and decides the way that kind is used."""

    kind: str
    client: redis.Redis | None = None
    prefix: str = ""
    made: list[FeatureStore] = field(default_factory=list)
    planner: ReadPlanner = field(default_factory=ReadPlanner)

    def new(self, **options: Any) -> FeatureStore:
        """A new, empty store (``retention``, ``cap_per_key`` as the store takes them)."""
        store: FeatureStore
        if self.client is None:
            store = InMemoryFeatureStore(**options)
        else:
            prefix = f"{self.prefix}{len(self.made)}:"
            store = RedisFeatureStore(self.client, prefix=prefix, **options)
        self.made.append(store)
        return store

    def assess(self, engine: RiskEngine, event: RiskEvent) -> Decision:
        """Decide and record, as ``risk.assess`` does with this store."""
        if self.kind == "redis-snapshot":
            return decide(engine, self.planner, event, record=True)
        return engine.assess(event)

    def judge(self, engine: RiskEngine, events: list[RiskEvent]) -> list[Decision]:
        return [self.assess(engine, event) for event in events]

    def evaluate(self, expression: str, store: FeatureStore, event: RiskEvent) -> Any:
        """``expression`` about ``event`` over ``store`` (through a snapshot when that is how
        this kind is read)."""
        if self.kind == "redis-snapshot":
            assert isinstance(store, RedisFeatureStore)
            store = store.snapshot(event, reads_of(expression), record=False)
        return compile_expression(expression)(Context.for_event(event, store))
