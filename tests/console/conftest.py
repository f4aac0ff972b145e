"""Console tests: the wallet app (API + console) in process, on the test runtime."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kouza.api.app import create_app
from kouza.runtime import Runtime
from tests.linking.conftest import (  # noqa: F401  (the wallet + bank world, for the call centre)
    bank_url,
    linking_bank_postgres,
    linking_bank_template,
    world,
)


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(
        create_app(rt), base_url="http://testserver", headers={"Accept-Language": "en"}
    ) as test_client:
        yield test_client
