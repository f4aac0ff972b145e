"""OpenAPI ``responses=`` entries for kouza errors, so every endpoint documents its refusals."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kouza.errors import KouzaError


class ErrorRead(BaseModel):
    """The body of every error response."""

    error: str
    message: str
    details: dict[str, Any] | None = None


def error_responses(*errors: type[KouzaError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for an endpoint that can raise ``errors`` (grouped by status)."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        by_status.setdefault(error.status_code, []).append(error.code)
    return {
        status: {"model": ErrorRead, "description": "error: " + ", ".join(sorted(codes))}
        for status, codes in sorted(by_status.items())
    }
