"""FastAPI plumbing shared by every domain's endpoints (no business words).

The runtime lives on ``app.state.runtime``. :data:`SessionDep` gives an endpoint the unit of
work of its request: committed after the endpoint returns, rolled back if it raises.
:func:`run_idempotent` is the unit of work for writes that carry an ``Idempotency-Key``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from kouza.errors import KouzaError
from kouza.kit import idempotency
from kouza.kit.runtime import Runtime

M = TypeVar("M", bound=BaseModel)


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
