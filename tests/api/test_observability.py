"""The wallet's /metrics (requests per route template, the fraud desk's gauges read from the
database), its request ids, and its JSON log lines."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kouza.api.app import create_app
from kouza.controls.models import SwitchScope
from kouza.controls.switches import switches
from kouza.identity.service import identity
from kouza.kit.logs import configure_logging, mask, redact_secrets, reset_logging
from kouza.kit.metrics import sample_value
from kouza.kit.notify import MemoryMailbox
from kouza.kit.outbox import OutboxMessage
from kouza.kit.tracing import otlp_endpoint
from kouza.runtime import Runtime
from kouza.wallet.locks import locks
from tests.factories import PASSWORD, customer


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt)) as client:
        yield client


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line of the process, as the servers write them (JSON, DEBUG and up)."""
    stream = io.StringIO()
    configure_logging(log_format="json", level="DEBUG", stream=stream)
    yield stream
    reset_logging()


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def bearer(rt: Runtime, email: str) -> dict[str, str]:
    with rt.db.unit_of_work() as session:
        token = identity.login(session, email=email, password=PASSWORD)
    return {"Authorization": f"Bearer {token}"}


def scrape(api: TestClient) -> str:
    answer = api.get("/metrics")
    assert answer.status_code == 200, answer.text
    return answer.text


def test_requests_are_counted_by_route_template(
    api: TestClient, rt: Runtime, mailbox: MemoryMailbox
) -> None:
    someone = customer(rt, mailbox, device=False)
    auth = bearer(rt, someone.email)
    strangers = [uuid.uuid4() for _ in range(2)]
    assert api.get(f"/v1/wallets/{someone.wallet.id}", headers=auth).status_code == 200
    for wallet_id in strangers:
        assert api.get(f"/v1/wallets/{wallet_id}", headers=auth).status_code == 404
    assert api.get(f"/v1/wallets/{someone.wallet.id}").status_code == 401

    text = scrape(api)
    route = {"method": "GET", "route": "/v1/wallets/{wallet_id}"}
    requests = "kouza_http_requests_total"
    assert sample_value(text, requests, route | {"status": "200"}) == 1
    assert sample_value(text, requests, route | {"status": "404"}) == 2
    assert sample_value(text, requests, route | {"status": "401"}) == 1
    assert sample_value(text, "kouza_http_request_duration_seconds_count", route) == 4
    assert sample_value(text, "kouza_http_request_errors_total", route | {"status": "404"}) is None
    for wallet_id in [someone.wallet.id, *strangers]:
        assert str(wallet_id) not in text  # ids never become labels
    assert "/metrics" not in api.get("/openapi.json").text


def test_gauges_show_kill_switches_and_locked_wallets(
    api: TestClient, rt: Runtime, mailbox: MemoryMailbox
) -> None:
    someone = customer(rt, mailbox, device=False)
    text = scrape(api)
    for scope in SwitchScope:
        assert sample_value(text, "kouza_kill_switches_active", {"scope": scope.value}) == 0
    assert sample_value(text, "kouza_wallets_locked") == 0

    with rt.db.unit_of_work() as session:
        switches.set(
            session,
            scope=SwitchScope.BANK_LINKS,
            target="0125",
            active=True,
            actor="operator:a",
            reason="incident",
        )
        locks.lock(session, wallet_id=someone.wallet.id, actor="operator:a", reason="fraud")
    text = scrape(api)
    active = "kouza_kill_switches_active"
    assert sample_value(text, active, {"scope": "bank_links"}) == 1
    assert sample_value(text, active, {"scope": "all_links"}) == 0
    on = {"scope": "bank_links", "target": "0125"}
    assert sample_value(text, "kouza_kill_switch_on", on) == 1
    assert sample_value(text, "kouza_wallets_locked") == 1

    with rt.db.unit_of_work() as session:
        switches.set(
            session,
            scope=SwitchScope.BANK_LINKS,
            target="0125",
            active=False,
            actor="operator:a",
            reason="over",
        )
        locks.unlock(session, wallet_id=someone.wallet.id, actor="operator:a", reason="cleared")
    text = scrape(api)
    assert sample_value(text, active, {"scope": "bank_links"}) == 0
    assert sample_value(text, "kouza_kill_switch_on", on) is None
    assert sample_value(text, "kouza_wallets_locked") == 0


def test_outbox_backlog_counts_undelivered_messages(api: TestClient, rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        for channel in ("email", "email", "sms"):
            session.add(
                OutboxMessage(channel=channel, recipient="x", payload=None, created_at=rt.now())
            )
    text = scrape(api)
    assert sample_value(text, "kouza_outbox_backlog", {"channel": "email"}) == 2
    assert sample_value(text, "kouza_outbox_backlog", {"channel": "sms"}) == 1


def test_log_lines_are_json_with_the_request_id(
    api: TestClient, log_lines: io.StringIO, rt: Runtime, mailbox: MemoryMailbox
) -> None:
    someone = customer(rt, mailbox, device=False)
    auth = bearer(rt, someone.email)
    echoed = api.get(
        f"/v1/wallets/{someone.wallet.id}", headers=auth | {"X-Request-ID": "req-0001"}
    )
    assert echoed.headers["X-Request-ID"] == "req-0001"
    made = api.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["X-Request-ID"] != "bad id with spaces"

    lines = parsed(log_lines)
    access = [line for line in lines if line["logger"] == "kouza.access"]
    wallet, health = access
    assert (wallet["request_id"], wallet["route"], wallet["status"]) == (
        "req-0001",
        "/v1/wallets/{wallet_id}",
        200,
    )
    assert health["request_id"] == made.headers["X-Request-ID"]
    assert {"timestamp", "level", "event", "duration_ms"} <= set(wallet)
    assert str(someone.wallet.id) not in json.dumps(access)  # the template, not the path


def test_an_unhandled_error_is_logged_under_the_request_id_it_answers_with(
    rt: Runtime, log_lines: io.StringIO
) -> None:
    app = create_app(rt)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("the database caught fire")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom", headers={"X-Request-ID": "req-boom"})
    assert answer.status_code == 500 and answer.headers["X-Request-ID"] == "req-boom"
    (error,) = [line for line in parsed(log_lines) if line["level"] == "error"]
    assert error["request_id"] == "req-boom" and "/boom" in error["event"]
    assert "the database caught fire" in error["exception"]


class TestMasking:
    def test_secret_keys_are_masked_at_any_depth(self) -> None:
        event = redact_secrets(
            None,
            "info",
            {
                "event": "login",
                "password": "hunter2",
                "body": {"pin": "4321", "bank_code": "0125", "nested": [{"otp": "123456"}]},
                "Authorization": "Bearer abc",
                "client_assertion": "eyJhbGciOi.x.y",
                "status_code": 200,
            },
        )
        assert event["password"] == event["Authorization"] == "[redacted]"
        assert event["client_assertion"] == "[redacted]"
        assert event["body"] == {
            "pin": "[redacted]",
            "bank_code": "0125",
            "nested": [{"otp": "[redacted]"}],
        }
        assert event["status_code"] == 200

    def test_credentials_are_cut_out_of_text(self) -> None:
        jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        text = (
            f"Authorization: Bearer tok123 DPoP {jwt} url /cb?code=abc&state=xyz&bank_code=0125 "
            '{"password": "hunter2", "pin": "4321"} Basic a2V5OnNlY3JldA=='
        )
        masked = mask(text)
        for secret in ("tok123", jwt, "abc", "xyz", "hunter2", "4321", "a2V5OnNlY3JldA=="):
            assert secret not in masked, secret
        assert "bank_code=0125" in masked


def test_otlp_endpoint_accepts_a_collector_base_url() -> None:
    assert otlp_endpoint("http://collector:4318") == "http://collector:4318/v1/traces"
    assert otlp_endpoint("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert otlp_endpoint("https://otel.example/api/traces") == "https://otel.example/api/traces"
    assert otlp_endpoint("") is None
