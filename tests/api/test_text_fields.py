"""Every text field of every API refuses control characters and bidi overrides with a 422.

The test walks the OpenAPI of the wallet API (customer, operator, risk and bank-linking
routes) and of the bank API, builds a valid-looking body for each operation from its schema,
puts a NUL (then a U+202E) into one string field at a time, and expects 422 — on the old code
that was a 500 on PostgreSQL (``NUL`` cannot be stored) and a stored NUL on SQLite. No
credentials are sent: authentication comes first only for undecodable bodies, and every
operation validates its body before running, so the 422 must come before anything is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kouza.api.app import create_app
from kouza.controls.models import OperatorRole
from kouza.controls.service import controls
from kouza.identity.service import identity
from kouza.kit.notify import MemoryMailbox
from kouza.kit.text import MULTI_LINE_PATTERN, SINGLE_LINE_PATTERN, Note, Text
from kouza.runtime import Runtime
from tests.factories import PASSWORD, customer

BAD = ["\x00", "\u202e", "\x85"]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def _sample(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        return _sample(spec, schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: _sample(spec, sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_sample(spec, schema.get("items", {}))]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "string":
        return "a" * max(1, schema.get("minLength", 1))
    return None


def _string_paths(
    spec: dict[str, Any], schema: dict[str, Any], sample: Any, path: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        schema = _resolve(spec, schema["anyOf"][0])
    if schema.get("type") == "object" and isinstance(sample, dict):
        for name, sub in schema.get("properties", {}).items():
            yield from _string_paths(spec, sub, sample[name], (*path, name))
    elif schema.get("type") == "array" and isinstance(sample, list):
        yield from _string_paths(spec, schema.get("items", {}), sample[0], (*path, 0))
    elif schema.get("type") == "string" and "enum" not in schema and "format" not in schema:
        yield path


def _poisoned(sample: Any, path: tuple[Any, ...], bad: str) -> Any:
    if not path:
        return "a" + bad
    copy = dict(sample) if isinstance(sample, dict) else list(sample)
    copy[path[0]] = _poisoned(sample[path[0]], path[1:], bad)
    return copy


def _json_operations(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    spec = app.openapi()
    for url, item in spec["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                yield url, method, content["application/json"]["schema"], spec


def _fill(url: str) -> str:
    return (
        url.replace("{bank_code}", "0001")
        .replace("{branch_code}", "001")
        .replace("{number}", "1234567")
        .replace("{action}", "suspend")
        .replace("{code}", "x")
        .replace("{client_id}", "c")
        .replace("_id}", "}")
        .replace("{", "00000000-0000-4000-8000-00000000000")
        .replace("}", "1")
    )


def check_app(app: FastAPI, credentials: list[dict[str, str]]) -> int:
    """Poison each string field of each JSON body, sent with the first of ``credentials`` the
    route accepts; returns how many poisoned requests were refused with 422."""
    checked = 0
    with TestClient(app, raise_server_exceptions=False) as client:
        for url, method, schema, spec in _json_operations(app):
            sample = _sample(spec, schema)
            for path in _string_paths(spec, schema, sample):
                for bad in BAD:
                    for headers in [*credentials, {}]:
                        response = client.request(
                            method,
                            _fill(url),
                            json=_poisoned(sample, path, bad),
                            headers={"Idempotency-Key": "k", **headers},
                        )
                        if response.status_code not in (401, 403):
                            break
                    where = (method, url, path, repr(bad), response.text[:200])
                    assert response.status_code == 422, where
                    assert response.json()["error"] == "validation_error", where
                    checked += 1
    return checked


class TestEveryTextField:
    def test_wallet_api(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        alice = customer(rt, mailbox)
        with rt.db.unit_of_work() as session:
            token = identity.login(session, email=alice.email, password=PASSWORD)
            _, admin = controls.create_operator(
                session, name="admin", role=OperatorRole.ADMIN, actor="test"
            )
        checked = check_app(
            create_app(rt),
            [{"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {admin}"}],
        )
        assert checked > 150

    def test_the_types(self) -> None:
        from pydantic import TypeAdapter

        assert TypeAdapter(Text).validate_python("山田 太郎 O'Brien") == "山田 太郎 O'Brien"
        assert TypeAdapter(Note).validate_python("line 1\n\tline 2") == "line 1\n\tline 2"
        for bad in ["a\x00", "a\n", "a\r", "\u202eevil", "\u2066x", "\x9b", "\x7f"]:
            with pytest.raises(ValueError):
                TypeAdapter(Text).validate_python(bad)
        for bad in ["a\x00", "a\r\n", "\u202eevil"]:
            with pytest.raises(ValueError):
                TypeAdapter(Note).validate_python(bad)
        assert SINGLE_LINE_PATTERN != MULTI_LINE_PATTERN


class TestQueryAndPath:
    def test_a_nul_in_a_query_or_path_is_422(self, rt: Runtime) -> None:
        with TestClient(create_app(rt)) as client:
            for url in [
                "/v1/ops/ledger/accounts/a%00b",
                "/health?x=%E2%80%AE",
                "/v1/wallets/x%00/statement?before=1",
            ]:
                response = client.get(url)
                assert response.status_code == 422, (url, response.text)
                assert response.json()["error"] == "validation_error"

    def test_an_id_beyond_64_bits_is_422(self, rt: Runtime, mailbox: MemoryMailbox) -> None:
        """Was a 500: ?before=2**63 overflowed the BIGINT comparison."""
        alice = customer(rt, mailbox)
        with rt.db.unit_of_work() as session:
            token = identity.login(session, email=alice.email, password=PASSWORD)
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            url = f"/v1/wallets/{alice.wallet.id}/statement"
            auth = {"Authorization": f"Bearer {token}"}
            for before in [2**63, 10**30]:
                response = client.get(url, params={"before": before}, headers=auth)
                assert response.status_code == 422, response.text
            assert client.get(url, params={"before": 2**63 - 1}, headers=auth).status_code == 200
