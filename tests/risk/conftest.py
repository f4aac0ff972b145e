"""Fixtures of the risk tests: ``stores`` runs a test once per feature store (see
:mod:`tests.risk.stores`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.risk.stores import Stores, redis_client, unique_prefix


@pytest.fixture(params=["memory", "redis", "redis-snapshot"])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    if request.param == "memory":
        yield Stores("memory")
        return
    client = redis_client()
    prefix = unique_prefix()
    yield Stores(request.param, client, prefix)
    for name in client.scan_iter(match=f"{prefix}*", count=1_000):
        client.delete(name)
    client.close()
