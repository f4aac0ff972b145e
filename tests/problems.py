"""The error bodies kouza's APIs answer (RFC 9457 problems), for exact assertions."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


def problem(code: int, error: str, message: str, **details: Any) -> dict[str, Any]:
    """The body of a kouza error: HTTP status ``code``, ``error``, ``message``, ``details``."""
    body: dict[str, Any] = {
        "type": f"urn:kouza:problem:{error}",
        "title": HTTPStatus(code).phrase,
        "status": code,
        "detail": message,
        "error": error,
        "message": message,
    }
    if details:
        body["details"] = details
    return body
