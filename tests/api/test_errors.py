"""One error shape on the wallet API: RFC 9457 problems for every refusal, documented in the
OpenAPI of every operation; bodies over the size limit refused; docs served without a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kouza.api.app import create_app
from kouza.kit.clock import ManualClock
from kouza.kit.notify import MemoryMailbox
from kouza.runtime import Runtime
from tests.conftest import make_runtime
from tests.factories import customer
from tests.problems import problem

PROBLEM = "application/problem+json"
UNKNOWN = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        yield client


def assert_problem(response: object, status: int, error: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"urn:kouza:problem:{error}"
    assert (body["status"], body["error"]) == (status, error)
    assert body["detail"] == body["message"] and body["title"]
    return body


class TestProblems:
    def test_unknown_route(self, client: TestClient) -> None:
        response = client.get("/v1/nothing-here")
        assert response.json() == problem(404, "not_found", "no such resource")
        assert response.headers["content-type"] == PROBLEM

    def test_wrong_method(self, client: TestClient) -> None:
        response = client.delete("/health")
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET"

    def test_allow_lists_every_route_of_the_path(self, client: TestClient) -> None:
        # GET and POST /v1/wallets are two routes: Starlette's 405 named only the first's method
        response = client.request("OPTIONS", "/v1/wallets")
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET, POST"

    def test_kouza_errors(self, client: TestClient) -> None:
        response = client.get("/v1/wallets")
        body = assert_problem(response, 401, "invalid_token")
        assert body == problem(
            401, "invalid_token", "send 'Authorization: Bearer <token>' (log in first)"
        )
        assert response.headers["www-authenticate"] == "Bearer"

    def test_validation_errors_list_each_problem(self, client: TestClient) -> None:
        response = client.post("/v1/auth/signup", json={"email": "a@example.jp"})
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"] == [{"field": "body.password", "problem": "Field required"}]

    def test_undecodable_json(self, client: TestClient) -> None:
        response = client.post(
            "/v1/auth/signup", content=b'{"email": ', headers={"content-type": "application/json"}
        )
        body = assert_problem(response, 422, "validation_error")
        assert "JSON decode error" in str(body["detail"])

    def test_a_body_that_is_not_utf8_is_422(self, client: TestClient) -> None:
        """Found by schemathesis: FastAPI answered 400 "There was an error parsing the body",
        a status no operation documents."""
        response = client.post(
            "/v1/auth/signup",
            content=b'{"email": "\xff"}',
            headers={"content-type": "application/json"},
        )
        assert assert_problem(response, 422, "validation_error")["detail"] == (
            "body: not UTF-8 JSON"
        )

    def test_wrong_content_type_is_422_and_says_so(self, client: TestClient) -> None:
        response = client.post(
            "/v1/auth/signup",
            content=b"email=a@example.jp",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        body = assert_problem(response, 422, "validation_error")
        assert str(body["detail"]).startswith(
            "body: send the body as application/json, not application/x-www-form-urlencoded"
        )

    def test_authentication_comes_before_the_body(self, client: TestClient) -> None:
        """FastAPI decodes the body before any dependency: on the old code an undecodable
        body from a caller without a token got 422, telling them nothing about the 401."""
        for headers in ({}, {"Authorization": "Bearer forged"}):
            response = client.post(
                f"/v1/wallets/{UNKNOWN}/transfers",
                content=b"{nope",
                headers={"content-type": "application/json", "Idempotency-Key": "k", **headers},
            )
            assert_problem(response, 401, "invalid_token")

    def test_an_authenticated_bad_body_is_still_422(
        self, client: TestClient, rt: Runtime, mailbox: MemoryMailbox
    ) -> None:
        alice = customer(rt, mailbox)
        login = client.post(
            "/v1/auth/login",
            json={"email": alice.email, "password": "correct horse battery staple"},
        )
        token = login.json()["access_token"]
        response = client.post(
            f"/v1/wallets/{alice.wallet.id}/transfers",
            content=b"{nope",
            headers={
                "content-type": "application/json",
                "Idempotency-Key": "k",
                "Authorization": f"Bearer {token}",
            },
        )
        assert_problem(response, 422, "validation_error")

    def test_a_bug_is_a_500_problem_without_a_trace(self, rt: Runtime) -> None:
        app = create_app(rt)

        @app.get("/boom")
        def boom() -> None:
            raise RuntimeError("secret internals")

        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/boom")
        assert response.json() == problem(
            500, "internal_error", "internal error; it has been logged"
        )
        assert "secret" not in response.text


class TestBodyLimit:
    def test_a_body_over_64_kib_is_413(self, client: TestClient) -> None:
        padding = "x" * (64 * 1024)
        response = client.post(
            "/v1/auth/signup", json={"email": "a@example.jp", "password": padding}
        )
        assert_problem(response, 413, "content_too_large")

    def test_a_streamed_body_is_counted_without_content_length(self, client: TestClient) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"email": "a@example.jp", "password": "'
            for _ in range(100):
                yield b"x" * 1024
            yield b'"}'

        response = client.post(
            "/v1/auth/signup", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "content_too_large")

    def test_the_limit_is_a_setting(
        self, db_url: str, tmp_path: Path, clock: ManualClock, mailbox: MemoryMailbox
    ) -> None:
        small = make_runtime(db_url, tmp_path, clock, mailbox, max_request_body_bytes=100)
        try:
            with TestClient(create_app(small)) as client:
                response = client.post(
                    "/v1/auth/signup", json={"email": "a@example.jp", "password": "p" * 100}
                )
            assert_problem(response, 413, "content_too_large")
        finally:
            small.db.dispose()

    def test_a_body_under_the_limit_passes(self, client: TestClient) -> None:
        response = client.post(
            "/v1/auth/signup", json={"email": "a@example.jp", "password": "x" * 100}
        )
        assert response.json()["error"] == "weak_password"  # read and checked


class TestOpenApi:
    def test_every_error_response_is_a_documented_problem(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        assert "Problem" in spec["components"]["schemas"]
        assert "HTTPValidationError" not in spec["components"]["schemas"]
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                for status, response in operation["responses"].items():
                    if int(status) < 400:
                        continue
                    assert response["content"] == {
                        PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }, (path, method, status)
                if "requestBody" in operation:
                    assert {"413", "422"} <= set(operation["responses"]), (path, method)
                if operation.get("security"):
                    assert "401" in operation["responses"], (path, method)


class TestOfflineDocs:
    @pytest.mark.parametrize("page", ["/docs", "/redoc"])
    def test_pages_reference_only_their_own_assets(self, client: TestClient, page: str) -> None:
        response = client.get(page)
        assert response.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
        urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", response.text)
        assert urls, response.text
        assert not [u for u in urls if "//" in u], urls  # no host: nothing from a CDN
        for url in urls:
            assert client.get(url).status_code == 200, url
