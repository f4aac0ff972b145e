"""One error hierarchy for all of kouza.

Every error a caller can cause is a :class:`KouzaError` with a message meant for that caller and
an HTTP status. The API renders them with one handler (``kouza.api.app``); the CLI prints the
message and exits with a non-zero code. Domains subclass the families below in their own
``errors.py``; nothing raises a bare ``KouzaError``::

    KouzaError (400)
    ├── BadRequest (400)            malformed or out-of-range input
    │   ├── ledger.UnbalancedEntry, ledger.InvalidAmount
    │   └── wallet.InvalidQr, wallet.SelfTransfer, ...
    ├── Unauthorized (401)          no or bad credentials
    ├── Forbidden (403)             authenticated, but not allowed (not the owner, wrong level)
    ├── NotFound (404)              unknown id (also used for ids the caller does not own)
    ├── Conflict (409)              state conflict
    │   ├── IdempotencyConflict     same key, different request
    │   ├── IdempotencyInFlight     same key, first request still running
    │   └── ledger.HoldNotPending, ledger.AlreadyReversed, ...
    ├── Unprocessable (422)         well-formed, refused by a business rule
    │   ├── ledger.InsufficientFunds
    │   └── wallet.LimitExceeded, ...
    ├── TooManyRequests (429)       throttled
    └── ServiceUnavailable (503)    a required provider is not configured or not reachable
"""

from __future__ import annotations

from typing import Any, ClassVar


class KouzaError(Exception):
    """Base of every error a caller can cause; carries a message and an HTTP status."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "error"
    public_details: ClassVar[frozenset[str] | None] = None
    """The ``details`` keys the caller may see (``None``: all). Others stay for kouza's own use
    (e.g. the risk rules that fired: operators see them, customers only a reference)."""

    def __init__(self, message: str, *, keep_changes: bool = False, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.keep_changes = keep_changes
        """Commit the unit of work before reporting (e.g. to count a failed attempt)."""

    @property
    def shown_details(self) -> dict[str, Any]:
        """The details the caller is shown (see :attr:`public_details`)."""
        if self.public_details is None:
            return self.details
        return {k: v for k, v in self.details.items() if k in self.public_details}

    def to_dict(self) -> dict[str, Any]:
        """The error's code, message and shown details (the API wraps them in a problem)."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.shown_details:
            body["details"] = self.shown_details
        return body


class BadRequest(KouzaError):
    status_code = 400
    code = "bad_request"


class Unauthorized(KouzaError):
    status_code = 401
    code = "unauthorized"


class Forbidden(KouzaError):
    status_code = 403
    code = "forbidden"


class NotFound(KouzaError):
    status_code = 404
    code = "not_found"


class Conflict(KouzaError):
    status_code = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class IdempotencyInFlight(Conflict):
    code = "idempotency_in_flight"


class Unprocessable(KouzaError):
    status_code = 422
    code = "unprocessable"


class TooManyRequests(KouzaError):
    status_code = 429
    code = "too_many_requests"


class ServiceUnavailable(KouzaError):
    status_code = 503
    code = "service_unavailable"
