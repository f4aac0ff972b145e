"""FastAPI dependencies of the bank API: runtime, operator-client and staff authentication.

Operator clients authenticate in one of two ways, both decided in :func:`get_client`:

* legacy links: the client id and secret, as HTTP Basic (``client_id:client_secret``) or as a
  bearer token (the secret alone);
* ``oauth`` links: ``Authorization: DPoP <access token>`` plus a ``DPoP`` proof of possession
  (RFC 9449 §7: signed by the key the token is bound to, for this method and URL, with ``ath``,
  a fresh server nonce and an unused ``jti``). Such a token stands for one link: on a route
  with a ``link_id`` it must be that link's, and besides link routes it is accepted only on the
  client's transfer lookups. Errors answer 401 with ``WWW-Authenticate: DPoP``.

(``private_key_jwt`` authenticates the client on the OAuth PAR and token endpoints themselves,
``kouza.banks.bank.oauth.clients``.) The client is loaded in its own
short transaction and returned detached, so the request's own unit of work never waits on it
(see ``kouza.identity.dependencies`` for the SQLite reason).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kouza.banks.bank.core import core
from kouza.banks.bank.errors import InvalidClient, InvalidStaffToken
from kouza.banks.bank.models import OperatorClient
from kouza.banks.bank.oauth.errors import (
    InvalidDPoPProof,
    InvalidToken,
    OAuthError,
    resource_error,
)
from kouza.banks.bank.oauth.grants import access_token_grant
from kouza.banks.bank.oauth.proofs import htu_of, verify_dpop_proof
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
    """The calling operator client (client secret, or a DPoP-bound access token)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "dpop":
        return _dpop_client(runtime, request, value.strip())
    client_id, secret = _client_credentials(request)
    with runtime.db.unit_of_work() as session:
        return core.authenticate_client(session, client_id=client_id, secret=secret)


def _dpop_client(runtime: BankRuntime, request: Request, token: str) -> OperatorClient:
    proofs = request.headers.getlist("DPoP")
    with runtime.db.unit_of_work() as session:
        try:
            grant = access_token_grant(session, token)
            _check_route(request, grant.link_id)
            if len(proofs) != 1:
                raise InvalidDPoPProof("send exactly one DPoP proof with a DPoP access token")
            proof = verify_dpop_proof(session, proofs[0], method=request.method,
                                      url=htu_of(runtime.settings.issuer, request.url.path),
                                      access_token=token)
            if proof.jkt != grant.jkt:
                raise InvalidDPoPProof("the DPoP proof is not signed by the token's key")
        except OAuthError as error:
            raise resource_error(error) from None
        return grant.client


def _check_route(request: Request, link_id: str) -> None:
    raw = request.path_params.get("link_id")
    if raw is None:
        if request.url.path.startswith("/v1/transfers"):
            return
        raise InvalidToken("a DPoP access token is only for its link's routes")
    try:
        same = uuid.UUID(str(raw)) == uuid.UUID(link_id)
    except ValueError:
        same = False
    if not same:
        raise InvalidToken("this access token is for another link")


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
