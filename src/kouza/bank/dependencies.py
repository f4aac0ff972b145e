"""FastAPI dependencies of the bank API: runtime, operator-client and staff authentication.

Operator clients authenticate in one of three ways (:class:`ClientAuthMethod`), decided in
:func:`get_client_auth`:

* ``private_key_jwt`` (RFC 7523 §2.2, the method of registered clients): ``Authorization:
  Bearer <client assertion>``, a JWT signed by a key of the client's registered JWKS with
  ``iss`` = ``sub`` = client id, ``aud`` = this deployment's issuer (``KOUZA_BANK_ISSUER``, the
  API's base URL), ``exp`` at most five minutes away and a ``jti`` accepted once
  (:func:`kouza.bank.oauth.proofs.verify_client_assertion`, shared replay cache);
* the client secret (legacy fallback, clients without a registered key): HTTP Basic
  ``client_id:client_secret`` or the secret alone as a bearer token;
* ``Authorization: DPoP <access token>`` plus a ``DPoP`` proof of possession (RFC 9449 §7:
  signed by the key the token is bound to, for this method and URL, with ``ath``, a fresh
  server nonce and an unused ``jti``). Such a token stands for one link: on a route with a
  ``link_id`` it must be that link's, and besides link routes it is accepted only on the
  client's transfer lookups. Errors answer 401 with ``WWW-Authenticate: DPoP``.

A link made through the OAuth flow is sender-constrained (:func:`require_link_credentials`,
ADR 0022): its debits, credits, status and revocation need its DPoP-bound token and a proof;
neither the secret nor a bare client assertion will do. Only a compensation credit (money into
the holder's account, usually after the link and so its token were revoked) also accepts the
client's ``private_key_jwt``. (``private_key_jwt`` alone authenticates the client on the OAuth
PAR and token endpoints themselves, ``kouza.bank.oauth.clients``.) The client is loaded
in its own short transaction and returned detached, so the request's own unit of work never
waits on it (see ``kouza.identity.dependencies`` for the SQLite reason).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from kouza.bank.core import core
from kouza.bank.errors import InvalidClient, InvalidStaffToken
from kouza.bank.models import OperatorClient
from kouza.bank.oauth.clients import oauth_clients
from kouza.bank.oauth.errors import (
    InvalidDPoPProof,
    InvalidToken,
    OAuthError,
    resource_error,
)
from kouza.bank.oauth.grants import access_token_grant, is_sender_constrained
from kouza.bank.oauth.proofs import htu_of, verify_dpop_proof
from kouza.bank.runtime import BankRuntime, bank_runtime_of
from kouza.kit.security import constant_time_equal

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ClientAuth",
    description="A private_key_jwt client assertion (aud: the bank's issuer) "
    "as a bearer token; legacy fallback: the client secret as a bearer token "
    "or HTTP Basic client_id:client_secret; on an OAuth link: 'DPoP <access "
    "token>' with a DPoP proof header",
)
_staff = HTTPBearer(
    auto_error=False,
    scheme_name="StaffToken",
    description="Branch-counter staff token (KOUZA_BANK_STAFF_TOKEN)",
)


def get_bank_runtime(request: Request) -> BankRuntime:
    runtime = request.app.state.bank_runtime
    assert isinstance(runtime, BankRuntime)
    return runtime


BankRuntimeDep = Annotated[BankRuntime, Depends(get_bank_runtime)]


class ClientAuthMethod(StrEnum):
    """How an operator client authenticated this request."""

    PRIVATE_KEY_JWT = "private_key_jwt"
    """A client assertion signed by the client's registered key (RFC 7523)."""
    CLIENT_SECRET = "client_secret"
    """The legacy client secret (Basic or bearer); refused on OAuth links."""
    DPOP = "dpop"
    """A link's DPoP-bound access token with a proof of possession (RFC 9449)."""


@dataclass(frozen=True)
class ClientAuth:
    """The calling operator client and how it proved it; ``link_id`` of a DPoP token."""

    client: OperatorClient
    method: ClientAuthMethod
    link_id: str | None = None


def get_client_auth(runtime: BankRuntimeDep, request: Request) -> ClientAuth:
    """The calling operator client and its authentication method (its own transaction)."""
    with runtime.db.unit_of_work() as session:
        return authenticate_client(session, request)


def authenticate_client(session: Session, request: Request) -> ClientAuth:
    """:func:`get_client_auth` in the caller's unit of work (a client assertion's or a DPoP
    proof's ``jti`` is remembered in it: the caller commits it even if its own work fails)."""
    runtime = bank_runtime_of(session)
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "dpop":
        return _dpop_client(session, runtime, request, value)
    if scheme.lower() == "bearer" and value.count(".") == 2:
        return _assertion_client(session, runtime, value)
    client_id, secret = _client_credentials(request)
    try:
        client = core.authenticate_client(session, client_id=client_id, secret=secret)
    except InvalidClient:
        if client_id is None and _is_access_token(session, secret):
            raise resource_error(
                InvalidToken(
                    "a DPoP-bound access token is sent as 'Authorization: DPoP' with a DPoP "
                    "proof, never as a bearer token"
                )
            ) from None
        raise
    return ClientAuth(client, ClientAuthMethod.CLIENT_SECRET)


class ClientInUnitOfWork:
    """The operator client, authenticated by the endpoint inside its own unit of work
    (:func:`authenticate_client`): a transfer's authentication and work are one transaction.
    An undecodable body has it checked at once (``kouza.kit.web.DeferredAuthentication``)."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def authenticate(self, session: Session) -> ClientAuth:
        return authenticate_client(session, self.request)

    def authenticate_now(self, request: Request) -> None:
        get_client_auth(get_bank_runtime(request), request)


def _is_access_token(session: Session, value: str) -> bool:
    try:
        access_token_grant(session, value)
    except InvalidToken:
        return False
    return True


def get_client(auth: Annotated[ClientAuth, Depends(get_client_auth)]) -> OperatorClient:
    """The calling operator client (any method; link routes check the method themselves)."""
    return auth.client


def _assertion_client(session: Session, runtime: BankRuntime, assertion: str) -> ClientAuth:
    audience = runtime.settings.issuer.rstrip("/")
    try:
        client = oauth_clients.authenticate_assertion(session, assertion, audiences=(audience,))
    except OAuthError as error:
        raise InvalidClient(f"private_key_jwt: {error.message}") from None
    return ClientAuth(client, ClientAuthMethod.PRIVATE_KEY_JWT)


def require_link_credentials(
    session: Session, auth: ClientAuth, link_id: uuid.UUID, *, compensation: bool = False
) -> None:
    """Refuse anything but the link's DPoP-bound token on a sender-constrained link.

    ``compensation``: a credit to a victim, where the client's ``private_key_jwt`` also does
    (the link's token usually died with the link). Legacy links take any client method."""
    if auth.method is ClientAuthMethod.DPOP or not is_sender_constrained(session, link_id):
        return
    if compensation and auth.method is ClientAuthMethod.PRIVATE_KEY_JWT:
        return
    raise resource_error(
        InvalidToken(
            "this link was made through the OAuth flow and is sender-constrained: use its "
            "DPoP-bound access token with a DPoP proof"
        )
    )


def _dpop_client(
    session: Session, runtime: BankRuntime, request: Request, token: str
) -> ClientAuth:
    proofs = request.headers.getlist("DPoP")
    try:
        grant = access_token_grant(session, token)
        _check_route(request, grant.link_id)
        if len(proofs) != 1:
            raise InvalidDPoPProof("send exactly one DPoP proof with a DPoP access token")
        proof = verify_dpop_proof(
            session,
            proofs[0],
            method=request.method,
            url=htu_of(runtime.settings.issuer, request.url.path),
            access_token=token,
        )
        if proof.jkt != grant.jkt:
            raise InvalidDPoPProof("the DPoP proof is not signed by the token's key")
    except OAuthError as error:
        raise resource_error(error) from None
    return ClientAuth(grant.client, ClientAuthMethod.DPOP, grant.link_id)


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


def get_documented_client_auth(
    auth: Annotated[ClientAuth, Depends(get_client_auth)],
    _schemes: Annotated[None, Depends(_openapi_client_scheme)],
) -> ClientAuth:
    return auth


CurrentClientAuth = Annotated[ClientAuth, Depends(get_documented_client_auth)]


def get_client_in_unit_of_work(
    request: Request, _schemes: Annotated[None, Depends(_openapi_client_scheme)]
) -> ClientInUnitOfWork:
    return ClientInUnitOfWork(request)


ClientAuthInUnitOfWork = Annotated[ClientInUnitOfWork, Depends(get_client_in_unit_of_work)]
"""The operator client, authenticated by the endpoint in its unit of work
(:class:`ClientInUnitOfWork`); documented like :data:`CurrentClientAuth`."""


def require_staff(
    runtime: BankRuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_staff)],
) -> None:
    """Branch-counter routes need the configured staff token."""
    expected = runtime.settings.staff_token
    if (
        not expected
        or credentials is None
        or not constant_time_equal(credentials.credentials, expected)
    ):
        raise InvalidStaffToken("branch-counter routes need the staff bearer token")


StaffDep = Annotated[None, Depends(require_staff)]
