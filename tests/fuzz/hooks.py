"""schemathesis hooks for ``python -m tests.fuzz``: a real credential for every security scheme.

The runner passes what it provisioned in ``KOUZA_FUZZ_*`` variables. Each operation gets the
credential of the scheme its OpenAPI ``security`` names, so the run walks every operation —
today's and those added later — without a list of endpoints:

* ``HTTPBearer`` (customers): a login token, logged in again after a 401 (the fuzzer may call
  ``POST /v1/auth/logout`` with it);
* ``OperatorToken``: an admin operator's token; ``StaffToken``: the bank's counter token;
* ``ClientAuth`` (bank API): a fresh ``private_key_jwt`` client assertion per request, signed by
  the wallet's key registered at the bank (assertions are single-use).

An unknown scheme is an error: a new scheme needs a credential here, or its operations would
only ever be fuzzed unauthenticated.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from joserfc import jwt
from joserfc.jwk import ECKey

ENV = "KOUZA_FUZZ_"


def _env(name: str) -> str:
    return os.environ.get(ENV + name, "")


class _Customer:
    """The customer's bearer token, logged in again once it stops working."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token = ""

    def token(self) -> str:
        with self._lock:
            if not self._token:
                response = httpx.post(
                    _env("WALLET_URL") + "/v1/auth/login",
                    json={"email": _env("CUSTOMER_EMAIL"), "password": _env("CUSTOMER_PASSWORD")},
                    timeout=30,
                )
                response.raise_for_status()
                self._token = response.json()["access_token"]
            return self._token

    def forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = ""


class _Client:
    """``private_key_jwt`` client assertions for the bank (``kouza.linking.keys``)."""

    def __init__(self) -> None:
        self._key: ECKey | None = None

    def assertion(self) -> str:
        if self._key is None:
            self._key = ECKey.import_key(json.loads(Path(_env("CLIENT_KEY_FILE")).read_text()))
        now = int(time.time())
        client_id = _env("CLIENT_ID")
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": _env("BANK_ISSUER"),
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode({"alg": "ES256", "kid": self._key.kid}, claims, self._key)


CUSTOMER = _Customer()
CLIENT = _Client()


def _schemes(operation: Any) -> list[str]:
    raw = operation.definition.raw
    requirements = raw.get("security", operation.schema.raw_schema.get("security", []))
    return [name for requirement in requirements for name in requirement]


def credential(scheme: str) -> str:
    """The bearer credential for ``scheme``."""
    if scheme == "HTTPBearer":
        return CUSTOMER.token()
    if scheme == "OperatorToken":
        return _env("OPERATOR_TOKEN")
    if scheme == "StaffToken":
        return _env("STAFF_TOKEN")
    if scheme == "ClientAuth":
        return CLIENT.assertion()
    raise LookupError(f"tests/fuzz/hooks.py has no credential for security scheme {scheme!r}")


@schemathesis.auth(refresh_interval=None, retry_on=[])
class Credentials:
    """Sets ``Authorization: Bearer …`` from the first scheme the operation requires."""

    def get(self, case: Any, context: Any) -> str | None:
        schemes = _schemes(context.operation)
        return credential(schemes[0]) if schemes else None

    def set(self, case: Any, data: str | None, context: Any) -> None:
        if data is not None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """A customer token that answered 401 is dropped: the next case logs in again."""
    if response.status_code == 401 and "HTTPBearer" in _schemes(case.operation):
        sent = (case.headers or {}).get("Authorization", "")
        CUSTOMER.forget(sent.removeprefix("Bearer "))


def _whole_numbers_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers_as_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_integers(item) for item in value]
    return value


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """Integers as JSON integers: kouza refuses ``100.0`` for an amount on purpose (money is
    ``int`` end to end; a float in a client's amount is a bug to surface, tests/wallet
    ``amount-as-whole-float``), while JSON Schema's ``integer`` admits it. Never a violation
    of any schema either way, so negative cases keep their meaning."""
    return _whole_numbers_as_integers(body)


@schemathesis.check
def schema_valid_requests_pass_validation(ctx: Any, response: Any, case: Any) -> None:
    """kouza's version of ``positive_data_acceptance`` (excluded by the runner): a request the
    schema admits may still be refused for a business reason — a documented kouza error such as
    ``insufficient_funds`` or ``refund_too_large``, some of which are 422 — but never as
    ``validation_error``, the code that says the schema and the service disagree.
    (``status_code_conformance`` checks that every status is documented.)"""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code < 400:
        return
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return
    if error == "validation_error":
        raise AssertionError(
            f"schema-valid request refused as validation_error "
            f"({response.status_code}): {response.text[:500]}"
        )


@schemathesis.serializer("application/jose")
def jose(context: Any, value: Any) -> dict[str, Any]:
    """A compact JWS is text: send the generated string as it is."""
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": str(value).encode("utf-8")}
