"""Linking a bank from the customer's pages.

* **OAuth banks** — through the bank's own pages: the form (signed by the browser's device key
  for ``bank.link``) starts the flow exactly as ``POST …/bank-links/oauth`` does and answers with
  a redirect to the bank's authorization page; the bank sends the browser back to
  ``/app/bank-callback`` (``KOUZA_BANK_OAUTH_REDIRECT_URI``), which completes the link as
  ``POST …/bank-links/oauth/callback`` does. The flow is bound to the device that started it;
  its id travels in a cookie (an id, not a secret) so the callback names the same device.
* **Legacy-form banks** — account number, kana name and PIN: the 2020 attack's door. The form
  goes through the same service and schema as ``POST …/bank-links``; when the wallet refuses
  (a bank no operator accepted, no eKYC, no device…) the page shows the reason the API gives.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from kouza.errors import BadRequest, KouzaError
from kouza.kit.pages import page_headers
from kouza.kit.web import client_ip
from kouza.linking.links import Caller
from kouza.linking.oauth import OAuthCallback, oauth_links
from kouza.linking.policy import DeviceProof
from kouza.linking.schemas import BankLinkCreate
from kouza.linking.service import linking
from kouza.webapp.account import signed_from_form, wallet_of
from kouza.webapp.money import wallet_facts
from kouza.webapp.screen import (
    LINK_DEVICE_COOKIE,
    Visitor,
    VisitorDep,
    cookie_name,
    describe,
    finish,
    parse_uuid,
    redirect,
    refused,
    render,
    to_sign_in,
)

router = APIRouter()
FormText = Annotated[str, Form()]
LINK_DEVICE_SECONDS = 15 * 60


def bank_origin(visitor: Visitor) -> str:
    """The bank's origin (the link form answers with a redirect there: CSP ``form-action``)."""
    parts = urlsplit(visitor.runtime.settings.bank_issuer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def banks_headers(visitor: Visitor) -> dict[str, str]:
    origin = bank_origin(visitor)
    return page_headers(form_targets=[origin] if origin else [])


def banks_context(visitor: Visitor, **values: Any) -> dict[str, Any]:
    with visitor.runtime.db.unit_of_work() as session:
        facts = wallet_facts(session, visitor.signed_in)
    return {
        **facts,
        "oauth_bank_code": values.get("oauth_bank_code", ""),
        "legacy": values.get("legacy", {}),
        "errors": values.get("errors", {}),
        "form": values.get("form", ""),
    }


def banks_page_response(visitor: Visitor, context: dict[str, Any]) -> Response:
    return render(visitor, "banks.html", context, headers=banks_headers(visitor))


def refused_banks(visitor: Visitor, error: KouzaError, context: dict[str, Any]) -> Response:
    response = refused(visitor, "banks.html", error, context)
    for name, value in banks_headers(visitor).items():
        response.headers[name] = value
    return response


@router.get("/banks")
def banks_page(visitor: VisitorDep, stepped: str = "") -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    context = banks_context(visitor)
    if stepped:
        context.update(message=visitor.t("stepup.confirmed"), message_kind="ok")
    return banks_page_response(visitor, context)


@router.post("/banks/oauth")
def start_oauth(
    visitor: VisitorDep,
    request: Request,
    oauth_bank_code: FormText = "",
    device_id: FormText = "",
    nonce: FormText = "",
    signature: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    bank_code = oauth_bank_code
    context = banks_context(visitor, oauth_bank_code=bank_code, form="oauth")
    if not visitor.csrf_ok(csrf_token):
        return refused_banks(visitor, BadRequest(visitor.t("error.csrf")), context)
    try:
        proof = signed_from_form(device_id, nonce, signature)
        with visitor.runtime.db.unit_of_work() as session:
            wallet_id = wallet_of(session, visitor.signed_in)
            if wallet_id is None:
                raise BadRequest(visitor.t("error.no_wallet"))
            caller = Caller(
                user=visitor.signed_in,
                wallet_id=wallet_id,
                ip=client_ip(request),
                device_id=proof.device_id if proof else None,
                proof=DeviceProof(proof.nonce, proof.signature) if proof else None,
            )
            started = oauth_links.start(session, caller, bank_code.strip())
    except KouzaError as error:
        context["errors"] = {"oauth_bank_code": error.message} if "bank" in error.code else {}
        return refused_banks(visitor, error, context)
    if proof is not None:
        visitor.cookies_to_set[LINK_DEVICE_COOKIE] = (str(proof.device_id), LINK_DEVICE_SECONDS)
    return finish(visitor, RedirectResponse(started.authorization_url, status_code=303))


@router.get("/bank-callback")
def bank_callback(
    visitor: VisitorDep,
    request: Request,
    state: str = "",
    code: str | None = None,
    iss: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    """Where the bank sends the browser back (``code``, ``state``, ``iss``, or ``error``)."""
    if visitor.user is None:
        return to_sign_in(visitor)
    context = banks_context(visitor, form="oauth")
    device_id = parse_uuid(request.cookies.get(cookie_of(visitor), ""))
    try:
        if not state:
            raise BadRequest(visitor.t("error.callback_without_state"))
        with visitor.runtime.db.unit_of_work() as session:
            wallet_id = wallet_of(session, visitor.signed_in)
            if wallet_id is None:
                raise BadRequest(visitor.t("error.no_wallet"))
            caller = Caller(
                user=visitor.signed_in,
                wallet_id=wallet_id,
                ip=client_ip(request),
                device_id=device_id,
            )
            callback = OAuthCallback(
                state=state[:512],
                code=code[:512] if code else None,
                iss=iss[:512] if iss else None,
                error=error[:64] if error else None,
                error_description=error_description[:300] if error_description else None,
            )
            oauth_links.complete(session, caller, callback)
    except KouzaError as refusal:
        return refused_banks(visitor, refusal, context)
    return redirect(visitor, "/app?done=link")


def cookie_of(visitor: Visitor) -> str:
    return cookie_name(visitor.request, LINK_DEVICE_COOKIE)


LEGACY_FIELDS = ("bank_code", "branch", "account_type", "account_number", "holder_name", "pin")


@router.post("/banks/legacy")
def link_legacy(
    visitor: VisitorDep,
    request: Request,
    bank_code: FormText = "",
    branch: FormText = "",
    account_type: FormText = "ordinary",
    account_number: FormText = "",
    holder_name: FormText = "",
    pin: FormText = "",
    birth_date: FormText = "",
    device_id: FormText = "",
    nonce: FormText = "",
    signature: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    shown = {
        "bank_code": bank_code,
        "branch": branch,
        "account_type": account_type,
        "account_number": account_number,
        "holder_name": holder_name,
        "birth_date": birth_date,
    }
    context = banks_context(visitor, legacy=shown, form="legacy")
    if not visitor.csrf_ok(csrf_token):
        return refused_banks(visitor, BadRequest(visitor.t("error.csrf")), context)
    raw: dict[str, Any] = {
        "bank_code": bank_code.strip(),
        "branch": branch.strip(),
        "account_type": account_type.strip() or "ordinary",
        "account_number": account_number.strip(),
        "pin": pin.strip(),
        "holder_name": holder_name.strip() or None,
        "birth_date": birth_date.strip() or None,
    }
    try:
        form = BankLinkCreate.model_validate(raw)
    except ValidationError as invalid:
        context["errors"] = {
            str(problem["loc"][0]): visitor.t("error.legacy_field") for problem in invalid.errors()
        }
        error = BadRequest(visitor.t("error.check_fields"))
        return render(
            visitor,
            "banks.html",
            {**context, "error": describe(visitor, error)},
            status_code=422,
            headers=banks_headers(visitor),
        )
    try:
        proof = signed_from_form(device_id, nonce, signature)
        with visitor.runtime.db.unit_of_work() as session:
            wallet_id = wallet_of(session, visitor.signed_in)
            if wallet_id is None:
                raise BadRequest(visitor.t("error.no_wallet"))
            linking.link_legacy(
                session,
                user=visitor.signed_in,
                wallet_id=wallet_id,
                bank_code=form.bank_code,
                branch=form.branch,
                account_type=form.account_type,
                account_number=form.account_number,
                pin=form.pin,
                birth_date=form.birth_date,
                holder_name=form.holder_name,
                device_id=proof.device_id if proof else None,
                proof=DeviceProof(proof.nonce, proof.signature) if proof else None,
                ip=client_ip(request),
            )
    except KouzaError as error:
        return refused_banks(visitor, error, context)
    return redirect(visitor, "/app?done=link")
