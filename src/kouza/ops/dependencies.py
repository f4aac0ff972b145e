"""FastAPI dependencies that authenticate operators (never customers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kouza.kit.web import RuntimeDep
from kouza.ops.errors import InvalidOperatorToken
from kouza.ops.models import Operator, OperatorRole
from kouza.ops.service import ops

_bearer = HTTPBearer(auto_error=False, scheme_name="OperatorToken",
                     description="Operator token from `kouza operators create`")


def get_operator(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    """The calling operator, loaded in its own short transaction (see identity.dependencies)."""
    if credentials is None:
        raise InvalidOperatorToken("send 'Authorization: Bearer <operator token>'")
    with runtime.db.unit_of_work() as session:
        return ops.authenticate(session, credentials.credentials)


def get_admin(operator: Annotated[Operator, Depends(get_operator)]) -> Operator:
    ops.require_role(operator, OperatorRole.ADMIN)
    return operator


CurrentOperator = Annotated[Operator, Depends(get_operator)]
CurrentAdmin = Annotated[Operator, Depends(get_admin)]
