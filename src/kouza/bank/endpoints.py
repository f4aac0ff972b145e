"""The bank's HTTP API: operator-client routes (``/v1``) and branch-counter routes.

Every route opens its own unit of work, so a refusal that must be remembered (a wrong PIN, a
failed attempt counted by monitoring) is committed by ``keep_changes`` and everything else rolls
back. Errors are listed in each route's OpenAPI ``responses``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, status
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kouza.bank.alerts import NoticeRejected, operator_alerts
from kouza.bank.core import core
from kouza.bank.dependencies import (
    BankRuntimeDep,
    ClientAuthInUnitOfWork,
    ClientInUnitOfWork,
    CurrentClient,
    CurrentClientAuth,
    StaffDep,
    require_link_credentials,
)
from kouza.bank.errors import (
    AlreadyLinked,
    AlreadyReversed,
    InsufficientBalance,
    InvalidAmount,
    InvalidBankData,
    InvalidClient,
    InvalidStaffToken,
    LegacyFormNotOffered,
    LinkNotActive,
    LinkRefused,
    MandateExceeded,
    SourceBlocked,
    UnknownAccount,
    UnknownBank,
    UnknownClient,
    UnknownLink,
    UnknownTransfer,
)
from kouza.bank.holder import holder
from kouza.bank.keys import public_jwks
from kouza.bank.legacy_form import LegacyLinkForm, legacy_linking
from kouza.bank.models import Alert, Link, OperatorClient, Transfer, TransferKind
from kouza.bank.oauth.errors import (
    InvalidDPoPProof,
    InvalidToken,
    UseDPoPNonce,
    oauth_error_responses,
)
from kouza.bank.schemas import (
    AccountNumberPath,
    AccountSettingsRead,
    BankCodePath,
    BankRead,
    BranchCodePath,
    CounterLinkRead,
    LegacyLinkCreate,
    LinkRead,
    NotMe,
    OverdraftOptIn,
    ReasonBody,
    TransferCreate,
    TransferRead,
)
from kouza.bank.transfers import TransferRequest, TransferResult, transfers
from kouza.errors import BadRequest, IdempotencyConflict, IdempotencyInFlight, KouzaError
from kouza.kit.openapi import error_responses
from kouza.kit.web import client_ip

router = APIRouter(prefix="/v1", tags=["operator client"])
counter = APIRouter(prefix="/v1/counter", tags=["branch counter"])
wellknown = APIRouter(tags=["keys"])
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=255)]
TRANSFER_ERRORS = (
    InvalidClient,
    UnknownLink,
    LinkNotActive,
    MandateExceeded,
    InsufficientBalance,
    InvalidAmount,
    IdempotencyConflict,
    IdempotencyInFlight,
    UnknownTransfer,
    AlreadyReversed,
)
TRANSFER_RESPONSES = oauth_error_responses(
    InvalidToken,
    InvalidDPoPProof,
    UseDPoPNonce,
    resource=True,
    base=error_responses(*TRANSFER_ERRORS),
)
"""A legacy link: the client's private_key_jwt or secret; an OAuth link: only its DPoP-bound
token with a proof (RFC 9449 §7; ADR 0022)."""
LINK_RESPONSES = oauth_error_responses(
    InvalidToken,
    InvalidDPoPProof,
    UseDPoPNonce,
    resource=True,
    base=error_responses(InvalidClient, UnknownLink),
)


@wellknown.get("/.well-known/jwks.json")
def jwks(runtime: BankRuntimeDep) -> dict[str, Any]:
    """The public keys that verify the bank's signed webhooks."""
    return public_jwks(runtime.secret)


@router.get("/banks", response_model=list[BankRead])
def list_banks(runtime: BankRuntimeDep) -> list[BankRead]:
    """The banks this deployment serves and how each links accounts."""
    with runtime.db.unit_of_work() as session:
        return [BankRead.model_validate(bank) for bank in core.banks(session)]


@router.post(
    "/banks/{bank_code}/legacy-links",
    status_code=status.HTTP_201_CREATED,
    response_model=LinkRead,
    responses=error_responses(
        InvalidClient,
        UnknownBank,
        InvalidBankData,
        LinkRefused,
        LegacyFormNotOffered,
        SourceBlocked,
        AlreadyLinked,
    ),
)
def legacy_link(
    bank_code: BankCodePath,
    body: LegacyLinkCreate,
    client: CurrentClient,
    runtime: BankRuntimeDep,
    request: Request,
) -> LinkRead:
    """The 2020 legacy form: every credential failure is the same ``link_refused``."""
    form = LegacyLinkForm(**body.model_dump(exclude={"end_user_source"}))
    source = body.end_user_source or f"ip:{client_ip(request)}"
    with runtime.db.unit_of_work() as session:
        link = legacy_linking.link(
            session, client=client, bank_code=bank_code, form=form, source=source
        )
        return LinkRead.model_validate(link)


@router.get("/links/{link_id}", response_model=LinkRead, responses=LINK_RESPONSES)
def get_link(link_id: uuid.UUID, auth: CurrentClientAuth, runtime: BankRuntimeDep) -> LinkRead:
    """One of the client's links (its status tells whether debits may run)."""
    with runtime.db.unit_of_work() as session:
        link = holder.link(session, link_id)
        if link.client_pk != auth.client.id:
            raise UnknownLink("no such link", link_id=str(link_id))
        require_link_credentials(session, auth, link_id)
        return LinkRead.model_validate(link)


@router.post(
    "/links/{link_id}/revoke",
    response_model=LinkRead,
    responses={**LINK_RESPONSES, **error_responses(LinkNotActive)},
)
def revoke_link(
    link_id: uuid.UUID, body: ReasonBody, auth: CurrentClientAuth, runtime: BankRuntimeDep
) -> LinkRead:
    """The operator ends one of its links (its user unlinked): debits stop at once."""
    with runtime.db.unit_of_work() as session:
        link = holder.link(session, link_id)
        if link.client_pk != auth.client.id:
            raise UnknownLink("no such link", link_id=str(link_id))
        require_link_credentials(session, auth, link_id)
        return LinkRead.model_validate(
            holder.revoke(session, link_id, reason=f"operator: {body.reason}")
        )


def _run_transfer(
    runtime: BankRuntimeDep,
    client: ClientInUnitOfWork,
    kind: TransferKind,
    link_id: uuid.UUID,
    body: TransferCreate,
    key: str,
) -> TransferRead:
    """Authenticate and transfer in one transaction. The transfer runs in a savepoint: a
    refusal undoes it alone, and the authentication's writes (the DPoP proof's or the client
    assertion's ``jti``, spent) commit all the same, as they did in a transaction of their own."""
    request = TransferRequest(
        kind=kind,
        link_id=link_id,
        amount=body.amount,
        idempotency_key=key,
        description=body.description,
        reverses=body.reverses if kind is TransferKind.CREDIT else None,
    )
    with runtime.db.unit_of_work() as session:
        auth = client.authenticate(session)
        try:
            with session.begin_nested():
                require_link_credentials(session, auth, link_id)
                result = transfers.execute(session, client=auth.client, request=request)
        except KouzaError as refusal:
            refusal.keep_changes = True
            raise
        return _transfer_read(result.transfer, result)


@router.post(
    "/links/{link_id}/debits",
    status_code=status.HTTP_201_CREATED,
    response_model=TransferRead,
    responses=TRANSFER_RESPONSES,
)
def debit(
    link_id: uuid.UUID,
    body: TransferCreate,
    auth: ClientAuthInUnitOfWork,
    runtime: BankRuntimeDep,
    idempotency_key: IdempotencyKey,
) -> TransferRead:
    """Instant debit (wallet top-up) under the link's mandate; idempotent per key."""
    return _run_transfer(runtime, auth, TransferKind.DEBIT, link_id, body, idempotency_key)


@router.post(
    "/links/{link_id}/credits",
    status_code=status.HTTP_201_CREATED,
    response_model=TransferRead,
    responses=TRANSFER_RESPONSES,
)
def credit(
    link_id: uuid.UUID,
    body: TransferCreate,
    auth: ClientAuthInUnitOfWork,
    runtime: BankRuntimeDep,
    idempotency_key: IdempotencyKey,
) -> TransferRead:
    """Credit the linked account (wallet withdrawal); idempotent per key."""
    return _run_transfer(runtime, auth, TransferKind.CREDIT, link_id, body, idempotency_key)


@router.post(
    "/links/{link_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    response_model=TransferRead,
    responses=TRANSFER_RESPONSES,
)
def refund(
    link_id: uuid.UUID,
    body: TransferCreate,
    auth: CurrentClientAuth,
    runtime: BankRuntimeDep,
    idempotency_key: IdempotencyKey,
) -> TransferRead:
    """Compensation credit to a victim's account (accepted on a revoked link); idempotent.
    On an OAuth link: its DPoP-bound token, or the client's private_key_jwt (never the secret)."""
    request = TransferRequest(
        kind=TransferKind.CREDIT,
        link_id=link_id,
        amount=body.amount,
        idempotency_key=idempotency_key,
        description=body.description,
    )
    with runtime.db.unit_of_work() as session:
        require_link_credentials(session, auth, link_id, compensation=True)
        result = operator_alerts.refund(session, client=auth.client, request=request)
        return _transfer_read(result.transfer, result)


class NoticeAccepted(BaseModel):
    """The alert an operator notice raised (``replayed``: this event id was seen before)."""

    alert_id: int
    kind: str
    event_id: str
    replayed: bool
    created_at: datetime


@router.post(
    "/operator-notices",
    response_model=NoticeAccepted,
    responses=error_responses(InvalidClient, NoticeRejected, UnknownLink),
)
def operator_notice(
    client: CurrentClient,
    runtime: BankRuntimeDep,
    token: Annotated[
        bytes,
        Body(
            media_type="application/jose", description="The operator's signed notice (compact JWS)"
        ),
    ],
) -> NoticeAccepted:
    """A signed operator notice (a wallet linked to an account was frozen for suspected fraud):
    recorded as an alert on the account once per event id; the holder is warned once."""
    try:
        text = token.decode("ascii").strip()
    except UnicodeDecodeError:
        raise NoticeRejected("a notice is a compact JWS (ASCII)") from None
    with runtime.db.unit_of_work() as session:
        result = operator_alerts.receive(session, client=client, token=text)
        alert = result.alert
        return NoticeAccepted(
            alert_id=alert.id,
            kind=alert.kind,
            event_id=alert.event_id or "",
            replayed=result.replayed,
            created_at=alert.created_at,
        )


@router.get(
    "/transfers/{transfer_id}",
    response_model=TransferRead,
    responses=error_responses(InvalidClient, UnknownTransfer),
)
def get_transfer(
    transfer_id: uuid.UUID, client: CurrentClient, runtime: BankRuntimeDep
) -> TransferRead:
    """One of the client's transfers, for reconciliation."""
    with runtime.db.unit_of_work() as session:
        return _transfer_read(transfers.get(session, client=client, transfer_id=transfer_id))


@router.get(
    "/transfers",
    response_model=list[TransferRead],
    responses=error_responses(InvalidClient, UnknownTransfer, BadRequest),
)
def find_transfers(
    client: CurrentClient,
    runtime: BankRuntimeDep,
    idempotency_key: Annotated[str | None, Query(max_length=255)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[TransferRead]:
    """The transfer with an idempotency key, or every transfer in ``[since, until)``."""
    with runtime.db.unit_of_work() as session:
        if idempotency_key is not None:
            found = transfers.get(session, client=client, idempotency_key=idempotency_key)
            return [_transfer_read(found)]
        if since is None or until is None or since.tzinfo is None or until.tzinfo is None:
            raise BadRequest("give idempotency_key, or since and until with a time zone")
        return [
            _transfer_read(t)
            for t in transfers.report(session, client=client, since=since, until=until)
        ]


def _transfer_read(transfer: Transfer, result: TransferResult | None = None) -> TransferRead:
    return TransferRead(
        id=transfer.id,
        link_id=transfer.link_id,
        kind=TransferKind(transfer.kind),
        amount=transfer.amount,
        description=transfer.description,
        idempotency_key=transfer.idempotency_key,
        created_at=transfer.created_at,
        replayed=result.replayed if result else False,
    )


ACCOUNT_PATH = "/banks/{bank_code}/branches/{branch_code}/accounts/{number}"
COUNTER_ERRORS = (InvalidStaffToken, UnknownBank, UnknownAccount, InvalidBankData)


@counter.get(
    ACCOUNT_PATH + "/links",
    response_model=list[CounterLinkRead],
    responses=error_responses(*COUNTER_ERRORS),
)
def account_links(
    bank_code: BankCodePath,
    branch_code: BranchCodePath,
    number: AccountNumberPath,
    _staff: StaffDep,
    runtime: BankRuntimeDep,
) -> list[CounterLinkRead]:
    """Every wallet link on the account ("is my account linked to a wallet?")."""
    with runtime.db.unit_of_work() as session:
        account = core.account(session, bank_code=bank_code, branch_code=branch_code, number=number)
        return [
            _counter_read(session.get_one(OperatorClient, link.client_pk), link)
            for link in holder.links(session, account)
        ]


@counter.post(
    "/links/{link_id}/revoke",
    response_model=CounterLinkRead,
    responses=error_responses(InvalidStaffToken, UnknownLink, LinkNotActive),
)
def revoke(
    link_id: uuid.UUID, body: ReasonBody, _staff: StaffDep, runtime: BankRuntimeDep
) -> CounterLinkRead:
    """Revoke a link: debits stop at once; the operator gets a signed webhook."""
    with runtime.db.unit_of_work() as session:
        link = holder.revoke(session, link_id, reason=body.reason)
        return _counter_read(session.get_one(OperatorClient, link.client_pk), link)


@counter.post(
    ACCOUNT_PATH + "/operators/{client_id}/{action}",
    response_model=list[CounterLinkRead],
    responses=error_responses(*COUNTER_ERRORS, UnknownClient),
)
def suspend_or_resume(
    bank_code: BankCodePath,
    branch_code: BranchCodePath,
    number: AccountNumberPath,
    client_id: str,
    action: str,
    body: ReasonBody,
    _staff: StaffDep,
    runtime: BankRuntimeDep,
) -> list[CounterLinkRead]:
    """``suspend`` or ``resume`` every debit of one operator on the account."""
    if action not in ("suspend", "resume"):
        raise InvalidBankData("action must be 'suspend' or 'resume'")
    with runtime.db.unit_of_work() as session:
        account = core.account(session, bank_code=bank_code, branch_code=branch_code, number=number)
        client = core.client(session, client_id)
        change = holder.suspend_operator if action == "suspend" else holder.resume_operator
        return [
            _counter_read(client, link)
            for link in change(session, account, client, reason=body.reason)
        ]


@counter.put(
    ACCOUNT_PATH + "/overdraft-opt-in",
    response_model=AccountSettingsRead,
    responses=error_responses(*COUNTER_ERRORS),
)
def overdraft_opt_in(
    bank_code: BankCodePath,
    branch_code: BranchCodePath,
    number: AccountNumberPath,
    body: OverdraftOptIn,
    _staff: StaffDep,
    runtime: BankRuntimeDep,
) -> AccountSettingsRead:
    """Let debits draw the secured overdraft, or exclude it (the default)."""
    with runtime.db.unit_of_work() as session:
        account = core.account(session, bank_code=bank_code, branch_code=branch_code, number=number)
        account = holder.set_overdraft_opt_in(
            session, account, enabled=body.debit_may_use_overdraft
        )
        return AccountSettingsRead.model_validate(account, from_attributes=True)


class SecurityNoticeRead(BaseModel):
    """A security notice sent to a holder (ADR 0022): what happened, when, its reference."""

    kind: str
    """``oauth_identity_mismatch`` or ``legacy_failed_attempts``."""
    created_at: datetime
    notice_reference: str
    operator_name: str | None
    reported_not_me: bool


@counter.get(
    ACCOUNT_PATH + "/security-notices",
    response_model=list[SecurityNoticeRead],
    responses=error_responses(*COUNTER_ERRORS),
)
def security_notices(
    bank_code: BankCodePath,
    branch_code: BranchCodePath,
    number: AccountNumberPath,
    _staff: StaffDep,
    runtime: BankRuntimeDep,
) -> list[SecurityNoticeRead]:
    """The security notices the account's holder was sent (failed identity checks, failed
    legacy attempts), newest first: what the holder sees and can answer "not me" to."""
    with runtime.db.unit_of_work() as session:
        account = core.account(session, bank_code=bank_code, branch_code=branch_code, number=number)
        return [_notice_read(session, alert) for alert in holder.security_notices(session, account)]


@counter.post(
    "/not-me",
    response_model=CounterLinkRead | SecurityNoticeRead,
    responses=error_responses(InvalidStaffToken, UnknownLink),
)
def not_me(
    body: NotMe, _staff: StaffDep, runtime: BankRuntimeDep
) -> CounterLinkRead | SecurityNoticeRead:
    """The holder quotes the reference on a notice ("not me"): a link is revoked at once; a
    security notice's credential (internet-banking login, or the account's PIN) is locked."""
    with runtime.db.unit_of_work() as session:
        found = holder.not_me(session, body.reference)
        if isinstance(found, Alert):
            return _notice_read(session, found)
        return _counter_read(session.get_one(OperatorClient, found.client_pk), found)


def _notice_read(session: Session, alert: Alert) -> SecurityNoticeRead:
    client = session.get(OperatorClient, alert.client_pk) if alert.client_pk else None
    reported = session.scalar(
        select(func.count())
        .select_from(Alert)
        .where(
            Alert.kind == "holder_confirmed_compromise",
            Alert.subject == f"notice:{alert.notice_reference}",
        )
    )
    return SecurityNoticeRead(
        kind=alert.kind,
        created_at=alert.created_at,
        notice_reference=alert.notice_reference or "",
        operator_name=client.name if client else None,
        reported_not_me=bool(reported),
    )


def _counter_read(client: OperatorClient, link: Link) -> CounterLinkRead:
    return CounterLinkRead.model_validate(
        {
            **LinkRead.model_validate(link).model_dump(),
            "operator_client_id": client.client_id,
            "operator_name": client.name,
            "notice_reference": link.notice_reference,
            "revoked_reason": link.revoked_reason,
        }
    )
