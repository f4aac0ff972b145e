"""FastAPI plumbing shared by every domain's endpoints (no business words).

The runtime lives on ``app.state.runtime``. :data:`SessionDep` gives an endpoint the unit of
work of its request: committed after the endpoint returns, rolled back if it raises.
:func:`run_idempotent` is the unit of work for writes that carry an ``Idempotency-Key``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from kouza.errors import KouzaError
from kouza.kit import idempotency
from kouza.kit.runtime import Runtime

M = TypeVar("M", bound=BaseModel)


def _describe(error: Any) -> dict[str, Any]:
    location = ".".join(str(part) for part in error.get("loc", ()))
    return {"field": location, "problem": error.get("msg", "invalid")}


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A request that failed validation: 422 with every problem, in kouza's error body."""
    assert isinstance(exc, RequestValidationError)
    problems = [_describe(error) for error in exc.errors()]
    message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or "invalid request"
    body = {"error": "validation_error", "message": message, "details": {"problems": problems}}
    return JSONResponse(body, status_code=422)


def kouza_error_handler(
    www_authenticate: str,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A handler rendering any KouzaError as its JSON body and status (401s get a challenge)."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KouzaError)
        headers = {"WWW-Authenticate": www_authenticate} if exc.status_code == 401 else {}
        retry_after = exc.details.get("retry_after")
        if exc.status_code == 429 and isinstance(retry_after, int):
            headers["Retry-After"] = str(retry_after)
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers or None)

    return handle


def get_runtime(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.db.unit_of_work() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def client_ip(request: Request) -> str:
    """The caller's IP address (the socket peer; a proxy setup would read X-Forwarded-For)."""
    return request.client.host if request.client else "0.0.0.0"


def run_idempotent(
    runtime: Runtime,
    *,
    scope: str,
    key: str,
    request_payload: Any,
    model: type[M],
    operation: Callable[[Session], M],
    status_code: int = 201,
) -> M:
    """Run ``operation`` once per (scope, key); replay its result on a retry of the same request."""
    idempotency.validate_key(key)
    fingerprint = idempotency.request_hash(request_payload)
    lease = timedelta(seconds=runtime.settings.idempotency_lease_seconds)
    replay = idempotency.claim(
        runtime.db, scope=scope, key=key, fingerprint=fingerprint, now=runtime.now(), lease=lease
    )
    if replay is not None:
        return model.model_validate(replay.body)
    try:
        with runtime.db.unit_of_work() as session:
            result = operation(session)
            idempotency.complete(
                session, scope=scope, key=key, status_code=status_code,
                body=result.model_dump(mode="json"),
            )
    except KouzaError:
        idempotency.release(runtime.db, scope=scope, key=key)
        raise
    return result
