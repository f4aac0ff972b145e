"""FastAPI dependencies that authenticate operators (never customers)."""

from __future__ import annotations

import time
from typing import Annotated, Protocol, cast

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kouza.controls.errors import InvalidOperatorToken
from kouza.controls.models import Operator, OperatorRole
from kouza.controls.service import controls
from kouza.kit.security import keyed_hash
from kouza.runtime import RuntimeDep

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="OperatorToken",
    description="Operator token from `kouza operators create`",
)


OPERATOR_CACHE_SECONDS = 5.0
"""How long a verified operator token is trusted without a database look-up. Internal callers
(the risk endpoint at hundreds of requests a second) would otherwise pay a query per call; a
disabled operator is refused at most this long after being disabled."""


class OperatorCachePort(Protocol):
    """What :func:`get_operator` needs from the runtime (``kouza.assembly.KouzaRuntime``)."""

    operator_cache: dict[str, tuple[float, Operator]]
    """Verified operator tokens (keyed hash → when verified, operator)."""


def get_operator(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    """The calling operator, loaded in its own short transaction (see identity.dependencies)."""
    if credentials is None:
        raise InvalidOperatorToken("send 'Authorization: Bearer <operator token>'")
    cache = cast(OperatorCachePort, runtime).operator_cache
    key = keyed_hash(runtime.secret, credentials.credentials, purpose="operator-cache")
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < OPERATOR_CACHE_SECONDS:
        return hit[1]
    with runtime.db.unit_of_work() as session:
        operator = controls.authenticate(session, credentials.credentials)
    cache[key] = (time.monotonic(), operator)
    return operator


def get_staff(operator: Annotated[Operator, Depends(get_operator)]) -> Operator:
    """An analyst or an admin: a call-centre token is refused (403) outside the call-centre
    endpoints, which take :data:`CallCentreOperator` instead."""
    controls.require_role(operator, OperatorRole.ANALYST)
    return operator


def get_admin(operator: Annotated[Operator, Depends(get_operator)]) -> Operator:
    controls.require_role(operator, OperatorRole.ADMIN)
    return operator


CallCentreOperator = Annotated[Operator, Depends(get_operator)]
"""Any operator, the call centre's staff included: only the call-centre endpoints (account
look-up, enquiries, spend trace) take it."""
CurrentOperator = Annotated[Operator, Depends(get_staff)]
"""An analyst or an admin (every operator endpoint but the call centre's)."""
CurrentAdmin = Annotated[Operator, Depends(get_admin)]
