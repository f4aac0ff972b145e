"""OpenAPI for kouza's error responses: every endpoint documents its refusals.

Errors are RFC 9457 problem details (``application/problem+json``, :class:`Problem`).
:func:`error_responses` builds an endpoint's ``responses=`` from the kouza errors it can raise;
:func:`document_problems` then rewrites the generated document of a whole app so that what
FastAPI itself answers — 422 for a request that fails validation, 413 for a body over the limit,
401 where a security scheme is required — is documented with the same body on every operation.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from kouza.errors import KouzaError
from kouza.kit.text import JSON_VALUE, JSON_VALUE_SCHEMA, SINGLE_LINE_PATTERN

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"


class Problem(BaseModel):
    """The body of every error response: RFC 9457 problem details with kouza's extensions."""

    type: str = Field(description="urn:kouza:problem:<error>")
    title: str = Field(description="The HTTP status phrase")
    status: int
    detail: str = Field(description="What went wrong, for the caller")
    error: str = Field(description="kouza's error code (stable, machine-readable)")
    message: str = Field(description="Same as detail (kept for older clients)")
    details: dict[str, Any] | None = Field(
        default=None, description="Facts about this error, per code"
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For validation_error: each {field, problem}"
    )


ErrorRead = Problem
"""The former name of :class:`Problem`."""


def problem_content() -> dict[str, Any]:
    """The ``content`` of a documented error response."""
    return {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}


def error_responses(*errors: type[KouzaError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for an endpoint that can raise ``errors`` (grouped by status)."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        by_status.setdefault(error.status_code, []).append(error.code)
    return {
        status: {
            "description": "error: " + ", ".join(sorted(set(codes))),
            "content": problem_content(),
        }
        for status, codes in sorted(by_status.items())
    }


_IMPLICIT = {
    "422": "error: validation_error (a parameter or the body does not match this schema; "
    "an undecodable or non-JSON body too)",
    "413": "error: content_too_large (request body over the configured limit)",
    "401": "error: invalid_token (no or bad credentials)",
    "400": "error: bad_request (Idempotency-Key not 1-255 printable ASCII characters)",
}
IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7E]{1,255}$"
"""What ``kouza.kit.idempotency.validate_key`` accepts (else 400 ``bad_request``)."""
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def _add(responses: dict[str, Any], status: str) -> None:
    entry = responses.setdefault(status, {"description": _IMPLICIT[status]})
    content = entry.setdefault("content", {})
    json_schema = content.get("application/json", {}).get("schema", {})
    if json_schema.get("$ref", "").endswith(_FASTAPI_VALIDATION):
        del content["application/json"]
        entry["description"] = _IMPLICIT[status]
    elif status in ("422", "400") and _IMPLICIT[status].split()[1] not in entry["description"]:
        entry["description"] += "; " + _IMPLICIT[status].removeprefix("error: ")
    content.setdefault(PROBLEM_JSON, {"schema": {"$ref": PROBLEM_REF}})


def _text_only(schema: dict[str, Any]) -> None:
    """Document the path/query check of ``kouza.kit.web.RefuseUnsafeText`` on a free string."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string" and not {"pattern", "format", "enum"} & set(option):
            option["pattern"] = SINGLE_LINE_PATTERN


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for parameter in operation.get("parameters", []):
        if parameter.get("in") in ("path", "query"):
            _text_only(parameter.get("schema", {}))
        if parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_KEY:
            parameter.get("schema", {})["pattern"] = IDEMPOTENCY_KEY_PATTERN
            _add(responses, "400")
    # Any request may carry a query string with a control character: 422 everywhere.
    _add(responses, "422")
    if "requestBody" in operation:
        _add(responses, "413")
    if operation.get("security") and not any(s in responses for s in ("401", "403")):
        _add(responses, "401")


def document_problems(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document the problem responses every operation can give."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    _document_operation(operation)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas[JSON_VALUE] = JSON_VALUE_SCHEMA  # what kit.text.JsonObject refers to
        for name in _FASTAPI_VALIDATION:
            schemas.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
