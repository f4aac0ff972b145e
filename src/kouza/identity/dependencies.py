"""FastAPI dependencies that authenticate customers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kouza.identity.errors import InvalidToken
from kouza.identity.models import User
from kouza.identity.service import identity
from kouza.runtime import RuntimeDep

_bearer = HTTPBearer(auto_error=False, description="Token from POST /v1/auth/login")


def get_bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidToken("send 'Authorization: Bearer <token>' (log in first)")
    return credentials.credentials


BearerToken = Annotated[str, Depends(get_bearer_token)]


def get_current_user(runtime: RuntimeDep, token: BearerToken) -> User:
    """The caller, loaded in a short transaction of its own and returned detached.

    Keeping authentication out of the request's unit of work matters on SQLite, where an open
    transaction holds the database's write lock: an idempotent write claims its key on another
    connection, and must not wait behind its own request.
    """
    with runtime.db.unit_of_work() as session:
        return identity.authenticate(session, token)


CurrentUser = Annotated[User, Depends(get_current_user)]
