"""The customer's money pages: home (balance, level, next steps), top-up, pay a merchant QR,
transfer, statement, notices, and a merchant's QR code as an image (for the demo's till).

Money-moving forms carry an ``idempotency_key`` minted when the form is rendered: a double
submit, a reload or a retry after a lost answer moves money once, through the same idempotency
claim the API uses (``kouza.kit.web.run_idempotent`` with the caller's ``user:<id>`` scope for
payments and transfers; the linking service's own claim for top-ups).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kouza.errors import BadRequest, KouzaError
from kouza.identity.devices import SignedChallenge
from kouza.identity.models import User, UserPhone, VerifiedIdentity
from kouza.identity.service import identity
from kouza.kit.outbox import OutboxMessage
from kouza.kit.security import random_token
from kouza.kit.web import client_ip, run_idempotent
from kouza.linking.policy import DeviceProof
from kouza.linking.service import linking
from kouza.wallet.schemas import PaymentRead, TransferRead
from kouza.wallet.service import wallets
from kouza.webapp.account import signed_from_form, wallet_of
from kouza.webapp.screen import (
    Visitor,
    VisitorDep,
    forbidden_csrf,
    parse_uuid,
    parse_yen,
    refused,
    render,
    to_sign_in,
)

router = APIRouter()
FormText = Annotated[str, Form()]


def new_key() -> str:
    """A fresh Idempotency-Key for one rendered form."""
    return f"app-{random_token()}"


def wallet_facts(session: Session, user: User) -> dict[str, Any]:
    wallet_id = wallet_of(session, user)
    facts: dict[str, Any] = {"wallet_id": str(wallet_id) if wallet_id else None}
    if wallet_id is None:
        return facts
    wallet = wallets.owned_wallet(session, user=user, wallet_id=wallet_id)
    balance = wallets.balance(session, wallet)
    facts.update(
        wallet_status=wallet.status,
        balance=balance.balance,
        available=balance.available,
        pending_in=balance.pending_in,
        held=balance.pending_out,
        links=[
            {
                "id": str(link.id),
                "bank_code": link.bank_code,
                "branch": link.branch,
                "last3": link.account_last3,
                "status": link.status,
                "status_reason": link.status_reason,
                "max_per_debit": link.max_per_debit,
                "restricted": link.restricted,
                "created_at": link.created_at,
            }
            for link in linking.links(session, user=user, wallet_id=wallet_id)
        ],
    )
    return facts


def home_context(visitor: Visitor) -> dict[str, Any]:
    user = visitor.signed_in
    with visitor.runtime.db.unit_of_work() as session:
        current = identity.get_user(session, user.id)
        phone_row = session.get(UserPhone, current.id)
        verified = session.get(VerifiedIdentity, user.id)
        return {
            "level": current.level,
            "phone": phone_row.e164 if phone_row else None,
            "kana_name": verified.kana_name if verified else None,
            "may_charge": identity.may_charge(session, current),
            "device_count": len(identity.devices_of(session, current)),
            **wallet_facts(session, current),
        }


@router.get("")
def home(visitor: VisitorDep, done: str = "") -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    message = visitor.t(f"done.{done}") if done in DONE else None
    return render(
        visitor, "home.html", {**home_context(visitor), "message": message, "message_kind": "ok"}
    )


DONE = {"phone", "ekyc", "link", "topup", "pay", "transfer", "device"}


# --- top-up -----------------------------------------------------------------------------------


def topup_context(visitor: Visitor, **values: Any) -> dict[str, Any]:
    with visitor.runtime.db.unit_of_work() as session:
        facts = wallet_facts(session, visitor.signed_in)
    return {
        **facts,
        "idempotency_key": values.get("idempotency_key") or new_key(),
        "amount": values.get("amount", ""),
        "link_id": values.get("link_id", ""),
        "result": values.get("result"),
    }


@router.get("/topup")
def topup_page(visitor: VisitorDep, stepped: str = "") -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    return render(
        visitor, "topup.html", {**topup_context(visitor), **stepped_message(visitor, stepped)}
    )


def stepped_message(visitor: Visitor, stepped: str) -> dict[str, Any]:
    if not stepped:
        return {}
    return {"message": visitor.t("stepup.confirmed"), "message_kind": "ok"}


@router.post("/topup")
def topup(
    visitor: VisitorDep,
    request: Request,
    link_id: FormText = "",
    amount: FormText = "",
    idempotency_key: FormText = "",
    device_id: FormText = "",
    nonce: FormText = "",
    signature: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    values = {"idempotency_key": idempotency_key, "amount": amount, "link_id": link_id}
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "topup.html", topup_context(visitor, **values))
    try:
        yen, link = parse_yen(amount), parse_uuid(link_id)
        if yen is None:
            raise BadRequest(visitor.t("error.amount"), field="amount")
        if link is None:
            raise BadRequest(visitor.t("error.choose_link"), field="link_id")
        if not idempotency_key:
            raise BadRequest(visitor.t("error.reload_form"))
        proof = signed_from_form(device_id, nonce, signature)
        with visitor.runtime.db.unit_of_work() as session:
            wallet_id = wallet_of(session, visitor.signed_in)
        if wallet_id is None:
            raise BadRequest(visitor.t("error.no_wallet"))
        result = linking.top_up(
            visitor.runtime,
            user=visitor.signed_in,
            wallet_id=wallet_id,
            link_id=link,
            amount=yen,
            idempotency_key=idempotency_key,
            device_id=proof.device_id if proof else None,
            proof=_device_proof(proof),
            ip=client_ip(request),
        )
    except KouzaError as error:
        return refused(visitor, "topup.html", error, topup_context(visitor, **values))
    context = topup_context(visitor, result=result)
    context["message"] = result.message or visitor.t(
        "topup.held" if result.review == "held" else "topup.done", amount=f"{result.amount:,}"
    )
    context["message_kind"] = "warn" if result.review == "held" else "ok"
    return render(visitor, "topup.html", context, status_code=201)


def _device_proof(proof: SignedChallenge | None) -> DeviceProof | None:
    return DeviceProof(nonce=proof.nonce, signature=proof.signature) if proof else None


# --- pay a merchant QR ------------------------------------------------------------------------


def pay_context(visitor: Visitor, **values: Any) -> dict[str, Any]:
    with visitor.runtime.db.unit_of_work() as session:
        facts = wallet_facts(session, visitor.signed_in)
    return {
        **facts,
        "idempotency_key": values.get("idempotency_key") or new_key(),
        "qr": values.get("qr", ""),
        "amount": values.get("amount", ""),
        "free_yen": visitor.runtime.settings.money_out_free_payment_yen,
    }


@router.get("/pay")
def pay_page(visitor: VisitorDep, stepped: str = "", qr: str = "") -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    context = {**pay_context(visitor, qr=qr[:2048]), **stepped_message(visitor, stepped)}
    return render(visitor, "pay.html", context)


@router.post("/pay")
def pay(
    visitor: VisitorDep,
    request: Request,
    qr: FormText = "",
    amount: FormText = "",
    idempotency_key: FormText = "",
    device_id: FormText = "",
    nonce: FormText = "",
    signature: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    values = {"idempotency_key": idempotency_key, "qr": qr, "amount": amount}
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "pay.html", pay_context(visitor, **values))
    user = visitor.signed_in
    try:
        yen = parse_yen(amount) if amount.strip() else None
        if amount.strip() and yen is None:
            raise BadRequest(visitor.t("error.amount"), field="amount")
        if not qr.strip():
            raise BadRequest(visitor.t("error.qr_missing"), field="qr")
        if not idempotency_key:
            raise BadRequest(visitor.t("error.reload_form"))
        signed = signed_from_form(device_id, nonce, signature)
        with visitor.runtime.db.unit_of_work() as session:
            wallet_id = wallet_of(session, user)
        if wallet_id is None:
            raise BadRequest(visitor.t("error.no_wallet"))
        payment = run_idempotent(
            visitor.runtime,
            scope=f"user:{user.id}",
            key=idempotency_key,
            model=PaymentRead,
            # the API's request fields: a retry through the API with this key replays too
            request_payload=["pay", str(wallet_id), {"qr": qr.strip(), "amount": yen}],
            operation=lambda session: PaymentRead.model_validate(
                wallets.pay(
                    session,
                    user=user,
                    wallet_id=wallet_id,
                    qr=qr.strip(),
                    amount=yen,
                    signed=signed,
                    ip=client_ip(request),
                )
            ),
        )
    except KouzaError as error:
        return refused(visitor, "pay.html", error, pay_context(visitor, **values))
    context = pay_context(visitor)
    context["message"] = visitor.t("pay.done", amount=f"{payment.amount:,}")
    context["message_kind"] = "ok"
    context["payment"] = payment
    return render(visitor, "pay.html", context, status_code=201)


# --- transfer ---------------------------------------------------------------------------------


def transfer_context(visitor: Visitor, **values: Any) -> dict[str, Any]:
    with visitor.runtime.db.unit_of_work() as session:
        facts = wallet_facts(session, visitor.signed_in)
    return {
        **facts,
        "idempotency_key": values.get("idempotency_key") or new_key(),
        "to_wallet_id": values.get("to_wallet_id", ""),
        "amount": values.get("amount", ""),
        "note": values.get("note", ""),
    }


@router.get("/transfer")
def transfer_page(visitor: VisitorDep, stepped: str = "") -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    context = {**transfer_context(visitor), **stepped_message(visitor, stepped)}
    return render(visitor, "transfer.html", context)


@router.post("/transfer")
def transfer(
    visitor: VisitorDep,
    request: Request,
    to_wallet_id: FormText = "",
    amount: FormText = "",
    note: FormText = "",
    idempotency_key: FormText = "",
    device_id: FormText = "",
    nonce: FormText = "",
    signature: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    values = {
        "idempotency_key": idempotency_key,
        "to_wallet_id": to_wallet_id,
        "amount": amount,
        "note": note,
    }
    if not visitor.csrf_ok(csrf_token):
        return forbidden_csrf(visitor, "transfer.html", transfer_context(visitor, **values))
    user = visitor.signed_in
    try:
        yen, destination = parse_yen(amount), parse_uuid(to_wallet_id)
        if destination is None:
            raise BadRequest(visitor.t("error.wallet_id"), field="to_wallet_id")
        if yen is None:
            raise BadRequest(visitor.t("error.amount"), field="amount")
        if len(note) > 200:
            raise BadRequest(visitor.t("error.note"), field="note")
        if not idempotency_key:
            raise BadRequest(visitor.t("error.reload_form"))
        signed = signed_from_form(device_id, nonce, signature)
        with visitor.runtime.db.unit_of_work() as session:
            wallet_id = wallet_of(session, user)
        if wallet_id is None:
            raise BadRequest(visitor.t("error.no_wallet"))
        fields = {"to_wallet_id": str(destination), "amount": yen, "message": note}
        sent = run_idempotent(
            visitor.runtime,
            scope=f"user:{user.id}",
            key=idempotency_key,
            model=TransferRead,
            request_payload=["transfer", str(wallet_id), fields],
            operation=lambda session: TransferRead.model_validate(
                wallets.transfer(
                    session,
                    user=user,
                    source_wallet_id=wallet_id,
                    destination_wallet_id=destination,
                    amount=yen,
                    message=note,
                    signed=signed,
                    ip=client_ip(request),
                )
            ),
        )
    except KouzaError as error:
        return refused(visitor, "transfer.html", error, transfer_context(visitor, **values))
    context = transfer_context(visitor)
    context["message"] = visitor.t("transfer.done", amount=f"{sent.amount:,}")
    context["message_kind"] = "ok"
    return render(visitor, "transfer.html", context, status_code=201)


# --- statement and notices --------------------------------------------------------------------


@router.get("/statement")
def statement(visitor: VisitorDep, before: str = "") -> Response:
    if visitor.user is None:
        return to_sign_in(visitor)
    page_from = int(before) if before.isascii() and before.isdigit() and len(before) < 19 else None
    if page_from is not None and not 1 <= page_from < 2**63:
        page_from = None
    with visitor.runtime.db.unit_of_work() as session:
        facts = wallet_facts(session, visitor.signed_in)
        lines = []
        if facts["wallet_id"]:
            wallet = wallets.owned_wallet(
                session, user=visitor.signed_in, wallet_id=uuid.UUID(facts["wallet_id"])
            )
            lines = wallets.statement(session, wallet, limit=50, before_id=page_from)
    next_before = lines[-1].posting_id if len(lines) == 50 else None
    return render(visitor, "statement.html", {**facts, "lines": lines, "next_before": next_before})


@router.get("/notices")
def notices(visitor: VisitorDep) -> Response:
    """What the wallet sent this customer: e-mails to their address and SMS to their verified
    phone (the outbox keeps when and how, never the text once delivered: codes travel in it),
    and what happened to their bank links."""
    if visitor.user is None:
        return to_sign_in(visitor)
    user = visitor.signed_in
    with visitor.runtime.db.unit_of_work() as session:
        phone = session.get(UserPhone, user.id)
        recipients = [user.email] + ([phone.e164] if phone else [])
        rows = session.scalars(
            select(OutboxMessage)
            .where(or_(*(OutboxMessage.recipient == r for r in recipients)))
            .order_by(OutboxMessage.id.desc())
            .limit(100)
        ).all()
        messages = [
            {
                "channel": row.channel,
                "recipient": row.recipient,
                "created_at": row.created_at,
                "delivered_at": row.delivered_at,
            }
            for row in rows
        ]
        facts = wallet_facts(session, user)
    return render(visitor, "notices.html", {**facts, "messages": messages})


# --- a merchant's QR code (for the demo's till) -----------------------------------------------


@router.get("/merchants/{merchant_id}/qr")
def merchant_qr(
    visitor: VisitorDep,
    merchant_id: str,
    amount: str = "",
) -> Response:
    """The merchant's kouza-signed QR as an image (segno, SVG) with its payload to copy: static
    (the customer types the amount) or, with ``amount``, dynamic for one purchase."""
    merchant = parse_uuid(merchant_id)
    yen = parse_yen(amount) if amount else None
    if merchant is None or (amount and (yen is None or yen > 1_000_000)):
        return render(visitor, "merchant_qr.html", {"qr": None}, status_code=404)
    try:
        with visitor.runtime.db.unit_of_work() as session:
            shop = wallets.get_merchant(session, merchant)
            payload = wallets.merchant_qr(session, merchant_id=merchant, amount=yen)
            name = shop.name
    except KouzaError:
        return render(visitor, "merchant_qr.html", {"qr": None}, status_code=404)
    image = segno.make(payload, error="m").svg_data_uri(scale=4, border=4)
    return render(
        visitor,
        "merchant_qr.html",
        {"qr": payload, "image": image, "merchant_name": name, "amount": yen},
    )
