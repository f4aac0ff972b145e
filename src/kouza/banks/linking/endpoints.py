"""Bank-linking endpoints: link accounts, list links, top up, withdraw; the bank's webhooks.

Wallet ids in paths are resolved through the caller's ownership (another user's wallet is "not
found"). Top-ups and withdrawals need an ``Idempotency-Key``; they run through
:func:`~kouza.kit.web.run_idempotent`, whose own unit of work is only used to store the result:
the movement commits its record before calling the bank and settles afterwards in units of work
of its own (:mod:`kouza.banks.linking.movements`). A lost bank answer is a 503
``bank_outcome_unknown``; the key is released, so the same request retried with the same key
asks the bank again under the same bank-side key and can never move money twice.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Request, status

from kouza.banks.bank.webhooks import MEDIA_TYPE, WebhookRejected
from kouza.banks.linking.errors import (
    AccountAlreadyLinked,
    BankLinkNotActive,
    BankLinkRefused,
    BankOutcomeUnknown,
    BankUnavailable,
    DeviceSignatureRequired,
    InvalidBankDetails,
    LegacyBankNotAccepted,
    LegacyFormNotOffered,
    MandateExceeded,
    MovementRefused,
    RiskRefused,
    TooManyBankLinks,
    UnderReview,
    UnknownBank,
    UnknownBankLink,
    VerifiedNameRequired,
)
from kouza.banks.linking.models import BankMovement
from kouza.banks.linking.policy import DeviceProof
from kouza.banks.linking.schemas import (
    BankLinkCreate,
    BankLinkRead,
    BankMovementCreate,
    BankMovementRead,
    DeviceSigned,
    WebhookAccepted,
)
from kouza.banks.linking.service import linking
from kouza.errors import IdempotencyConflict, IdempotencyInFlight
from kouza.identity.dependencies import CurrentUser
from kouza.identity.errors import (
    InvalidToken,
    LevelRequired,
    ReverificationRequired,
    StepUpRequired,
)
from kouza.kit.openapi import error_responses
from kouza.kit.web import RuntimeDep, SessionDep, client_ip, run_idempotent
from kouza.ledger.errors import InsufficientFunds, InvalidAmount
from kouza.ops.errors import KillSwitchActive
from kouza.wallet.errors import LimitExceeded, UnknownWallet, WalletNotActive

router = APIRouter(tags=["bank linking"])

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Unique per intended movement; a retry with the same key and body "
        "returns the first result and never moves money twice",
    ),
]
GATE_ERRORS = (
    InvalidToken,
    UnknownWallet,
    WalletNotActive,
    LevelRequired,
    ReverificationRequired,
    DeviceSignatureRequired,
    StepUpRequired,
    RiskRefused,
    UnderReview,
    KillSwitchActive,
    BankUnavailable,
)
MOVE_ERRORS = (
    *GATE_ERRORS,
    UnknownBankLink,
    BankLinkNotActive,
    InvalidAmount,
    LimitExceeded,
    InsufficientFunds,
    MandateExceeded,
    MovementRefused,
    BankOutcomeUnknown,
    IdempotencyConflict,
    IdempotencyInFlight,
)


def _proof(body: DeviceSigned) -> DeviceProof | None:
    if body.nonce is None or body.signature is None:
        return None
    return DeviceProof(nonce=body.nonce, signature=body.signature)


@router.post(
    "/v1/wallets/{wallet_id}/bank-links",
    status_code=status.HTTP_201_CREATED,
    response_model=BankLinkRead,
    responses=error_responses(
        *GATE_ERRORS,
        InvalidBankDetails,
        VerifiedNameRequired,
        TooManyBankLinks,
        AccountAlreadyLinked,
        LegacyBankNotAccepted,
        LegacyFormNotOffered,
        BankLinkRefused,
        UnknownBank,
    ),
)
def link_account(
    wallet_id: uuid.UUID,
    body: BankLinkCreate,
    user: CurrentUser,
    session: SessionDep,
    request: Request,
) -> BankLinkRead:
    """Link a bank account through its bank's registration form (account, PIN, name)."""
    link = linking.link_legacy(
        session,
        user=user,
        wallet_id=wallet_id,
        bank_code=body.bank_code,
        branch=body.branch,
        account_type=body.account_type,
        account_number=body.account_number,
        pin=body.pin,
        birth_date=body.birth_date,
        holder_name=body.holder_name,
        device_id=body.device_id,
        proof=_proof(body),
        ip=client_ip(request),
    )
    return BankLinkRead.model_validate(link)


@router.get(
    "/v1/wallets/{wallet_id}/bank-links",
    response_model=list[BankLinkRead],
    responses=error_responses(InvalidToken, UnknownWallet),
)
def list_links(wallet_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> list[BankLinkRead]:
    """The wallet's linked accounts (revoked ones included, with their status)."""
    return [
        BankLinkRead.model_validate(link)
        for link in linking.links(session, user=user, wallet_id=wallet_id)
    ]


def _movement(
    runtime: RuntimeDep,
    wallet_id: uuid.UUID,
    body: BankMovementCreate,
    user: CurrentUser,
    key: str,
    request: Request,
    *,
    top_up: bool,
) -> BankMovementRead:
    move = linking.top_up if top_up else linking.withdraw
    ip = client_ip(request)

    def operation(_session: object) -> BankMovementRead:
        movement: BankMovement = move(
            runtime,
            user=user,
            wallet_id=wallet_id,
            link_id=body.link_id,
            amount=body.amount,
            idempotency_key=key,
            device_id=body.device_id,
            proof=_proof(body),
            ip=ip,
        )
        return BankMovementRead.model_validate(movement)

    return run_idempotent(
        runtime,
        scope=f"user:{user.id}",
        key=key,
        model=BankMovementRead,
        request_payload=[
            "topup" if top_up else "withdrawal",
            str(wallet_id),
            body.model_dump(mode="json"),
        ],
        operation=operation,
    )


@router.post(
    "/v1/wallets/{wallet_id}/topups",
    status_code=status.HTTP_201_CREATED,
    response_model=BankMovementRead,
    responses=error_responses(*MOVE_ERRORS),
)
def top_up(
    wallet_id: uuid.UUID,
    body: BankMovementCreate,
    user: CurrentUser,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
    request: Request,
) -> BankMovementRead:
    """Charge the wallet from a linked account (instant debit under the mandate)."""
    return _movement(runtime, wallet_id, body, user, idempotency_key, request, top_up=True)


@router.post(
    "/v1/wallets/{wallet_id}/withdrawals",
    status_code=status.HTTP_201_CREATED,
    response_model=BankMovementRead,
    responses=error_responses(*MOVE_ERRORS),
)
def withdraw(
    wallet_id: uuid.UUID,
    body: BankMovementCreate,
    user: CurrentUser,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
    request: Request,
) -> BankMovementRead:
    """Send wallet balance to a linked account."""
    return _movement(runtime, wallet_id, body, user, idempotency_key, request, top_up=False)


@router.post(
    "/v1/banks/webhooks",
    response_model=WebhookAccepted,
    responses=error_responses(WebhookRejected, BankUnavailable),
)
def bank_webhook(
    session: SessionDep,
    token: Annotated[
        bytes, Body(media_type=MEDIA_TYPE, description="The bank's signed event (compact JWS)")
    ],
) -> WebhookAccepted:
    """A signed event from the bank (link revoked, suspended or resumed)."""
    try:
        text = token.decode("ascii").strip()
    except UnicodeDecodeError:
        raise WebhookRejected("a webhook body is a compact JWS (ASCII)") from None
    link = linking.receive_webhook(session, text)
    return WebhookAccepted(event="accepted", applied=link is not None)
