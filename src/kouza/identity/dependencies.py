"""FastAPI dependencies that authenticate customers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from kouza.identity.errors import InvalidToken
from kouza.identity.models import User
from kouza.identity.service import identity
from kouza.runtime import RuntimeDep, SessionDep, get_runtime

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


def get_session_user(session: SessionDep, token: BearerToken) -> User:
    """The caller, authenticated in the request's own unit of work (:data:`SessionDep`): for an
    endpoint whose work is all in that unit of work, one transaction instead of two."""
    return identity.authenticate(session, token)


SessionUser = Annotated[User, Depends(get_session_user)]
""":data:`CurrentUser` for endpoints that work in :data:`SessionDep` (never for one that opens
units of work of its own, e.g. an idempotent write: on SQLite the request's open transaction
would hold the write lock they wait for)."""


class TokenCaller:
    """A bearer token authenticated *inside* the unit of work that does the request's work.

    An idempotent write runs its key's record, its work and its answer in one transaction
    (:func:`kouza.kit.web.run_idempotent`); authenticating there too spares the request the
    separate transaction :data:`CurrentUser` costs (on SQLite a ``BEGIN IMMEDIATE`` of its own).
    :meth:`scope` authenticates and names the caller's key space; :attr:`user` is the caller
    from then on (attached to that unit of work's session).
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self._user: User | None = None

    def scope(self, session: Session) -> str:
        """Authenticate in ``session``; the caller's idempotency key space (``user:<id>``)."""
        self._user = identity.authenticate(session, self.token)
        return f"user:{self._user.id}"

    def detached_user(self, session: Session) -> User:
        """Authenticate in ``session`` and hand the caller back detached from it, as
        :data:`CurrentUser` does (it outlives that unit of work, even a rolled-back one)."""
        self.scope(session)
        session.expunge(self.user)
        return self.user

    def authenticate_now(self, request: Request) -> None:
        """Check the token in a transaction of its own (an undecodable body: 401 before 422)."""
        with get_runtime(request).db.unit_of_work() as session:
            identity.authenticate(session, self.token)

    @property
    def user(self) -> User:
        if self._user is None:
            raise RuntimeError("TokenCaller.user before TokenCaller.scope authenticated it")
        return self._user


async def get_token_caller(token: BearerToken) -> TokenCaller:
    return TokenCaller(token)


AuthenticatedInUnitOfWork = Annotated[TokenCaller, Depends(get_token_caller)]
"""The caller, authenticated by the endpoint in its own unit of work (:class:`TokenCaller`)."""
