"""The bank API's error shapes: problems on its own routes, OAuth's body on the OAuth routes."""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kouza.bank.app import create_bank_app
from kouza.bank.runtime import BankRuntime
from tests.api.test_text_fields import check_app
from tests.bank.conftest import STAFF_TOKEN
from tests.bank.helpers import make_client
from tests.problems import problem


@pytest.fixture
def api(bank_rt: BankRuntime) -> Iterator[TestClient]:
    with TestClient(create_bank_app(bank_rt), raise_server_exceptions=False) as client:
        yield client


class TestBankProblems:
    def test_unknown_route_and_link(self, api: TestClient) -> None:
        missing = api.get("/v1/nothing")
        assert missing.json() == problem(404, "not_found", "no such resource")
        assert missing.headers["content-type"] == "application/problem+json"

    def test_body_over_the_limit(self, api: TestClient) -> None:
        response = api.post(
            "/v1/banks/0001/legacy-links",
            content=b"x" * (64 * 1024 + 1),
            headers={"content-type": "application/json"},
        )
        assert (response.status_code, response.json()["error"]) == (413, "content_too_large")
        assert response.headers["content-type"] == "application/problem+json"


class TestOAuthRoutes:
    @pytest.mark.parametrize("endpoint", ["par", "token"])
    def test_an_unknown_bank_is_an_oauth_invalid_request(
        self, api: TestClient, endpoint: str
    ) -> None:
        """Was a kouza 404 body: an OAuth client expects RFC 6749 §5.2's shape."""
        response = api.post(
            f"/v1/banks/9999/oauth/{endpoint}", data={"grant_type": "authorization_code"}
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        assert set(response.json()) == {"error", "error_description"}
        assert response.json()["error"] == "invalid_request"

    def test_a_malformed_form_is_an_oauth_invalid_request(self, api: TestClient) -> None:
        response = api.post(
            "/v1/banks/0001/oauth/token",
            content=b"--x\r\nbroken",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request", response.text
        assert set(response.json()) == {"error", "error_description"}

    def test_a_method_not_served_is_405_not_invalid_request(self, api: TestClient) -> None:
        """Was 400 invalid_request: an unknown method is no OAuth error (RFC 9110 §15.5.6)."""
        response = api.request("TRACE", "/v1/banks/0001/oauth/token")
        assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed")
        assert response.headers["allow"] == "POST"


def test_every_text_field_refuses_control_characters(bank_rt: BankRuntime) -> None:
    _, secret = make_client(bank_rt)
    basic = b64encode(f"kouza-wallet:{secret}".encode()).decode()
    credentials = [{"Authorization": f"Bearer {STAFF_TOKEN}"}, {"Authorization": f"Basic {basic}"}]
    assert check_app(create_bank_app(bank_rt), credentials) > 10
