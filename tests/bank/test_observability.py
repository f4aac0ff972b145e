"""The bank's /metrics (requests per route template, the legacy form's attempts and refusals by
bank and true reason, debits) and its request ids."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kouza.bank.app import create_bank_app
from kouza.bank.runtime import BankRuntime
from kouza.kit.metrics import sample_value
from tests.bank.helpers import Holder, make_bank, make_client, make_holder
from tests.bank.test_linking import form_body


@pytest.fixture
def api(bank_rt: BankRuntime) -> Iterator[TestClient]:
    with TestClient(create_bank_app(bank_rt)) as client:
        yield client


@pytest.fixture
def holder(bank_rt: BankRuntime) -> Holder:
    make_bank(bank_rt)
    return make_holder(bank_rt, balance=500_000)


def scrape(api: TestClient) -> str:
    answer = api.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return answer.text


def requests(text: str, method: str, route: str, status: str) -> float | None:
    labels = {"method": method, "route": route, "status": status}
    return sample_value(text, "kouza_http_requests_total", labels)


def test_requests_are_counted_per_route_template_not_per_raw_path(
    api: TestClient, bank_rt: BankRuntime, holder: Holder
) -> None:
    auth = make_client(bank_rt)
    for _ in range(3):
        assert api.get(f"/v1/links/{uuid.uuid4()}", auth=auth).status_code == 404
    assert api.get("/health").status_code == 200
    assert api.get("/no/such/page").status_code == 404

    text = scrape(api)
    assert requests(text, "GET", "/v1/links/{link_id}", "404") == 3
    assert requests(text, "GET", "/health", "200") == 1
    assert requests(text, "GET", "unmatched", "404") == 1
    assert "/v1/links/" + "0" not in text and "/no/such/page" not in text  # no raw path
    duration = {"method": "GET", "route": "/v1/links/{link_id}"}
    assert sample_value(text, "kouza_http_request_duration_seconds_count", duration) == 3
    total = sample_value(text, "kouza_http_request_duration_seconds_sum", duration)
    assert total is not None and total > 0


def test_legacy_attempts_refusals_and_debits_are_counted(
    api: TestClient, bank_rt: BankRuntime, holder: Holder
) -> None:
    auth = make_client(bank_rt)
    url = "/v1/banks/0125/legacy-links"
    wrong = api.post(url, auth=auth, json=form_body(holder, pin="0000"))
    unknown = api.post(url, auth=auth, json=form_body(holder, account_number="7654321"))
    assert (wrong.status_code, unknown.status_code) == (422, 422)
    linked = api.post(url, auth=auth, json=form_body(holder))
    assert linked.status_code == 201, linked.text
    link_id = linked.json()["id"]
    key = uuid.uuid4().hex
    for _ in range(2):  # the second is a replay of the first
        answer = api.post(
            f"/v1/links/{link_id}/debits",
            auth=auth,
            json={"amount": 12_000},
            headers={"Idempotency-Key": key},
        )
        assert answer.status_code in (200, 201), answer.text
    too_much = api.post(
        f"/v1/links/{link_id}/debits",
        auth=auth,
        json={"amount": 900_000},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert 400 <= too_much.status_code < 500, too_much.text

    text = scrape(api)
    bank = {"bank": "0125"}
    assert sample_value(text, "kouza_bank_legacy_link_attempts_total", bank) == 3
    refusals = "kouza_bank_legacy_link_refusals_total"
    assert sample_value(text, refusals, bank | {"reason": "wrong_pin"}) == 1
    assert sample_value(text, refusals, bank | {"reason": "unknown_account"}) == 1
    assert sample_value(text, refusals, bank | {"reason": "linked"}) is None
    debits = "kouza_bank_debits_total"
    assert sample_value(text, debits, {"outcome": "executed"}) == 1
    assert sample_value(text, debits, {"outcome": "replayed"}) == 1
    assert sample_value(text, debits, {"outcome": too_much.json()["error"]}) == 1
    assert sample_value(text, "kouza_bank_debited_yen_total") == 12_000


def test_a_well_formed_request_id_is_kept_and_a_bad_one_replaced(api: TestClient) -> None:
    kept = api.get("/health", headers={"X-Request-ID": "wallet-req.42"})
    assert kept.headers["X-Request-ID"] == "wallet-req.42"
    forged = api.get("/health", headers={"X-Request-ID": 'x" injected="1'})
    assert forged.headers["X-Request-ID"] != 'x" injected="1'
    assert len(forged.headers["X-Request-ID"]) == 32
    fresh = api.get("/health")
    assert len(fresh.headers["X-Request-ID"]) == 32


def test_metrics_can_be_turned_off(bank_rt: BankRuntime) -> None:
    bank_rt.settings.metrics = False
    with TestClient(create_bank_app(bank_rt)) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/health").headers["X-Request-ID"]
