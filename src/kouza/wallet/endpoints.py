"""Customer wallet endpoints (``/v1/wallets``): open, balance, statement, pay, transfer; and
``/v1/auth/not-me``, identity's takeover report, which locks the customer's wallets.

Every wallet id in a path is resolved through the caller's ownership; another user's wallet is
"not found", exactly like an id that does not exist. Money-moving calls require an
``Idempotency-Key`` header (see :mod:`kouza.kit.idempotency`) and, for money out, a device
signature or an SMS step-up (:mod:`kouza.identity.proofs`, ADR 0021). The device an action is
filed under is the one whose key signed it: no header names a device (the old ``X-Device-Id``
was typed by the client and is gone).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status

from kouza.controls.cases import cases
from kouza.errors import IdempotencyConflict, IdempotencyInFlight
from kouza.identity.dependencies import AuthenticatedInUnitOfWork, SessionUser
from kouza.identity.errors import (
    DeviceChallengeExpired,
    DeviceChallengeInvalid,
    DeviceChallengeReplayed,
    DeviceRevoked,
    DeviceSignatureInvalid,
    InvalidNotMeToken,
    InvalidToken,
    LevelRequired,
    PhoneRequired,
    StepUpRequired,
    UnknownDevice,
)
from kouza.identity.schemas import NotMeRead, NotMeReport
from kouza.identity.service import identity
from kouza.kit.openapi import error_responses
from kouza.kit.web import MAX_BIGINT, client_ip, run_idempotent
from kouza.ledger.errors import InsufficientFunds
from kouza.runtime import RuntimeDep, SessionDep
from kouza.wallet.enforcement import HeldForReview, RiskRefused
from kouza.wallet.errors import (
    AmountMismatch,
    InvalidQr,
    LimitExceeded,
    MerchantNotActive,
    ProofIncomplete,
    QrAlreadyPaid,
    SelfTransfer,
    UnknownWallet,
    WalletExists,
    WalletNotActive,
)
from kouza.wallet.locks import locks
from kouza.wallet.models import Wallet, WalletStatus
from kouza.wallet.schemas import (
    PaymentCreate,
    PaymentRead,
    StatementLine,
    StatementRead,
    TransferCreate,
    TransferRead,
    WalletRead,
)
from kouza.wallet.service import wallets

router = APIRouter(tags=["wallet"])
takeover_router = APIRouter(tags=["identity"])
"""Identity's "not me" answer, which locks wallets: served here, the layer that owns locks."""

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Unique per intended operation; a retry with the same key and body "
        "returns the first result",
    ),
]
MOVE_ERRORS = (
    RiskRefused,
    HeldForReview,
    StepUpRequired,
    PhoneRequired,
    InvalidToken,
    UnknownWallet,
    WalletNotActive,
    LevelRequired,
    InsufficientFunds,
    LimitExceeded,
    IdempotencyConflict,
    IdempotencyInFlight,
    ProofIncomplete,
    UnknownDevice,
    DeviceRevoked,
    DeviceChallengeInvalid,
    DeviceChallengeExpired,
    DeviceChallengeReplayed,
    DeviceSignatureInvalid,
)


def _wallet_read(session: SessionDep, wallet: Wallet) -> WalletRead:
    balance = wallets.balance(session, wallet)
    return WalletRead(
        id=wallet.id,
        status=wallet.status,
        balance=balance.balance,
        available=balance.available,
        held=balance.pending_out,
        created_at=wallet.created_at,
    )


@router.post(
    "/v1/wallets",
    status_code=status.HTTP_201_CREATED,
    response_model=WalletRead,
    responses=error_responses(InvalidToken, LevelRequired, WalletExists),
)
def open_wallet(user: SessionUser, session: SessionDep, request: Request) -> WalletRead:
    """Open the caller's wallet (needs a verified e-mail address)."""
    wallet = wallets.open_wallet(session, user=user, ip=client_ip(request))
    return _wallet_read(session, wallet)


@router.get("/v1/wallets", response_model=list[WalletRead], responses=error_responses(InvalidToken))
def list_wallets(user: SessionUser, session: SessionDep) -> list[WalletRead]:
    """The caller's wallets."""
    return [_wallet_read(session, w) for w in wallets.wallets_of(session, user=user)]


@router.get(
    "/v1/wallets/{wallet_id}",
    response_model=WalletRead,
    responses=error_responses(InvalidToken, UnknownWallet),
)
def get_wallet(wallet_id: uuid.UUID, user: SessionUser, session: SessionDep) -> WalletRead:
    """Balance and status of one of the caller's wallets."""
    return _wallet_read(session, wallets.owned_wallet(session, user=user, wallet_id=wallet_id))


@router.get(
    "/v1/wallets/{wallet_id}/statement",
    response_model=StatementRead,
    responses=error_responses(InvalidToken, UnknownWallet),
)
def statement(
    wallet_id: uuid.UUID,
    user: SessionUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_BIGINT, description="posting id to page from")
    ] = None,
) -> StatementRead:
    """Movements of the wallet, newest first, with the balance after each."""
    wallet = wallets.owned_wallet(session, user=user, wallet_id=wallet_id)
    rows = wallets.statement(session, wallet, limit=limit, before_id=before)
    lines = [StatementLine(**row.__dict__) for row in rows]
    return StatementRead(
        wallet_id=wallet.id,
        balance=wallets.balance(session, wallet).balance,
        lines=lines,
        next_before=lines[-1].posting_id if len(lines) == limit else None,
    )


@router.post(
    "/v1/wallets/{wallet_id}/payments",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentRead,
    responses=error_responses(
        *MOVE_ERRORS, InvalidQr, AmountMismatch, QrAlreadyPaid, MerchantNotActive
    ),
)
def pay(
    wallet_id: uuid.UUID,
    body: PaymentCreate,
    caller: AuthenticatedInUnitOfWork,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
    request: Request,
) -> PaymentRead:
    """Pay a merchant from its kouza-signed QR code (above the free amount: device-signed or
    SMS stepped-up for ``payment``)."""
    signed = body.signed_challenge()
    return run_idempotent(
        runtime,
        scope=caller.scope,
        key=idempotency_key,
        model=PaymentRead,
        request_payload=["pay", str(wallet_id), body.request_fields()],
        operation=lambda session: PaymentRead.model_validate(
            wallets.pay(
                session,
                user=caller.user,
                wallet_id=wallet_id,
                qr=body.qr,
                amount=body.amount,
                signed=signed,
                ip=client_ip(request),
            )
        ),
    )


@router.post(
    "/v1/wallets/{wallet_id}/transfers",
    status_code=status.HTTP_201_CREATED,
    response_model=TransferRead,
    responses=error_responses(*MOVE_ERRORS, SelfTransfer),
)
def transfer(
    wallet_id: uuid.UUID,
    body: TransferCreate,
    caller: AuthenticatedInUnitOfWork,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
    request: Request,
) -> TransferRead:
    """Send money to another wallet (device-signed or SMS stepped-up for ``transfer``)."""
    signed = body.signed_challenge()
    return run_idempotent(
        runtime,
        scope=caller.scope,
        key=idempotency_key,
        model=TransferRead,
        request_payload=["transfer", str(wallet_id), body.request_fields()],
        operation=lambda session: TransferRead.model_validate(
            wallets.transfer(
                session,
                user=caller.user,
                source_wallet_id=wallet_id,
                destination_wallet_id=body.to_wallet_id,
                amount=body.amount,
                message=body.message,
                signed=signed,
                ip=client_ip(request),
            )
        ),
    )


@takeover_router.post(
    "/v1/auth/not-me",
    response_model=NotMeRead,
    responses=error_responses(InvalidNotMeToken),
)
def not_me(body: NotMeReport, session: SessionDep) -> NotMeRead:
    """The "not me" link of a new-sign-in notice: signs out every session of the account and
    locks its wallets (money stays; the fraud team calls back and unlocks)."""
    user, revoked = identity.report_not_me(session, body.token)
    locked = 0
    for wallet in wallets.wallets_of(session, user=user):
        if wallet.status == WalletStatus.LOCKED.value:
            continue
        locks.lock(
            session,
            wallet_id=wallet.id,
            actor=f"customer:{user.id}",
            reason="the customer reported a sign-in that was not theirs",
        )
        cases.open(
            session,
            wallet_id=wallet.id,
            source="customer:not-me",
            summary="customer reported an unrecognised sign-in",
            actor=f"customer:{user.id}",
            details={},
        )
        locked += 1
    return NotMeRead(sessions_revoked=revoked, wallets_locked=locked)
