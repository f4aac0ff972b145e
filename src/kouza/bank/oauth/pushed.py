"""Pushed authorization requests (RFC 9126) and what they carry.

FAPI 2.0 requires PAR: the client pushes every parameter over a client-authenticated back
channel and the browser carries only ``client_id`` and an opaque ``request_uri``. The bank takes
the parameters as plain form fields (no request object; see ADR 0009: the channel is already
authenticated by ``private_key_jwt`` and protected by TLS, which is what FAPI 2.0's security
profile asks; JAR belongs to its separate message-signing profile):

* OAuth: ``response_type=code``, ``client_id``, ``redirect_uri`` (registered, exact match),
  ``scope=debit``, ``state``, ``code_challenge`` with ``code_challenge_method=S256`` (RFC 7636;
  ``plain`` is refused), optional ``dpop_jkt`` (RFC 9449 §10) — or a DPoP proof on the PAR
  request itself, whose key then binds the code;
* kouza: the wallet's verified identity, ``holder_name`` (the kanji name read from the
  customer's card by eKYC) and ``holder_birth_date`` (ISO date, from the card), both required,
  plus an optional ``holder_name_kana`` (the customer's declared reading, a second check only),
  compared with the account holder after login (ADR 0023); the requested mandate,
  ``max_per_debit`` and ``max_30_days`` (yen, capped by the bank's maxima) and
  ``mandate_expires_on`` (ISO date, within the bank's mandate days); ``wallet_reference``.

The validated parameters are stored Fernet-encrypted (they hold a name and a birth date); the
``request_uri`` is stored only as an HMAC, lives :data:`REQUEST_URI_LIFETIME` and is used once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.errors import InvalidBankData
from kouza.bank.kana import comparable_kanji_name, to_zengin_kana
from kouza.bank.keys import fernet
from kouza.bank.models import Bank, OAuthPushedRequest, OperatorClient
from kouza.bank.oauth.clients import oauth_clients
from kouza.bank.oauth.errors import InvalidRequest, InvalidRequestUri
from kouza.bank.runtime import bank_runtime_of
from kouza.kit.locking import lock_row
from kouza.kit.security import keyed_hash, random_token
from kouza.kit.text import unsafe_character

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
REQUEST_URI_LIFETIME = timedelta(seconds=60)
SCOPE = "debit"
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
_REFUSED_PARAMETERS = ("request", "request_uri")


@dataclass(frozen=True)
class AuthorizationParameters:
    """A validated pushed authorization request."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str
    dpop_jkt: str | None
    holder_name_kana: str | None
    holder_birth_date: str
    wallet_reference: str
    max_per_debit: int
    max_30_days: int
    mandate_expires_on: str
    holder_name: str = ""
    """The kanji name from the customer's card (empty only in requests stored before 0023,
    which then cannot match)."""

    @property
    def birth_date(self) -> date:
        return date.fromisoformat(self.holder_birth_date)


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise InvalidRequest(f"{name} is required")
    return value


def _yen(form: Mapping[str, str], name: str, default: int, ceiling: int) -> int:
    raw = form.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= 10**12:
        raise InvalidRequest(f"{name} must be a positive whole yen amount")
    return min(int(raw), ceiling)


def _date(form: Mapping[str, str], name: str) -> date:
    try:
        return date.fromisoformat(_required(form, name))
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO date (YYYY-MM-DD)") from None


def _mandate_end(form: Mapping[str, str], bank: Bank, now: datetime) -> date:
    latest = (now + timedelta(days=bank.mandate_days)).date()
    if "mandate_expires_on" not in form:
        return latest
    ends = _date(form, "mandate_expires_on")
    if not now.date() < ends <= latest:
        raise InvalidRequest(f"mandate_expires_on must be within {bank.mandate_days} days")
    return ends


def _check_oauth_parameters(
    form: Mapping[str, str], client: OperatorClient, redirect_uris: list[str]
) -> None:
    if any(name in form for name in _REFUSED_PARAMETERS):
        raise InvalidRequest(
            "request objects and request_uri are not accepted at the PAR "
            "endpoint; push the parameters themselves"
        )
    if form.get("response_type") != "code":
        raise InvalidRequest("response_type must be code")
    if form.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequest("client_id differs from the authenticated client")
    if _required(form, "redirect_uri") not in redirect_uris:
        raise InvalidRequest("redirect_uri is not registered for this client")
    if set(_required(form, "scope").split()) != {SCOPE}:
        raise InvalidRequest(f"scope must be {SCOPE}")
    if form.get("code_challenge_method") != "S256":
        raise InvalidRequest("PKCE with code_challenge_method=S256 is required")
    if not _CHALLENGE.fullmatch(_required(form, "code_challenge")):
        raise InvalidRequest("code_challenge must be a base64url SHA-256 (43 characters)")
    if len(form.get("state", "")) > 500 or unsafe_character(form.get("state", "")):
        raise InvalidRequest("state is at most 500 characters, without control characters")


def _dpop_jkt(form: Mapping[str, str], proof_jkt: str | None) -> str | None:
    given = form.get("dpop_jkt")
    if given is not None and not _JKT.fullmatch(given):
        raise InvalidRequest("dpop_jkt must be a JWK SHA-256 thumbprint")
    if given is not None and proof_jkt is not None and given != proof_jkt:
        raise InvalidRequest("dpop_jkt differs from the key of the DPoP proof")
    return given or proof_jkt


def parse(
    session: Session,
    form: Mapping[str, str],
    *,
    bank: Bank,
    client: OperatorClient,
    proof_jkt: str | None,
) -> AuthorizationParameters:
    """Validate a pushed authorization request (``invalid_request`` on any problem)."""
    registration = oauth_clients.registration(session, client)
    _check_oauth_parameters(form, client, list(registration.redirect_uris))
    name = _required(form, "holder_name")
    if len(name) > 100 or unsafe_character(name) or not comparable_kanji_name(name):
        raise InvalidRequest("holder_name must be the holder's name, at most 100 characters")
    kana = None
    if form.get("holder_name_kana"):
        try:
            kana = to_zengin_kana(form["holder_name_kana"])
        except InvalidBankData:
            raise InvalidRequest("holder_name_kana must be written in kana") from None
    reference = _required(form, "wallet_reference")
    if len(reference) > 200:
        raise InvalidRequest("wallet_reference is at most 200 characters")
    per_debit = _yen(form, "max_per_debit", bank.mandate_max_per_debit, bank.mandate_max_per_debit)
    per_30_days = _yen(form, "max_30_days", bank.mandate_max_30_days, bank.mandate_max_30_days)
    now = bank_runtime_of(session).now()
    return AuthorizationParameters(
        client_id=client.client_id,
        redirect_uri=form["redirect_uri"],
        scope=SCOPE,
        state=form.get("state", ""),
        code_challenge=form["code_challenge"],
        dpop_jkt=_dpop_jkt(form, proof_jkt),
        holder_name=name,
        holder_name_kana=kana,
        holder_birth_date=_date(form, "holder_birth_date").isoformat(),
        wallet_reference=reference,
        max_per_debit=per_debit,
        max_30_days=max(per_30_days, per_debit),
        mandate_expires_on=_mandate_end(form, bank, now).isoformat(),
    )


def push(
    session: Session, parameters: AuthorizationParameters, *, bank: Bank, client: OperatorClient
) -> tuple[str, int]:
    """Store a validated request; returns its ``request_uri`` and lifetime in seconds."""
    runtime = bank_runtime_of(session)
    request_uri = REQUEST_URI_PREFIX + random_token()
    sealed = fernet(runtime.secret, "oauth-par").encrypt(json.dumps(asdict(parameters)).encode())
    session.add(
        OAuthPushedRequest(
            bank_id=bank.id,
            client_pk=client.id,
            created_at=runtime.now(),
            request_uri_hash=keyed_hash(runtime.secret, request_uri, purpose="oauth-request-uri"),
            parameters_encrypted=sealed.decode(),
            expires_at=runtime.now() + REQUEST_URI_LIFETIME,
        )
    )
    session.flush()
    return request_uri, int(REQUEST_URI_LIFETIME.total_seconds())


def consume(
    session: Session, *, bank: Bank, client_id: str, request_uri: str
) -> tuple[OAuthPushedRequest, AuthorizationParameters]:
    """Use a ``request_uri`` once: unknown, used, expired or foreign ones are refused."""
    runtime = bank_runtime_of(session)
    digest = keyed_hash(runtime.secret, request_uri, purpose="oauth-request-uri")
    found_id = session.scalar(
        select(OAuthPushedRequest.id).where(
            OAuthPushedRequest.request_uri_hash == digest, OAuthPushedRequest.bank_id == bank.id
        )
    )
    pushed = lock_row(session, OAuthPushedRequest, found_id) if found_id else None
    if pushed is None or pushed.used_at is not None or pushed.expires_at <= runtime.now():
        raise InvalidRequestUri("the request_uri is unknown, used or expired")
    parameters = AuthorizationParameters(
        **json.loads(
            fernet(runtime.secret, "oauth-par").decrypt(pushed.parameters_encrypted.encode())
        )
    )
    if parameters.client_id != client_id:
        raise InvalidRequestUri("the request_uri belongs to another client")
    pushed.used_at = runtime.now()
    return pushed, parameters


def parameters_of(session: Session, pushed: OAuthPushedRequest) -> AuthorizationParameters:
    """The stored parameters of a pushed request."""
    runtime = bank_runtime_of(session)
    return AuthorizationParameters(
        **json.loads(
            fernet(runtime.secret, "oauth-par").decrypt(pushed.parameters_encrypted.encode())
        )
    )
