"""Operator clients of the OAuth flow: registration (JWKS, redirect URIs) and authentication.

A wallet operator is first an :class:`~kouza.bank.models.OperatorClient` (the legacy API
keeps its client secret). To use the ``oauth`` profile it registers its public keys — a JWKS
inline, or a ``jwks_uri`` the bank fetches through the runtime's injectable HTTP transport — and
the exact redirect URIs it may use (FAPI 2.0 §5.3.2.2: exact string comparison).

Client authentication on the PAR and token endpoints is ``private_key_jwt`` only (RFC 7523 §2.2,
FAPI 2.0 §5.3.2.1): ``client_assertion_type`` = ``jwt-bearer`` and a ``client_assertion`` checked
by :func:`kouza.bank.oauth.proofs.verify_client_assertion`. A client secret, HTTP Basic, or
both methods at once are refused (RFC 6749 §2.3: one method per request).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.core import core
from kouza.bank.errors import InvalidBankData, UnknownClient
from kouza.bank.models import OAuthClientRegistration, OperatorClient
from kouza.bank.oauth.errors import InvalidClientAuth, UnauthorizedClient
from kouza.bank.oauth.proofs import ASSERTION_TYPE, verify_client_assertion
from kouza.bank.runtime import bank_runtime_of
from kouza.kit.db import add_unique

_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


def _public_jwks(jwks: Mapping[str, Any]) -> dict[str, Any]:
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise InvalidBankData("jwks must be a JWKS with at least one key")
    for key in keys:
        if not isinstance(key, dict) or any(member in key for member in _PRIVATE_MEMBERS):
            raise InvalidBankData("jwks must hold public asymmetric keys only")
    try:
        KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidBankData("jwks holds a key that cannot be imported") from None
    return {"keys": keys}


def _redirect_uris(uris: list[str]) -> list[str]:
    if not uris or any(
        not uri.startswith(("https://", "http://127.0.0.1", "http://localhost")) or "#" in uri
        for uri in uris
    ):
        raise InvalidBankData("redirect URIs must be absolute https URLs without a fragment")
    return list(uris)


class OAuthClients:
    """OAuth registrations of operator clients and their ``private_key_jwt`` authentication."""

    def register(
        self,
        session: Session,
        client: OperatorClient,
        *,
        redirect_uris: list[str],
        jwks: Mapping[str, Any] | None = None,
        jwks_uri: str | None = None,
    ) -> OAuthClientRegistration:
        """Register (once) the client's public keys and redirect URIs."""
        if (jwks is None) == (jwks_uri is None):
            raise InvalidBankData("give exactly one of jwks and jwks_uri")
        if jwks_uri is not None and not jwks_uri.startswith("https://"):
            raise InvalidBankData("jwks_uri must be an https URL")
        registration = OAuthClientRegistration(
            client_pk=client.id,
            jwks=_public_jwks(jwks) if jwks is not None else None,
            jwks_uri=jwks_uri,
            redirect_uris=_redirect_uris(redirect_uris),
            created_at=bank_runtime_of(session).now(),
        )
        add_unique(
            session, registration, InvalidBankData("this client is already registered for OAuth")
        )
        return registration

    def registration(self, session: Session, client: OperatorClient) -> OAuthClientRegistration:
        """The client's OAuth registration, or ``unauthorized_client``."""
        found = session.scalars(
            select(OAuthClientRegistration).where(OAuthClientRegistration.client_pk == client.id)
        ).one_or_none()
        if found is None:
            raise UnauthorizedClient("this client is not registered for the OAuth flow")
        return found

    def authenticate(
        self, session: Session, form: Mapping[str, str], *, audiences: tuple[str, ...]
    ) -> OperatorClient:
        """The client that signed this request's ``private_key_jwt`` assertion."""
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise InvalidClientAuth("authenticate with private_key_jwt (client_assertion)")
        if "client_secret" in form:
            raise InvalidClientAuth("use one client authentication method only")
        return self.authenticate_assertion(
            session, form["client_assertion"], audiences=audiences, client_id=form.get("client_id")
        )

    def authenticate_assertion(
        self,
        session: Session,
        assertion: str,
        *,
        audiences: tuple[str, ...],
        client_id: str | None = None,
    ) -> OperatorClient:
        """The registered client that signed ``assertion`` for one of ``audiences``."""
        claimed = self._claimed_client_id(assertion, client_id)
        try:
            client = core.client(session, claimed)
        except UnknownClient:
            raise InvalidClientAuth("unknown client") from None
        keys = self._keys(session, self.registration(session, client))
        verify_client_assertion(
            session, assertion, client_id=client.client_id, keys=keys, audiences=audiences
        )
        return client

    def _claimed_client_id(self, assertion: str, client_id: str | None) -> str:
        try:
            claims = jws.extract_compact(assertion.encode()).payload
            subject = json.loads(claims).get("sub")
        except (JoseError, ValueError, AttributeError):
            raise InvalidClientAuth("the client assertion is not a JWT") from None
        if not isinstance(subject, str) or (client_id is not None and client_id != subject):
            raise InvalidClientAuth("client_id and the assertion's subject differ")
        return subject

    def _keys(self, session: Session, registration: OAuthClientRegistration) -> KeySet:
        jwks = registration.jwks
        if jwks is None:
            jwks = self._fetch(session, registration.jwks_uri or "")
        return KeySet.import_key_set(jwks)  # type: ignore[arg-type]  # checked public JWKS

    def _fetch(self, session: Session, uri: str) -> dict[str, Any]:
        runtime = bank_runtime_of(session)
        try:
            with runtime.http_client() as http:
                response = http.get(uri)
                response.raise_for_status()
                return _public_jwks(response.json())
        except (httpx.HTTPError, ValueError, InvalidBankData):
            raise InvalidClientAuth("the client's jwks_uri could not be read") from None


oauth_clients = OAuthClients()
"""The OAuth client registration service singleton."""
