"""FastAPI dependencies of the bank API: runtime, operator-client and staff authentication.

Operator clients authenticate with their client id and secret, as HTTP Basic
(``client_id:client_secret``) or as a bearer token (the secret alone). Everything that depends
on *how* a client authenticates is in :func:`get_client`; the ``private_key_jwt`` / DPoP
authentication of the OAuth work replaces that one function. The client is loaded in its own
short transaction and returned detached, so the request's own unit of work never waits on it
(see ``kouza.identity.dependencies`` for the SQLite reason).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kouza.banks.bank.core import core
from kouza.banks.bank.errors import InvalidClient, InvalidStaffToken
from kouza.banks.bank.models import OperatorClient
from kouza.banks.bank.runtime import BankRuntime
from kouza.kit.security import constant_time_equal

_bearer = HTTPBearer(auto_error=False, scheme_name="ClientSecret",
                     description="The client secret as a bearer token, or HTTP Basic "
                     "client_id:client_secret in the same Authorization header")
_staff = HTTPBearer(auto_error=False, scheme_name="StaffToken",
                    description="Branch-counter staff token (KOUZA_BANK_STAFF_TOKEN)")


def get_bank_runtime(request: Request) -> BankRuntime:
    runtime = request.app.state.bank_runtime
    assert isinstance(runtime, BankRuntime)
    return runtime


BankRuntimeDep = Annotated[BankRuntime, Depends(get_bank_runtime)]


def get_client(
    runtime: BankRuntimeDep,
    request: Request,
) -> OperatorClient:
    """The calling operator client (HTTP Basic or bearer client secret)."""
    client_id, secret = _client_credentials(request)
    with runtime.db.unit_of_work() as session:
        return core.authenticate_client(session, client_id=client_id, secret=secret)


def _client_credentials(request: Request) -> tuple[str | None, str]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidClient("malformed Basic credentials") from None
        client_id, separator, secret = decoded.partition(":")
        if separator and client_id and secret:
            return client_id, secret
    elif scheme.lower() == "bearer" and value:
        return None, value
    raise InvalidClient("send the client credentials as HTTP Basic or a bearer client secret")


def _openapi_client_scheme(
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Declares the client security scheme in OpenAPI (parsing is in :func:`get_client`)."""


def get_documented_client(
    client: Annotated[OperatorClient, Depends(get_client)],
    _schemes: Annotated[None, Depends(_openapi_client_scheme)],
) -> OperatorClient:
    return client


CurrentClient = Annotated[OperatorClient, Depends(get_documented_client)]


def require_staff(
    runtime: BankRuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_staff)],
) -> None:
    """Branch-counter routes need the configured staff token."""
    expected = runtime.settings.staff_token
    if not expected or credentials is None or not constant_time_equal(
        credentials.credentials, expected
    ):
        raise InvalidStaffToken("branch-counter routes need the staff bearer token")


StaffDep = Annotated[None, Depends(require_staff)]
