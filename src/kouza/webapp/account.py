"""The customer's account pages: sign-up, e-mail code, sign-in/out, phone + SMS code with the
browser's device key, more device keys, SMS step-ups, and eKYC with the development card.

Each handler calls the identity service as the JSON API's endpoint does (same arguments, same
client IP), inside one unit of work; a refusal re-renders the page with the service's message.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import load_pem_x509_certificate
from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from kouza.errors import BadRequest, KouzaError
from kouza.identity.devices import SignedChallenge
from kouza.identity.ekyc import EkycMethod
from kouza.identity.ekyc.jpki import challenge_message
from kouza.identity.errors import ProofIncomplete
from kouza.identity.models import User, VerificationLevel
from kouza.identity.service import identity
from kouza.kit.web import client_ip, problem_response
from kouza.wallet.service import wallets
from kouza.webapp.screen import (
    SESSION_COOKIE,
    Visitor,
    VisitorDep,
    delete_cookie,
    forbidden_csrf,
    parse_uuid,
    redirect,
    refused,
    render,
    to_sign_in,
)

router = APIRouter()
FormText = Annotated[str, Form()]
DEV_CARD_PASSPHRASE = "kouza-devca-not-a-secret"
"""The development CA's default passphrase (``kouza dev ca``; public on purpose)."""


def signed_from_form(device_id: str, nonce: str, signature: str) -> SignedChallenge | None:
    """The browser key's proof from hidden fields (all three, or none)."""
    present = [bool(device_id), bool(nonce), bool(signature)]
    if not any(present):
        return None
    parsed = parse_uuid(device_id)
    if not all(present) or parsed is None:
        raise ProofIncomplete("a device proof needs device_id, nonce and signature together")
    return SignedChallenge(parsed, nonce, signature)


def wallet_of(session: Session, user: User) -> uuid.UUID | None:
    found = wallets.wallets_of(session, user=user)
    return found[0].id if found else None


# --- sign-up, e-mail code, sign-in -----------------------------------------------------------


@router.get("/signup")
def signup_page(visitor: VisitorDep) -> Response:
    return render(visitor, "signup.html", {"email": ""})


@router.post("/signup")
def signup(
    visitor: VisitorDep,
    email: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    context: dict[str, Any] = {"email": email}
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "signup.html", context)
    try:
        with visitor.runtime.db.unit_of_work() as session:
            address = identity.request_signup(session, email=email, password=password)
    except KouzaError as error:
        field = "password" if error.code == "weak_password" else "email"
        context["errors"] = {field: error.message}
        return refused(visitor, "signup.html", error, context)
    return render(
        visitor,
        "verify_email.html",
        {"email": address, "message": visitor.t("signup.sent"), "message_kind": "ok"},
        status_code=202,
    )


@router.get("/verify-email")
def verify_email_page(visitor: VisitorDep) -> Response:
    return render(visitor, "verify_email.html", {"email": ""})


@router.post("/verify-email")
def verify_email(
    visitor: VisitorDep, email: FormText = "", code: FormText = "", csrf_token: FormText = ""
) -> Response:
    context: dict[str, Any] = {"email": email}
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "verify_email.html", context)
    try:
        with visitor.runtime.db.unit_of_work() as session:
            identity.verify_email(session, email=email, code=code)
    except KouzaError as error:
        context["errors"] = {"code": error.message}
        return refused(visitor, "verify_email.html", error, context)
    return render(
        visitor,
        "signin.html",
        {"email": email, "message": visitor.t("verify.done"), "message_kind": "ok"},
    )


@router.post("/verify-email/resend")
def resend_code(visitor: VisitorDep, email: FormText = "", csrf_token: FormText = "") -> Response:
    context: dict[str, Any] = {"email": email}
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "verify_email.html", context)
    try:
        with visitor.runtime.db.unit_of_work() as session:
            identity.resend_code(session, email=email)
    except KouzaError as error:
        return refused(visitor, "verify_email.html", error, context)
    return render(visitor, "verify_email.html", {**context, "message": visitor.t("verify.resent")})


@router.get("/signin")
def signin_page(visitor: VisitorDep) -> Response:
    if visitor.user is not None:
        return redirect(visitor, "/app")
    return render(visitor, "signin.html", {"email": ""})


@router.post("/signin")
def signin(
    visitor: VisitorDep,
    request: Request,
    email: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    context: dict[str, Any] = {"email": email}
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "signin.html", context)
    runtime = visitor.runtime
    try:
        with runtime.db.unit_of_work() as session:
            token = identity.login(session, email=email, password=password, ip=client_ip(request))
            user = identity.authenticate(session, token)
            if user.level != VerificationLevel.NONE.value and wallet_of(session, user) is None:
                wallets.open_wallet(session, user=user, ip=client_ip(request))
    except KouzaError as error:
        return refused(visitor, "signin.html", error, context)
    visitor.cookies_to_set[SESSION_COOKIE] = (token, runtime.settings.token_ttl_seconds)
    return redirect(visitor, "/app")


@router.post("/signout")
def signout(visitor: VisitorDep, request: Request, csrf_token: FormText = "") -> Response:
    if visitor.token is None:
        return to_sign_in(visitor)
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "signin.html", {"email": ""})
    with visitor.runtime.db.unit_of_work() as session:
        identity.logout(session, visitor.token)
    visitor.token = None
    response = redirect(visitor, "/app/signin")
    delete_cookie(response, request, SESSION_COOKIE)
    return response


# --- phone and the browser's device key -------------------------------------------------------


@router.get("/phone")
def phone_page(visitor: VisitorDep) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    return render(visitor, "phone.html", {"phone": "", "challenge_id": None})


@router.post("/phone")
def start_phone(
    visitor: VisitorDep, request: Request, phone: FormText = "", csrf_token: FormText = ""
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    context: dict[str, Any] = {"phone": phone, "challenge_id": None}
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "phone.html", context)
    try:
        with visitor.runtime.db.unit_of_work() as session:
            challenge = identity.start_phone_verification(
                session, visitor.user, phone=phone, ip=client_ip(request)
            )
            challenge_id = challenge.id
    except KouzaError as error:
        context["errors"] = {"phone": error.message}
        return refused(visitor, "phone.html", error, context)
    return render(
        visitor,
        "phone.html",
        {
            "phone": phone,
            "challenge_id": str(challenge_id),
            "message": visitor.t("phone.sent"),
        },
        status_code=202,
    )


def parse_jwk(text: str) -> dict[str, Any]:
    """The browser's public key as the JSON the page's script put in the form."""
    try:
        jwk = json.loads(text)
    except ValueError:
        jwk = None
    if not isinstance(jwk, dict):
        raise BadRequest(
            "this browser did not create a device key (the page needs JavaScript and WebCrypto)"
        )
    return jwk


@router.post("/phone/confirm")
def confirm_phone(
    visitor: VisitorDep,
    challenge_id: FormText = "",
    code: FormText = "",
    device_jwk: FormText = "",
    device_name: FormText = "",
    phone: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    context: dict[str, Any] = {"phone": phone, "challenge_id": challenge_id}
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "phone.html", context)
    challenge = parse_uuid(challenge_id)
    try:
        if challenge is None:
            raise BadRequest("start again: the code request is missing")
        jwk = parse_jwk(device_jwk)
        with visitor.runtime.db.unit_of_work() as session:
            identity.complete_phone_verification(
                session,
                visitor.user,
                challenge_id=challenge,
                code=code,
                device_jwk=jwk,
                device_name=(device_name or "browser")[:100],
            )
    except KouzaError as error:
        context["errors"] = {"code": error.message}
        return refused(visitor, "phone.html", error, context)
    return redirect(visitor, "/app?done=phone")


@router.get("/devices")
def devices_page(visitor: VisitorDep) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    return render(visitor, "devices.html", device_context(visitor))


def device_context(visitor: Visitor) -> dict[str, Any]:
    with visitor.runtime.db.unit_of_work() as session:
        listed = [
            {
                "id": str(d.id),
                "name": d.name,
                "added_by": d.added_by or "",
                "created_at": d.created_at,
                "last_used_at": d.last_used_at,
            }
            for d in identity.devices_of(session, visitor.signed_in)
        ]
    return {"device_rows": listed}


@router.post("/devices")
def register_device(
    visitor: VisitorDep,
    request: Request,
    device_jwk: FormText = "",
    device_name: FormText = "",
    device_id: FormText = "",
    nonce: FormText = "",
    signature: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "devices.html", device_context(visitor))
    try:
        jwk = parse_jwk(device_jwk)
        approval = signed_from_form(device_id, nonce, signature)
        with visitor.runtime.db.unit_of_work() as session:
            identity.register_device(
                session,
                visitor.user,
                jwk=jwk,
                name=(device_name or "browser")[:100],
                ip=client_ip(request),
                approval=approval,
            )
    except KouzaError as error:
        return refused(visitor, "devices.html", error, device_context(visitor))
    return redirect(visitor, "/app/devices?done=device")


@router.post("/device/challenge")
def device_challenge(
    visitor: VisitorDep, action: FormText = "", device_id: FormText = "", csrf_token: FormText = ""
) -> Response:
    """A single-use nonce for this browser's key (the page's script signs it before the form it
    belongs to is sent). JSON: the script reads it, no page shows it."""
    if visitor.user is None:
        return problem_response(401, "invalid_token", "sign in first")
    if not visitor.csrf_ok(csrf_token):
        return problem_response(403, "csrf_invalid", visitor.t("error.csrf"))
    device = parse_uuid(device_id)
    if device is None:
        return problem_response(400, "bad_request", "device_id is not an id")
    try:
        with visitor.runtime.db.unit_of_work() as session:
            nonce = identity.issue_device_challenge(session, visitor.user, device, action)
    except KouzaError as error:
        return problem_response(error.status_code, error.code, error.message)
    body = {
        "nonce": nonce,
        "action": action,
        "device_id": str(device),
        "user_id": str(visitor.user.id),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


# --- SMS step-up ------------------------------------------------------------------------------


def local_path(back: str) -> str:
    """Where to return after a step-up: one of our pages, never another site."""
    if back.startswith("/app") and not back.startswith("//") and "\\" not in back:
        return back
    return "/app"


@router.post("/step-up")
def start_step_up(
    visitor: VisitorDep,
    request: Request,
    purpose: FormText = "",
    back: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    context: dict[str, Any] = {"purpose": purpose, "back": local_path(back), "challenge_id": None}
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "step_up.html", context)
    try:
        with visitor.runtime.db.unit_of_work() as session:
            challenge_id = identity.start_step_up(
                session, visitor.user, purpose, ip=client_ip(request)
            )
    except KouzaError as error:
        return refused(visitor, "step_up.html", error, context)
    context["challenge_id"] = str(challenge_id)
    return render(
        visitor, "step_up.html", {**context, "message": visitor.t("stepup.sent")}, status_code=202
    )


@router.post("/step-up/confirm")
def confirm_step_up(
    visitor: VisitorDep,
    purpose: FormText = "",
    back: FormText = "",
    challenge_id: FormText = "",
    code: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    context: dict[str, Any] = {
        "purpose": purpose,
        "back": local_path(back),
        "challenge_id": challenge_id,
    }
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "step_up.html", context)
    challenge = parse_uuid(challenge_id)
    try:
        if challenge is None:
            raise BadRequest("start again: the code request is missing")
        with visitor.runtime.db.unit_of_work() as session:
            identity.complete_step_up(session, visitor.user, challenge, code)
    except KouzaError as error:
        context["errors"] = {"code": error.message}
        return refused(visitor, "step_up.html", error, context)
    back_to = local_path(back)
    joiner = "&" if "?" in back_to else "?"
    return redirect(visitor, f"{back_to}{joiner}stepped={purpose}")


# --- eKYC with the development card -----------------------------------------------------------


@router.get("/ekyc")
def ekyc_page(visitor: VisitorDep) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    return render(visitor, "ekyc.html", ekyc_context(visitor))


def ekyc_context(visitor: Visitor, **values: str) -> dict[str, Any]:
    return {
        "development": visitor.runtime.settings.env != "production",
        "configured": visitor.runtime.ekyc is not None,
        "dev_passphrase": DEV_CARD_PASSPHRASE,
        "kana_name": values.get("kana_name", ""),
        "certificate": values.get("certificate", ""),
    }


def card_signature(certificate_pem: str, key_pem: str, passphrase: str, nonce: str) -> bytes:
    """What the development card returns for ``nonce``: its key (unlocked by the card's
    password) signing the JPKI challenge — the step a phone's card reader does for a real card."""
    try:
        key = serialization.load_pem_private_key(
            key_pem.strip().encode(), password=passphrase.encode() or None
        )
    except (ValueError, TypeError):
        raise BadRequest(
            "the card's key could not be opened: check the key file and the card password"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BadRequest("a My Number card's signing key is an RSA key")
    return key.sign(challenge_message(nonce), padding.PKCS1v15(), hashes.SHA256())


def certificate_der(certificate_pem: str) -> bytes:
    try:
        certificate = load_pem_x509_certificate(certificate_pem.strip().encode())
    except ValueError:
        raise BadRequest("the certificate is not a PEM certificate") from None
    return certificate.public_bytes(serialization.Encoding.DER)


@router.post("/ekyc")
def submit_ekyc(
    visitor: VisitorDep,
    certificate: FormText = "",
    card_key: FormText = "",
    passphrase: FormText = "",
    kana_name: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    context = ekyc_context(visitor, kana_name=kana_name, certificate=certificate)
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "ekyc.html", context)
    if not context["development"]:
        error = BadRequest(visitor.t("ekyc.production_only_app"))
        return refused(visitor, "ekyc.html", error, context)
    try:
        der = certificate_der(certificate)
        # the card's key is opened before a nonce is spent: a wrong password costs nothing
        card_signature(certificate, card_key, passphrase, "probe")
        with visitor.runtime.db.unit_of_work() as session:
            nonce = identity.start_ekyc(session, visitor.user, EkycMethod.JPKI)
        with visitor.runtime.db.unit_of_work() as session:
            identity.submit_jpki(
                session,
                visitor.user,
                certificate=der,
                signature=card_signature(certificate, card_key, passphrase, nonce),
                nonce=nonce,
                kana_name=kana_name,
            )
    except KouzaError as error:
        if error.code == "invalid_kana_name":
            context["errors"] = {"kana_name": error.message}
        return refused(visitor, "ekyc.html", error, context)
    return redirect(visitor, "/app?done=ekyc")
