"""HTTP surface of the ``oauth`` linking profile (one authorization server per bank code).

* ``GET  /v1/banks/{code}/.well-known/oauth-authorization-server`` — metadata (RFC 8414; also at
  the RFC 8414 §3.1 location ``/.well-known/oauth-authorization-server/v1/banks/{code}``);
* ``POST /v1/banks/{code}/oauth/par`` — pushed authorization request (RFC 9126);
* ``GET  /v1/banks/{code}/oauth/authorize`` — the holder's browser arrives with ``client_id``
  and ``request_uri``; then ``POST …/authorize/{login,otp,account,consent}`` are the holder's
  forms, ending in a redirect to ``redirect_uri`` with ``code``, ``state`` and ``iss``
  (RFC 9207) or ``error``, ``state`` and ``iss``;
* ``POST /v1/banks/{code}/oauth/token`` — code exchange with ``private_key_jwt`` and DPoP;
* ``PUT /v1/counter/operators/{client_id}/oauth-registration`` — bank staff register an
  operator client's public keys and redirect URIs (staff token).

The issuer of a bank is ``{KOUZA_BANK_ISSUER}/v1/banks/{code}``; the configured issuer is also
the public base URL that DPoP ``htu`` values are compared with. Back-channel errors are OAuth
JSON (``kouza.bank.oauth.errors``); front-channel errors are pages, redirected to the
client only once the ``redirect_uri`` is known to be registered (from a valid PAR).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from kouza.bank.core import core
from kouza.bank.dependencies import BankRuntimeDep, StaffDep
from kouza.bank.errors import InvalidBankData, InvalidStaffToken, UnknownBank, UnknownClient
from kouza.bank.models import (
    Account,
    AccountType,
    AuthProfile,
    Bank,
    Branch,
    Customer,
    InteractionStage,
    OAuthInteraction,
    OperatorClient,
)
from kouza.bank.oauth import grants, pushed
from kouza.bank.oauth.clients import oauth_clients
from kouza.bank.oauth.errors import (
    DPOP_ALGORITHMS,
    InvalidClientAuth,
    InvalidDPoPProof,
    InvalidGrant,
    InvalidRequest,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
    UseDPoPNonce,
    oauth_error_responses,
)
from kouza.bank.oauth.interaction import LoginOutcome, SessionInvalid, interactions
from kouza.bank.oauth.proofs import DPoPProof, current_nonce, htu_of, verify_dpop_proof
from kouza.bank.pages import ib
from kouza.bank.runtime import BankRuntime
from kouza.bank.schemas import BankCodePath
from kouza.errors import KouzaError
from kouza.kit.openapi import error_responses
from kouza.kit.pages import page_headers
from kouza.kit.text import JsonObject, Text

oauth_router = APIRouter(tags=["oauth"])
BASE = "/v1/banks/{bank_code}"
COOKIE = "kouza_bank_session"
NO_STORE = {"Cache-Control": "no-store"}
REFUSED = oauth_error_responses(InvalidRequest)
"""The holder's pages answer a malformed request (bank code, form) as OAuth's invalid_request."""
ACCOUNT_TYPES = {
    AccountType.ORDINARY.value: "普通",
    AccountType.CHECKING.value: "当座",
    AccountType.SAVINGS.value: "貯蓄",
}


async def form_fields(request: Request) -> dict[str, str]:
    """The urlencoded body; a repeated parameter is ``invalid_request`` (RFC 6749 §3.1)."""
    form = await request.form()
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if name in fields or not isinstance(value, str):
            raise InvalidRequest(f"parameter {name} must be sent once, as text")
        fields[name] = value
    return fields


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def issuer_of(runtime: BankRuntime, bank_code: str) -> str:
    """The issuer identifier of a bank's authorization server."""
    return f"{runtime.settings.issuer.rstrip('/')}/v1/banks/{bank_code}"


def _endpoint(runtime: BankRuntime, bank_code: str, name: str) -> str:
    return f"{issuer_of(runtime, bank_code)}/oauth/{name}"


def _audiences(runtime: BankRuntime, bank_code: str) -> tuple[str, ...]:
    return (
        issuer_of(runtime, bank_code),
        _endpoint(runtime, bank_code, "token"),
        _endpoint(runtime, bank_code, "par"),
    )


def _client(
    session: Session, runtime: BankRuntime, request: Request, bank_code: str, fields: dict[str, str]
) -> OperatorClient:
    """``private_key_jwt`` only: an ``Authorization`` header (Basic secret) is refused too."""
    if request.headers.get("Authorization"):
        raise InvalidClientAuth(
            "authenticate with private_key_jwt only (no Authorization header, no client secret)"
        )
    return oauth_clients.authenticate(session, fields, audiences=_audiences(runtime, bank_code))


def _oauth_bank(session: Session, bank_code: str) -> Bank:
    bank = core.bank(session, bank_code)
    if bank.auth_profile != AuthProfile.OAUTH.value:
        raise InvalidRequest("this bank does not offer the OAuth flow")
    return bank


def _proof(
    session: Session, runtime: BankRuntime, request: Request, *, required: bool
) -> DPoPProof | None:
    proofs = request.headers.getlist("DPoP")
    if len(proofs) > 1:
        raise InvalidDPoPProof("send exactly one DPoP header")
    if not proofs and not required:
        return None
    return verify_dpop_proof(
        session,
        proofs[0] if proofs else None,
        method=request.method,
        url=htu_of(runtime.settings.issuer, request.url.path),
    )


@oauth_router.get(
    BASE + "/.well-known/oauth-authorization-server",
    responses=error_responses(UnknownBank, InvalidBankData),
)
@oauth_router.get("/.well-known/oauth-authorization-server" + BASE, include_in_schema=False)
def metadata(bank_code: BankCodePath, runtime: BankRuntimeDep) -> dict[str, Any]:
    """Authorization server metadata (RFC 8414) of an ``oauth`` bank."""
    with runtime.db.unit_of_work() as session:
        if core.bank(session, bank_code).auth_profile != AuthProfile.OAUTH.value:
            raise UnknownBank("this bank has no OAuth authorization server", bank_code=bank_code)
    return {
        "issuer": issuer_of(runtime, bank_code),
        "authorization_endpoint": _endpoint(runtime, bank_code, "authorize"),
        "token_endpoint": _endpoint(runtime, bank_code, "token"),
        "pushed_authorization_request_endpoint": _endpoint(runtime, bank_code, "par"),
        "require_pushed_authorization_requests": True,
        "jwks_uri": f"{runtime.settings.issuer.rstrip('/')}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "scopes_supported": [pushed.SCOPE],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(DPOP_ALGORITHMS),
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
    }


@oauth_router.post(
    BASE + "/oauth/par",
    status_code=status.HTTP_201_CREATED,
    responses=oauth_error_responses(
        InvalidRequest, InvalidClientAuth, UnauthorizedClient, InvalidDPoPProof, UseDPoPNonce
    ),
)
def par(
    bank_code: BankCodePath, fields: FormDep, request: Request, runtime: BankRuntimeDep
) -> JSONResponse:
    """Pushed authorization request (RFC 9126): returns a single-use ``request_uri``."""
    with runtime.db.unit_of_work() as session:
        bank = _oauth_bank(session, bank_code)
        client = _client(session, runtime, request, bank_code, fields)
        proof = _proof(session, runtime, request, required=False)
        parameters = pushed.parse(
            session, fields, bank=bank, client=client, proof_jkt=proof.jkt if proof else None
        )
        request_uri, lifetime = pushed.push(session, parameters, bank=bank, client=client)
        nonce = current_nonce(session)
    return JSONResponse(
        {"request_uri": request_uri, "expires_in": lifetime},
        status_code=201,
        headers={**NO_STORE, "DPoP-Nonce": nonce},
    )


@oauth_router.post(
    BASE + "/oauth/token",
    responses=oauth_error_responses(
        InvalidRequest,
        InvalidClientAuth,
        InvalidGrant,
        UnsupportedGrantType,
        InvalidDPoPProof,
        UseDPoPNonce,
    ),
)
def token(
    bank_code: BankCodePath, fields: FormDep, request: Request, runtime: BankRuntimeDep
) -> JSONResponse:
    """Exchange a code for a DPoP-bound access token; the link and mandate are created."""
    with runtime.db.unit_of_work() as session:
        bank = _oauth_bank(session, bank_code)
        client = _client(session, runtime, request, bank_code, fields)
        if fields.get("grant_type") != "authorization_code":
            raise UnsupportedGrantType("only grant_type=authorization_code is supported")
        proof = _proof(session, runtime, request, required=True)
        assert proof is not None
        issued = grants.exchange(
            session,
            bank=bank,
            client=client,
            code=fields.get("code", ""),
            redirect_uri=fields.get("redirect_uri", ""),
            code_verifier=fields.get("code_verifier", ""),
            jkt=proof.jkt,
        )
        body = {
            "access_token": issued.access_token,
            "token_type": "DPoP",
            "expires_in": issued.expires_in,
            "scope": pushed.SCOPE,
            "link_id": str(issued.link.id),
            "max_per_debit": issued.link.max_per_debit,
            "max_30_days": issued.link.max_30_days,
        }
        nonce = current_nonce(session)
    return JSONResponse(body, headers={**NO_STORE, "DPoP-Nonce": nonce})


def _redirect(
    runtime: BankRuntime, bank_code: str, parameters: pushed.AuthorizationParameters, **values: str
) -> str:
    query = {
        **values,
        **({"state": parameters.state} if parameters.state else {}),
        "iss": issuer_of(runtime, bank_code),
    }
    joiner = "&" if "?" in parameters.redirect_uri else "?"
    return parameters.redirect_uri + joiner + urlencode(query)


def _action(bank_code: str, step: str) -> str:
    return f"/v1/banks/{bank_code}/oauth/authorize/{step}"


def _bank_name(runtime: BankRuntime, bank_code: str) -> str:
    with runtime.db.session() as session:
        try:
            return core.bank(session, bank_code).name
        except KouzaError:  # unknown or malformed bank code: the page still renders
            return "bank"


def _error_page(
    runtime: BankRuntime, request: Request, bank_code: str, message: str
) -> HTMLResponse:
    return ib.message_page(
        request,
        bank_name=_bank_name(runtime, bank_code),
        bank_code=bank_code,
        title_key="error.title",
        body_key="error.body",
        detail=message,
        status_code=400,
    )


def _secure(request: Request) -> bool:
    """Cookies are ``Secure`` when the browser reached the bank over https."""
    return request.url.scheme == "https"


@oauth_router.get(BASE + "/oauth/authorize", response_class=HTMLResponse, responses=REFUSED)
def authorize(
    bank_code: BankCodePath,
    runtime: BankRuntimeDep,
    request: Request,
    client_id: Annotated[str, Query(max_length=64)] = "",
    request_uri: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The holder arrives from the operator: start a bank session and show the login form."""
    try:
        with runtime.db.unit_of_work() as session:
            bank = _oauth_bank(session, bank_code)
            pushed_request, _ = pushed.consume(
                session, bank=bank, client_id=client_id, request_uri=request_uri
            )
            started = interactions.start(session, bank, pushed_request)
            name = bank.name
            operator = core.client(
                session, interactions.parameters(session, started.interaction).client_id
            ).name
    except OAuthError as error:
        return _error_page(runtime, request, bank_code, f"{error.oauth_code}: {error.message}")
    response = ib.login_page(
        request,
        bank_name=name,
        bank_code=bank_code,
        action=_action(bank_code, "login"),
        csrf=started.csrf_token,
        operator=operator,
    )
    response.set_cookie(
        COOKIE,
        started.session_token,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path=f"/v1/banks/{bank_code}/oauth",
    )
    return response


def _resume(
    session: Session,
    request: Request,
    bank_code: str,
    fields: dict[str, str],
    stage: InteractionStage,
) -> tuple[Bank, OAuthInteraction]:
    bank = _oauth_bank(session, bank_code)
    interaction = interactions.resume(
        session,
        bank,
        session_token=request.cookies.get(COOKIE),
        csrf_token=fields.get("csrf_token", ""),
        stage=stage,
    )
    return bank, interaction


@oauth_router.post(BASE + "/oauth/authorize/login", response_class=HTMLResponse, responses=REFUSED)
def submit_login(
    bank_code: BankCodePath, fields: FormDep, request: Request, runtime: BankRuntimeDep
) -> Response:
    """Login form: remember the attempt, always continue to the OTP form."""
    try:
        with runtime.db.unit_of_work() as session:
            bank, interaction = _resume(session, request, bank_code, fields, InteractionStage.LOGIN)
            interactions.submit_login(
                session,
                interaction,
                bank,
                branch_code=fields.get("branch_code", "")[:3],
                account_number=fields.get("account_number", "")[:7],
                password=fields.get("password", "")[:200],
            )
            name = bank.name
    except (SessionInvalid, OAuthError) as error:
        return _error_page(runtime, request, bank_code, str(error))
    return ib.otp_page(
        request,
        bank_name=name,
        bank_code=bank_code,
        action=_action(bank_code, "otp"),
        csrf=fields["csrf_token"],
    )


@oauth_router.post(BASE + "/oauth/authorize/otp", response_class=HTMLResponse, responses=REFUSED)
def submit_otp(
    bank_code: BankCodePath, fields: FormDep, request: Request, runtime: BankRuntimeDep
) -> Response:
    """OTP form: log in (or fail without saying why), compare identities, go on."""
    try:
        with runtime.db.unit_of_work() as session:
            bank, interaction = _resume(session, request, bank_code, fields, InteractionStage.OTP)
            outcome = interactions.submit_otp(session, interaction, fields.get("otp", "")[:10])
            page = _after_login(
                session, runtime, request, bank, interaction, outcome, fields["csrf_token"]
            )
    except (SessionInvalid, OAuthError) as error:
        return _error_page(runtime, request, bank_code, str(error))
    return page


def _after_login(
    session: Session,
    runtime: BankRuntime,
    request: Request,
    bank: Bank,
    interaction: OAuthInteraction,
    outcome: LoginOutcome,
    csrf: str,
) -> Response:
    if outcome is LoginOutcome.FAILED:
        return ib.login_page(
            request,
            bank_name=bank.name,
            bank_code=bank.code,
            action=_action(bank.code, "login"),
            csrf=csrf,
            failed=True,
        )
    parameters = interactions.parameters(session, interaction)
    if outcome is LoginOutcome.IDENTITY_MISMATCH:
        back = _redirect(
            runtime,
            bank.code,
            parameters,
            error="access_denied",
            error_description="the account holder is not the wallet's owner",
        )
        return ib.message_page(
            request,
            bank_name=bank.name,
            bank_code=bank.code,
            title_key="mismatch.title",
            body_key="mismatch.body",
            status_code=403,
            return_url=back,
        )
    if outcome is LoginOutcome.CHOOSE_ACCOUNT:
        customer = session.get_one(Customer, interaction.customer_id)
        choices = [
            (str(a.id), _account_label(session, a))
            for a in interactions.accounts(session, customer)
        ]
        return ib.account_page(
            request,
            bank_name=bank.name,
            bank_code=bank.code,
            action=_action(bank.code, "account"),
            csrf=csrf,
            accounts=choices,
        )
    return _consent(session, request, bank, interaction, csrf)


def _account_label(session: Session, account: Account) -> str:
    branch = session.get_one(Branch, account.branch_id)
    return (
        f"{branch.name} ({branch.code}) {ACCOUNT_TYPES.get(account.account_type, '')} "
        f"{account.number}"
    )


def _consent(
    session: Session, request: Request, bank: Bank, interaction: OAuthInteraction, csrf: str
) -> Response:
    parameters = interactions.parameters(session, interaction)
    client = core.client(session, parameters.client_id)
    account = session.get_one(Account, interaction.account_id)
    customer = session.get_one(Customer, account.customer_id)
    view = ib.ConsentView(
        bank_name=bank.name,
        bank_code=bank.code,
        operator_name=client.name,
        account_label=_account_label(session, account),
        max_per_debit=parameters.max_per_debit,
        max_30_days=parameters.max_30_days,
        expires_on=parameters.mandate_expires_on,
        redirect_uri=parameters.redirect_uri,
        several_accounts=len(interactions.accounts(session, customer)) > 1,
    )
    return ib.consent_page(request, view, action=_action(bank.code, "consent"), csrf=csrf)


@oauth_router.post(
    BASE + "/oauth/authorize/account", response_class=HTMLResponse, responses=REFUSED
)
def submit_account(
    bank_code: BankCodePath, fields: FormDep, request: Request, runtime: BankRuntimeDep
) -> Response:
    """Account choice form (holders with several accounts)."""
    try:
        with runtime.db.unit_of_work() as session:
            bank, interaction = _resume(
                session, request, bank_code, fields, InteractionStage.ACCOUNT
            )
            chosen = interactions.choose_account(session, interaction, fields.get("account_id", ""))
            outcome = LoginOutcome.CONSENT if chosen else LoginOutcome.CHOOSE_ACCOUNT
            page = _after_login(
                session, runtime, request, bank, interaction, outcome, fields["csrf_token"]
            )
    except (SessionInvalid, OAuthError) as error:
        return _error_page(runtime, request, bank_code, str(error))
    return page


@oauth_router.post(BASE + "/oauth/authorize/consent", responses=REFUSED)
def submit_consent(
    bank_code: BankCodePath, fields: FormDep, request: Request, runtime: BankRuntimeDep
) -> Response:
    """Consent form: approve → redirect with a code; refuse → redirect with access_denied."""
    try:
        with runtime.db.unit_of_work() as session:
            bank, interaction = _resume(
                session, request, bank_code, fields, InteractionStage.CONSENT
            )
            parameters = interactions.parameters(session, interaction)
            interaction.stage = InteractionStage.DONE.value
            client = core.client(session, parameters.client_id)
            account = session.get_one(Account, interaction.account_id)
            if fields.get("decision") != "approve":
                target = _redirect(
                    runtime,
                    bank_code,
                    parameters,
                    error="access_denied",
                    error_description="the holder refused",
                )
            elif grants.is_linked(session, account, client):
                target = _redirect(
                    runtime,
                    bank_code,
                    parameters,
                    error="access_denied",
                    error_description="the account is already linked to a wallet of this operator",
                )
            else:
                code = grants.issue_code(
                    session, bank=bank, client=client, account=account, parameters=parameters
                )
                target = _redirect(runtime, bank_code, parameters, code=code)
    except (SessionInvalid, OAuthError) as error:
        return _error_page(runtime, request, bank_code, str(error))
    response = RedirectResponse(
        target, status_code=status.HTTP_303_SEE_OTHER, headers=page_headers()
    )
    response.delete_cookie(COOKIE, path=f"/v1/banks/{bank_code}/oauth")
    return response


class OAuthRegistrationCreate(BaseModel):
    """An operator client's OAuth registration: exactly one of ``jwks`` and ``jwks_uri``."""

    model_config = ConfigDict(extra="forbid")

    redirect_uris: list[Text] = Field(min_length=1, max_length=10)
    jwks: JsonObject | None = None
    jwks_uri: Text | None = Field(default=None, max_length=500)


class OAuthRegistrationRead(BaseModel):
    """A registration as stored (public keys only)."""

    client_id: str
    redirect_uris: list[str]
    jwks: dict[str, Any] | None
    jwks_uri: str | None


@oauth_router.put(
    "/v1/counter/operators/{client_id}/oauth-registration",
    status_code=status.HTTP_201_CREATED,
    tags=["branch counter"],
    responses=error_responses(InvalidStaffToken, UnknownClient, InvalidBankData),
)
def register_client(
    client_id: str, body: OAuthRegistrationCreate, _staff: StaffDep, runtime: BankRuntimeDep
) -> OAuthRegistrationRead:
    """Register an operator client for the OAuth flow (once)."""
    with runtime.db.unit_of_work() as session:
        client = core.client(session, client_id)
        registration = oauth_clients.register(
            session,
            client,
            redirect_uris=body.redirect_uris,
            jwks=body.jwks,
            jwks_uri=body.jwks_uri,
        )
        return OAuthRegistrationRead(
            client_id=client.client_id,
            jwks=registration.jwks,
            redirect_uris=list(registration.redirect_uris),
            jwks_uri=registration.jwks_uri,
        )
