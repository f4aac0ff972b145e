"""Bank-linking endpoints: link accounts, list links, top up, withdraw; the bank's webhooks.

Wallet ids in paths are resolved through the caller's ownership (another user's wallet is "not
found"). Top-ups and withdrawals need an ``Idempotency-Key``, which the linking service claims
itself (:meth:`kouza.linking.movements.MovementService.move` through
:func:`kouza.kit.idempotency.run`, as for the simulator's and the tests' direct calls): the
movement commits its record before calling the bank and settles afterwards in units of work of
its own. A lost bank answer is a 503 ``bank_outcome_unknown``; the key stays *open* with the
movement attached, so the same request retried with the same key resumes that movement — asks
the bank again under the same bank-side key — and can never move money twice.

Links at ``oauth`` banks (ADR 0013) are started with ``POST …/bank-links/oauth`` (the answer is
the bank's authorization URL for the user's browser) and completed with
``POST …/bank-links/oauth/callback`` (the app relays the bank's redirect). The wallet's public
client keys are at ``GET /v1/banks/oauth/jwks.json`` for a bank's ``jwks_uri``. Operators
release or reject top-ups held for review under ``/v1/ops/bank-reviews``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, status

from kouza.controls.dependencies import CurrentOperator
from kouza.controls.errors import (
    InvalidOperatorToken,
    KillSwitchActive,
    ReasonRequired,
    RoleRequired,
)
from kouza.errors import IdempotencyConflict, IdempotencyInFlight
from kouza.identity.dependencies import AuthenticatedInUnitOfWork, SessionUser
from kouza.identity.errors import (
    InvalidToken,
    LevelRequired,
    ReverificationRequired,
    StepUpRequired,
)
from kouza.kit.openapi import error_responses
from kouza.kit.web import client_ip
from kouza.ledger.errors import InsufficientFunds, InvalidAmount
from kouza.linking.errors import (
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
    OAuthIssuerMismatch,
    OAuthMaterialUnavailable,
    OAuthNotOffered,
    OAuthStateInvalid,
    ReviewNotFound,
    ReviewNotPending,
    ReviewNotReady,
    RiskRefused,
    TooManyBankLinks,
    UnderReview,
    UnknownBank,
    UnknownBankLink,
    VerifiedNameRequired,
)
from kouza.linking.keys import client_jwks
from kouza.linking.links import Caller
from kouza.linking.models import ReviewStatus
from kouza.linking.oauth import OAuthCallback, oauth_links
from kouza.linking.policy import DeviceProof
from kouza.linking.reviews import ReviewView, reviews
from kouza.linking.schemas import (
    BankLinkCreate,
    BankLinkRead,
    BankMovementCreate,
    BankMovementRead,
    BankReviewRead,
    DeviceSigned,
    OAuthLinkCallback,
    OAuthLinkStart,
    OAuthLinkStarted,
    ReviewDecision,
    WebhookAccepted,
)
from kouza.linking.service import linking
from kouza.protocol.webhooks import MEDIA_TYPE, WebhookRejected
from kouza.runtime import RuntimeDep, SessionDep
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
    user: SessionUser,
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
def list_links(wallet_id: uuid.UUID, user: SessionUser, session: SessionDep) -> list[BankLinkRead]:
    """The wallet's linked accounts (revoked ones included, with their status)."""
    return [
        BankLinkRead.model_validate(link)
        for link in linking.links(session, user=user, wallet_id=wallet_id)
    ]


def _movement(
    runtime: RuntimeDep,
    wallet_id: uuid.UUID,
    body: BankMovementCreate,
    caller: AuthenticatedInUnitOfWork,
    key: str,
    request: Request,
    *,
    top_up: bool,
) -> BankMovementRead:
    move = linking.top_up if top_up else linking.withdraw
    return move(
        runtime,
        user=caller.detached_user,
        wallet_id=wallet_id,
        link_id=body.link_id,
        amount=body.amount,
        idempotency_key=key,
        device_id=body.device_id,
        proof=_proof(body),
        ip=client_ip(request),
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
    caller: AuthenticatedInUnitOfWork,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
    request: Request,
) -> BankMovementRead:
    """Charge the wallet from a linked account (instant debit under the mandate)."""
    return _movement(runtime, wallet_id, body, caller, idempotency_key, request, top_up=True)


@router.post(
    "/v1/wallets/{wallet_id}/withdrawals",
    status_code=status.HTTP_201_CREATED,
    response_model=BankMovementRead,
    responses=error_responses(*MOVE_ERRORS),
)
def withdraw(
    wallet_id: uuid.UUID,
    body: BankMovementCreate,
    caller: AuthenticatedInUnitOfWork,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
    request: Request,
) -> BankMovementRead:
    """Send wallet balance to a linked account."""
    return _movement(runtime, wallet_id, body, caller, idempotency_key, request, top_up=False)


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


OAUTH_START_ERRORS = (
    *GATE_ERRORS,
    InvalidBankDetails,
    VerifiedNameRequired,
    TooManyBankLinks,
    OAuthNotOffered,
    UnknownBank,
    BankLinkRefused,
    OAuthMaterialUnavailable,
)


@router.post(
    "/v1/wallets/{wallet_id}/bank-links/oauth",
    status_code=status.HTTP_201_CREATED,
    response_model=OAuthLinkStarted,
    responses=error_responses(*OAUTH_START_ERRORS),
)
def start_oauth_link(
    wallet_id: uuid.UUID,
    body: OAuthLinkStart,
    user: SessionUser,
    session: SessionDep,
    request: Request,
) -> OAuthLinkStarted:
    """Start linking an account at an ``oauth`` bank: open the returned URL in a browser."""
    caller = Caller(
        user=user,
        wallet_id=wallet_id,
        ip=client_ip(request),
        device_id=body.device_id,
        proof=_proof(body),
    )
    started = oauth_links.start(session, caller, body.bank_code)
    return OAuthLinkStarted(
        flow_id=started.flow_id,
        authorization_url=started.authorization_url,
        expires_at=started.expires_at,
    )


@router.post(
    "/v1/wallets/{wallet_id}/bank-links/oauth/callback",
    status_code=status.HTTP_201_CREATED,
    response_model=BankLinkRead,
    responses=error_responses(
        *GATE_ERRORS,
        OAuthStateInvalid,
        OAuthIssuerMismatch,
        InvalidBankDetails,
        TooManyBankLinks,
        AccountAlreadyLinked,
        BankLinkRefused,
        OAuthMaterialUnavailable,
    ),
)
def complete_oauth_link(
    wallet_id: uuid.UUID,
    body: OAuthLinkCallback,
    user: SessionUser,
    session: SessionDep,
    request: Request,
) -> BankLinkRead:
    """Complete an OAuth link with the bank's redirect (code, state, iss) relayed by the app."""
    caller = Caller(user=user, wallet_id=wallet_id, ip=client_ip(request), device_id=body.device_id)
    callback = OAuthCallback(
        state=body.state,
        code=body.code,
        iss=body.iss,
        error=body.error,
        error_description=body.error_description,
    )
    return BankLinkRead.model_validate(oauth_links.complete(session, caller, callback))


@router.get("/v1/banks/oauth/jwks.json", responses=error_responses(OAuthMaterialUnavailable))
def wallet_client_jwks(runtime: RuntimeDep) -> dict[str, Any]:
    """The wallet operator's public client keys (a bank may register this as ``jwks_uri``)."""
    return client_jwks(runtime)


def _review_read(view: ReviewView) -> BankReviewRead:
    review, movement, refund = view.review, view.movement, view.refund
    return BankReviewRead(
        movement_id=movement.id,
        wallet_id=movement.wallet_id,
        link_id=movement.link_id,
        amount=movement.amount,
        status=review.status,
        movement_status=movement.status,
        rules=list(review.rules or []),
        created_at=review.created_at,
        decided_at=review.decided_at,
        decided_by=review.decided_by,
        decision_reason=review.decision_reason,
        refund_movement_id=review.refund_movement_id,
        refund_status=refund.status if refund is not None else None,
    )


REVIEW_DECISION_ERRORS = (
    InvalidOperatorToken,
    RoleRequired,
    ReasonRequired,
    ReviewNotFound,
    ReviewNotPending,
    ReviewNotReady,
)


@router.get(
    "/v1/ops/bank-reviews",
    tags=["operations"],
    response_model=list[BankReviewRead],
    responses=error_responses(InvalidOperatorToken, RoleRequired),
)
def list_reviews(
    _operator: CurrentOperator,
    session: SessionDep,
    review_status: Annotated[ReviewStatus | None, Query(alias="status")] = ReviewStatus.HELD,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BankReviewRead]:
    """Top-ups held for review (by default those waiting for a decision), oldest first."""
    return [_review_read(v) for v in reviews.list(session, status=review_status, limit=limit)]


@router.get(
    "/v1/ops/bank-reviews/{movement_id}",
    tags=["operations"],
    response_model=BankReviewRead,
    responses=error_responses(InvalidOperatorToken, RoleRequired, ReviewNotFound),
)
def get_review(
    movement_id: uuid.UUID, _operator: CurrentOperator, session: SessionDep
) -> BankReviewRead:
    """One held top-up by its movement id."""
    return _review_read(reviews.get(session, movement_id))


@router.post(
    "/v1/ops/bank-reviews/{movement_id}/release",
    tags=["operations"],
    response_model=BankReviewRead,
    responses=error_responses(*REVIEW_DECISION_ERRORS),
)
def release_review(
    movement_id: uuid.UUID,
    body: ReviewDecision,
    operator: CurrentOperator,
    session: SessionDep,
) -> BankReviewRead:
    """Release a held top-up: the money becomes spendable (audited)."""
    view = reviews.release(
        session, movement_id, actor=f"operator:{operator.name}", reason=body.reason
    )
    return _review_read(view)


@router.post(
    "/v1/ops/bank-reviews/{movement_id}/reject",
    tags=["operations"],
    response_model=BankReviewRead,
    responses=error_responses(*REVIEW_DECISION_ERRORS, BankUnavailable),
)
def reject_review(
    movement_id: uuid.UUID,
    body: ReviewDecision,
    operator: CurrentOperator,
    runtime: RuntimeDep,
) -> BankReviewRead:
    """Reject a held top-up: the money goes back to the bank account (audited)."""
    view = reviews.reject(
        runtime, movement_id, actor=f"operator:{operator.name}", reason=body.reason
    )
    return _review_read(view)
