"""The wallet's HTTP client for the bank system: the only way the wallet reaches a bank.

:class:`BankClient` wraps one ``httpx.Client`` whose transport is injectable: real sockets in
``kouza serve`` (built from settings by :func:`bank_client_of`), and in tests or the simulator
any ``httpx.BaseTransport`` — an ``httpx.MockTransport`` that forwards to an in-process
``fastapi.testclient.TestClient(bank_app)`` (``httpx.ASGITransport`` is async-only in httpx
0.28, and the wallet's services are synchronous), or one that injects faults.

The client authenticates as the operator with ``private_key_jwt`` (RFC 7523, ADR 0022): every
API call carries ``Authorization: Bearer <client assertion>``, a fresh JWT signed by the
operator's client key (:mod:`kouza.linking.keys`) with ``aud`` = the bank deployment's
issuer (``KOUZA_BANK_ISSUER``), a 60-second ``exp`` and a single-use ``jti``. The key's public
half is registered at the bank (``kouza banks oauth-jwks`` → ``kouza bank register-keys``).
HTTP Basic ``client_id:client_secret`` remains only as the legacy fallback
(``KOUZA_BANK_CLIENT_AUTH=client_secret``, or a client built without a signer), which the bank
accepts on the legacy form and legacy links only. Answers are sorted into three kinds:

* a 2xx: the parsed body;
* a definite refusal (4xx): :class:`~kouza.linking.errors.BankRefused` (or a subclass for
  the legacy form), with the bank's error code — the bank did nothing;
* no answer (timeout, connection error, 5xx, or the bank's own "still in flight" 409):
  :class:`~kouza.linking.errors.BankUnavailable` — the bank may or may not have acted.

Secrets (PIN, account number) travel only in request bodies and are never logged here. Every
call made while serving a request carries that request's ``X-Request-ID``, so the bank's log
lines for it carry the wallet's id, and, when the process traces, a ``traceparent`` header that
makes the bank's server span a child of the wallet's client span (``kouza.kit.tracing``).

For ``oauth`` banks (ADR 0013) the same client speaks OAuth: discovery (RFC 8414), the pushed
authorization request and the code exchange with ``private_key_jwt`` (RFC 7523), and debits and
credits with a DPoP-bound access token (``Authorization: DPoP`` + a proof, RFC 9449). The bank's
``use_dpop_nonce`` answer is obeyed once per request with the nonce it supplies; the latest
nonce is remembered per client. A refused DPoP request did nothing at the bank (its checks run
before the handler), so retrying it under the same Idempotency-Key is safe.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, cast

import httpx
from joserfc.jwk import ECKey

from kouza.config import Settings
from kouza.errors import KouzaError
from kouza.kit.logs import carry_request_id
from kouza.kit.tracing import instrument_http_client
from kouza.linking.errors import (
    AccountAlreadyLinked,
    BankLinkRefused,
    BankRefused,
    BankUnavailable,
    LegacyFormNotOffered,
    UnknownBank,
)
from kouza.linking.keys import ASSERTION_TYPE, Signer
from kouza.runtime import Runtime

_INDEFINITE_CODES = frozenset({"idempotency_in_flight"})


@dataclass(frozen=True)
class BankInfo:
    """A bank of the deployment and how it links accounts."""

    code: str
    name: str
    auth_profile: str


@dataclass(frozen=True)
class LegacyLinkRequest:
    """What the wallet submits on a bank's legacy form for its user."""

    branch: str
    account_type: str
    account_number: str = field(repr=False)
    holder_kana: str
    pin: str = field(repr=False)
    wallet_reference: str
    end_user_source: str
    birth_date: date | None = None
    holder_name: str | None = None
    """The kanji name from the user's card (with the card's ``birth_date``)."""
    max_per_debit: int | None = None
    max_30_days: int | None = None
    probation_days: int | None = None
    """A restricted link (ADR 0032): the bank's notices say top-ups are held this long."""
    hold_hours: int | None = None

    def body(self) -> dict[str, Any]:
        restricted = (
            {"probation_days": self.probation_days, "hold_hours": self.hold_hours}
            if self.probation_days is not None
            else {}
        )
        return restricted | {
            "branch_code": self.branch,
            "account_type": self.account_type,
            "account_number": self.account_number,
            "holder_kana": self.holder_kana,
            "holder_name": self.holder_name,
            "pin": self.pin,
            "wallet_reference": self.wallet_reference,
            "end_user_source": self.end_user_source,
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            "max_per_debit": self.max_per_debit,
            "max_30_days": self.max_30_days,
        }


@dataclass(frozen=True)
class BankLinkInfo:
    """A link (mandate) as the bank reports it."""

    id: uuid.UUID
    status: str
    max_per_debit: int
    max_30_days: int
    expires_at: datetime


@dataclass(frozen=True)
class BankTransfer:
    """A debit or credit the bank executed."""

    id: uuid.UUID
    link_id: uuid.UUID
    kind: str
    amount: int
    idempotency_key: str
    created_at: datetime


@dataclass(frozen=True)
class AuthorizationServer:
    """An ``oauth`` bank's authorization server, from its metadata (RFC 8414)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    par_endpoint: str


@dataclass(frozen=True)
class IssuedToken:
    """What the bank's token endpoint returned for a code."""

    access_token: str = field(repr=False)
    expires_in: int
    link_id: uuid.UUID
    max_per_debit: int
    max_30_days: int
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DPoPCredentials:
    """A link's DPoP-bound access token, its key, and how to sign proofs (never logged)."""

    access_token: str = field(repr=False)
    key: ECKey = field(repr=False)
    signer: Signer = field(repr=False)
    resource_base: str
    """The bank's public base URL: DPoP ``htu`` is this plus the request path."""


class BankClient:
    """Legacy link, debit, credit, transfer lookups and JWKS, over HTTP; the OAuth flow."""

    dpop_nonce: str | None = None
    """The bank's latest DPoP nonce (its nonces are shared by its AS and RS)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        client_id: str,
        client_secret: str = "",
        signer: Signer | None = None,
    ) -> None:
        self.http = carry_request_id(http)
        instrument_http_client(http)
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self.signer = signer
        """Signs a ``private_key_jwt`` assertion per call; None: the legacy client secret."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        transport: httpx.BaseTransport | None = None,
        signer: Signer | None = None,
    ) -> BankClient:
        """A client on ``settings.bank_api_url`` (real sockets unless ``transport``)."""
        http = httpx.Client(
            base_url=settings.bank_api_url,
            transport=transport,
            timeout=settings.bank_timeout_seconds,
        )
        return cls(
            http,
            client_id=settings.bank_client_id,
            client_secret=settings.bank_client_secret,
            signer=signer,
        )

    def banks(self) -> list[BankInfo]:
        """Every bank of the deployment with its authentication profile."""
        rows = self._call("GET", "/v1/banks")
        return [BankInfo(row["code"], row["name"], row["auth_profile"]) for row in rows]

    def bank(self, code: str) -> BankInfo:
        """One bank by code; UnknownBank if the deployment does not serve it."""
        for info in self.banks():
            if info.code == code:
                return info
        raise UnknownBank("the bank system does not serve this bank code", bank_code=code)

    def legacy_link(self, bank_code: str, request: LegacyLinkRequest) -> BankLinkInfo:
        """Submit the bank's legacy form; the bank's refusals become wallet errors."""
        try:
            row = self._call("POST", f"/v1/banks/{bank_code}/legacy-links", json=request.body())
        except BankRefused as refusal:
            raise _link_refusal(refusal) from None
        return _link_info(row)

    def debit(
        self,
        link_id: uuid.UUID,
        *,
        amount: int,
        idempotency_key: str,
        description: str = "",
        credentials: DPoPCredentials | None = None,
    ) -> BankTransfer:
        """Instant debit under the mandate (idempotent per key at the bank)."""
        return self._transfer("debits", link_id, amount, idempotency_key, description, credentials)

    def credit(
        self,
        link_id: uuid.UUID,
        *,
        amount: int,
        idempotency_key: str,
        description: str = "",
        credentials: DPoPCredentials | None = None,
        reverses: uuid.UUID | None = None,
    ) -> BankTransfer:
        """Credit the linked account (idempotent per key at the bank). ``reverses``: the bank
        transfer id of the debit this credit returns — the one credit a revoked link takes."""
        return self._transfer(
            "credits", link_id, amount, idempotency_key, description, credentials, reverses
        )

    def refund(
        self, link_id: uuid.UUID, *, amount: int, idempotency_key: str, description: str = ""
    ) -> BankTransfer:
        """Compensation credit to the linked account, accepted even on a revoked link."""
        return self._transfer("refunds", link_id, amount, idempotency_key, description)

    def send_notice(self, token: str) -> dict[str, Any]:
        """POST a signed wallet → bank notice (compact JWS); the alert the bank recorded."""
        answer = self._call(
            "POST",
            "/v1/operator-notices",
            content=token.encode(),
            headers={"Content-Type": "application/jose"},
        )
        if not isinstance(answer, dict):
            raise BankUnavailable("the bank's answer to a notice is not a JSON object")
        return answer

    def transfer_by_key(self, idempotency_key: str) -> BankTransfer | None:
        """The transfer made under ``idempotency_key``, or None if the bank has none."""
        try:
            rows = self._call("GET", "/v1/transfers", params={"idempotency_key": idempotency_key})
        except BankRefused as refusal:
            if refusal.details.get("bank_error") == "unknown_transfer":
                return None
            raise
        return _transfer(rows[0])

    def transfer_report(self, *, since: datetime, until: datetime) -> list[BankTransfer]:
        """Every transfer of this operator with ``since <= created_at < until``."""
        rows = self._call(
            "GET", "/v1/transfers", params={"since": since.isoformat(), "until": until.isoformat()}
        )
        return [_transfer(row) for row in rows]

    def jwks(self) -> dict[str, Any]:
        """The bank's public keys for its signed webhooks."""
        keys = self._call("GET", "/.well-known/jwks.json", authenticated=False)
        if not isinstance(keys, dict):
            raise BankUnavailable("the bank's JWKS is not a JSON object")
        return keys

    def _transfer(
        self,
        what: str,
        link_id: uuid.UUID,
        amount: int,
        key: str,
        description: str,
        credentials: DPoPCredentials | None = None,
        reverses: uuid.UUID | None = None,
    ) -> BankTransfer:
        path = f"/v1/links/{link_id}/{what}"
        body: dict[str, Any] = {"amount": amount, "description": description}
        if reverses is not None:
            body["reverses"] = str(reverses)
        if credentials is not None:
            return _transfer(self._dpop_call(path, credentials, json=body, key=key))
        row = self._call("POST", path, json=body, headers={"Idempotency-Key": key})
        return _transfer(row)

    # --- OAuth (``oauth`` banks) ----------------------------------------------------------

    def authorization_server(self, bank_code: str) -> AuthorizationServer:
        """The bank's authorization server metadata; UnknownBank if it has none."""
        try:
            meta = self._call(
                "GET",
                f"/v1/banks/{bank_code}/.well-known/oauth-authorization-server",
                authenticated=False,
            )
            return AuthorizationServer(
                issuer=str(meta["issuer"]),
                authorization_endpoint=str(meta["authorization_endpoint"]),
                token_endpoint=str(meta["token_endpoint"]),
                par_endpoint=str(meta["pushed_authorization_request_endpoint"]),
            )
        except BankRefused as refusal:
            if refusal.details.get("bank_error") == "unknown_bank":
                raise UnknownBank("this bank has no OAuth authorization server") from None
            raise
        except (KeyError, TypeError):
            raise BankUnavailable("the bank's OAuth metadata is incomplete") from None

    def push_authorization(
        self, server: AuthorizationServer, signer: Signer, fields: dict[str, str]
    ) -> str:
        """Push the authorization request (RFC 9126); the ``request_uri`` to send the user to."""
        data = fields | self._client_auth(server, signer)
        response = self._send("POST", server.par_endpoint, data=data)
        self._remember_nonce(response)
        body = _answer(response)
        return str(body["request_uri"])

    def exchange_code(
        self,
        server: AuthorizationServer,
        signer: Signer,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        dpop_key: ECKey,
    ) -> IssuedToken:
        """Trade a code for a DPoP-bound token, obeying one ``use_dpop_nonce`` round."""
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        for attempt in range(2):
            proof = signer.proof(
                dpop_key, method="POST", url=server.token_endpoint, nonce=self.dpop_nonce
            )
            response = self._send(
                "POST",
                server.token_endpoint,
                data=fields | self._client_auth(server, signer),
                headers={"DPoP": proof},
            )
            if attempt == 0 and self._nonce_requested(response):
                continue
            self._remember_nonce(response)
            return _issued(_answer(response))
        raise AssertionError("unreachable: the loop returns or continues once")

    def _client_auth(self, server: AuthorizationServer, signer: Signer) -> dict[str, str]:
        return {
            "client_id": signer.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signer.assertion(server.issuer),
        }

    def _dpop_call(
        self, path: str, credentials: DPoPCredentials, *, json: dict[str, Any], key: str
    ) -> Any:
        url = credentials.resource_base.rstrip("/") + path
        for attempt in range(2):
            proof = credentials.signer.proof(
                credentials.key,
                method="POST",
                url=url,
                nonce=self.dpop_nonce,
                access_token=credentials.access_token,
            )
            headers = {
                "Authorization": f"DPoP {credentials.access_token}",
                "DPoP": proof,
                "Idempotency-Key": key,
            }
            response = self._send("POST", path, json=json, headers=headers)
            if attempt == 0 and self._nonce_requested(response):
                continue
            self._remember_nonce(response)
            return _answer(response)
        raise AssertionError("unreachable: the loop returns or continues once")

    def _nonce_requested(self, response: httpx.Response) -> bool:
        """Whether the bank asked for (another) DPoP nonce; remembers the one it gave."""
        nonce = response.headers.get("DPoP-Nonce")
        if response.status_code not in (400, 401) or not nonce:
            return False
        body = _json_or_empty(response)
        code = body.get("error") if isinstance(body, dict) else None
        challenge = response.headers.get("WWW-Authenticate", "")
        if code == "use_dpop_nonce" or 'error="use_dpop_nonce"' in challenge:
            self.dpop_nonce = nonce
            return True
        return False

    def _remember_nonce(self, response: httpx.Response) -> None:
        nonce = response.headers.get("DPoP-Nonce")
        if nonce:
            self.dpop_nonce = nonce

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise BankUnavailable(f"the bank did not answer ({type(exc).__name__})") from None

    def _call(self, method: str, path: str, *, authenticated: bool = True, **kwargs: Any) -> Any:
        auth: httpx.Auth | None = self._auth if authenticated else None
        if authenticated and self.signer is not None:
            assertion = self.signer.assertion(self.signer.runtime.settings.bank_issuer)
            kwargs["headers"] = {
                **kwargs.get("headers", {}),
                "Authorization": f"Bearer {assertion}",
            }
            auth = None
        try:
            response = self.http.request(method, path, auth=auth, **kwargs)
        except httpx.HTTPError as exc:
            raise BankUnavailable(f"the bank did not answer ({type(exc).__name__})") from None
        return _answer(response)


def _answer(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json()
    body = _json_or_empty(response)
    code = str(body.get("error", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if not message and isinstance(body, dict):
        message = str(body.get("error_description", ""))  # OAuth error bodies (RFC 6749 §5.2)
    if response.status_code >= 500 or code in _INDEFINITE_CODES:
        raise BankUnavailable(f"the bank answered {response.status_code}", bank_error=code)
    raise BankRefused(
        message or f"the bank refused ({response.status_code})",
        bank_error=code,
        bank_status=response.status_code,
    )


def _json_or_empty(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _link_refusal(refusal: BankRefused) -> KouzaError:
    code = refusal.details.get("bank_error")
    if code == "legacy_form_not_offered":
        return LegacyFormNotOffered("this bank links accounts only through its OAuth flow")
    if code == "already_linked":
        return AccountAlreadyLinked("this account is already linked to a kouza wallet")
    if code == "unknown_bank":
        return UnknownBank("the bank system does not serve this bank code")
    if code == "link_refused":
        return BankLinkRefused(refusal.message, bank_error=code)
    return refusal


def _link_info(row: dict[str, Any]) -> BankLinkInfo:
    return BankLinkInfo(
        id=uuid.UUID(row["id"]),
        status=row["status"],
        max_per_debit=int(row["max_per_debit"]),
        max_30_days=int(row["max_30_days"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
    )


def _issued(body: dict[str, Any]) -> IssuedToken:
    if str(body.get("token_type", "")).lower() != "dpop":
        raise BankUnavailable("the bank issued a token that is not DPoP-bound")
    try:
        return IssuedToken(
            access_token=str(body["access_token"]),
            expires_in=int(body["expires_in"]),
            link_id=uuid.UUID(str(body["link_id"])),
            max_per_debit=int(body["max_per_debit"]),
            max_30_days=int(body["max_30_days"]),
            refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
        )
    except (KeyError, TypeError, ValueError):
        raise BankUnavailable("the bank's token response is incomplete") from None


def _transfer(row: dict[str, Any]) -> BankTransfer:
    return BankTransfer(
        id=uuid.UUID(row["id"]),
        link_id=uuid.UUID(row["link_id"]),
        kind=row["kind"],
        amount=int(row["amount"]),
        idempotency_key=row["idempotency_key"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


class BankClientPort(Protocol):
    """Where the runtime keeps its bank client (``kouza.assembly.KouzaRuntime``)."""

    bank_client: BankClient | None
    """None until first used: then built from settings (:func:`bank_client_of`)."""


def bank_client_of(runtime: Runtime) -> BankClient:
    """The runtime's bank client, built from settings on first use."""
    port = cast(BankClientPort, runtime)
    client = port.bank_client
    if client is None:
        settings = runtime.settings
        signer = Signer(runtime) if settings.bank_client_auth == "private_key_jwt" else None
        client = port.bank_client = BankClient.from_settings(settings, signer=signer)
    return client
