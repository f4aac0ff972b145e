"""Operator API (``/v1/ops``): ledger batches and verification, merchants, credits, refunds,
kill switches, wallet locks (and the bank notices they send), cases, compensation, the call
centre (enquiries, account lookup, spend trace) and the regulator report.

Only operator tokens are accepted here; every write needs a reason and is audited.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, BeforeValidator
from sqlalchemy.orm import Session

from kouza.controls.cases import cases
from kouza.controls.dependencies import CallCentreOperator, CurrentAdmin, CurrentOperator
from kouza.controls.errors import (
    InvalidCaseTransition,
    InvalidOperatorToken,
    ReasonRequired,
    RoleRequired,
    UnknownCase,
)
from kouza.controls.models import CaseStatus, Operator
from kouza.controls.service import controls
from kouza.controls.switches import switches
from kouza.errors import IdempotencyConflict, IdempotencyInFlight
from kouza.kit.openapi import error_responses
from kouza.kit.web import run_idempotent
from kouza.ledger.errors import InsufficientFunds, InvalidAmount, InvalidEntry, UnknownAccount
from kouza.ledger.service import EntrySpec, Leg, ledger
from kouza.linking import notices
from kouza.ops import report
from kouza.ops.callcentre import AccountRef, callcentre, spend_csv
from kouza.ops.compensation import CompensationReport, compensations
from kouza.ops.errors import (
    CaseNotConfirmed,
    InvalidOpsInput,
    MovementsUnresolved,
    UnknownVictimAccount,
    WalletNotLocked,
)
from kouza.ops.schemas import (
    AccountLookupRead,
    AccountQuery,
    AccountRead,
    BankNoticeRead,
    BatchCreate,
    BatchRead,
    CaseCreate,
    CaseMove,
    CaseRead,
    CompensationPaymentRead,
    CompensationRead,
    CostCreate,
    CostRead,
    CreditCreate,
    DeliveryRead,
    EnquiryCreate,
    EnquiryRead,
    EnquiryTaken,
    MerchantCreate,
    MerchantRead,
    PostedRead,
    QrRead,
    ReasonCreate,
    RefundCreate,
    RefundRead,
    SpendLineRead,
    SwitchChange,
    SwitchRead,
    TopUpRead,
    VerifyRead,
    VictimRead,
    WalletStatusRead,
)
from kouza.ops.shadow import shadow_report
from kouza.runtime import RuntimeDep, SessionDep
from kouza.wallet.errors import (
    LimitExceeded,
    RefundTooLarge,
    UnknownMerchant,
    UnknownPayment,
    UnknownWallet,
    WalletNotActive,
)
from kouza.wallet.locks import locks
from kouza.wallet.service import wallets

router = APIRouter(prefix="/v1/ops", tags=["operator"])
AUTH = (InvalidOperatorToken, RoleRequired)
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=255)]


def _actor(operator: Operator) -> str:
    return f"operator:{operator.name}"


@router.post(
    "/ledger/batches",
    status_code=status.HTTP_201_CREATED,
    response_model=BatchRead,
    responses=error_responses(
        *AUTH,
        InvalidEntry,
        InvalidAmount,
        UnknownAccount,
        InsufficientFunds,
        IdempotencyConflict,
        IdempotencyInFlight,
    ),
)
def post_batch(
    body: BatchCreate, operator: CurrentAdmin, runtime: RuntimeDep, idempotency_key: IdempotencyKey
) -> BatchRead:
    """Post up to 10,000 journal entries atomically (all or none), for high-rate callers."""

    def operation(session: Session) -> BatchRead:
        codes = [leg.account for entry in body.entries for leg in entry.legs]
        ids = ledger.account_ids(session, codes)
        specs = [
            EntrySpec(
                kind=entry.kind,
                description=entry.description,
                legs=tuple(Leg(ids[leg.account], leg.amount) for leg in entry.legs),
                idempotency_key=entry.idempotency_key,
                reference=entry.reference,
            )
            for entry in body.entries
        ]
        posted = ledger.post_batch(session, specs)
        controls.audit(
            session,
            actor=_actor(operator),
            action="ledger.batch",
            reason=body.reason,
            details={"entries": len(posted), "first": posted[0].id},
        )
        return BatchRead(
            count=len(posted),
            entries=[PostedRead(id=p.id, kind=p.kind, replayed=p.replayed) for p in posted],
        )

    return run_idempotent(
        runtime,
        scope=f"operator:{operator.id}",
        key=idempotency_key,
        request_payload=["batch", body.model_dump(mode="json")],
        model=BatchRead,
        operation=operation,
    )


@router.get("/ledger/verify", response_model=VerifyRead, responses=error_responses(*AUTH))
def verify(operator: CurrentOperator, session: SessionDep) -> VerifyRead:
    """Recompute every balance from the postings and report any difference."""
    report = ledger.verify(session)
    return VerifyRead(
        ok=report.ok,
        accounts=report.accounts,
        entries=report.entries,
        postings=report.postings,
        total_balance=report.total_balance,
        problems=report.problems,
    )


@router.get(
    "/ledger/accounts/{code}",
    response_model=AccountRead,
    responses=error_responses(*AUTH, UnknownAccount),
)
def account(code: str, operator: CurrentOperator, session: SessionDep) -> AccountRead:
    """Balance of a ledger account by code."""
    account_id = ledger.account_ids(session, [code])[code]
    row = ledger.get_account(session, account_id)
    return AccountRead(
        code=row.code,
        kind=row.kind,
        balance=row.balance,
        available=row.balance - row.pending_out,
        pending_out=row.pending_out,
        pending_in=row.pending_in,
    )


@router.post(
    "/merchants",
    status_code=status.HTTP_201_CREATED,
    response_model=MerchantRead,
    responses=error_responses(*AUTH),
)
def create_merchant(
    body: MerchantCreate, operator: CurrentAdmin, session: SessionDep
) -> MerchantRead:
    """Create a merchant with its own ledger account."""
    merchant = wallets.create_merchant(session, name=body.name, category=body.category)
    controls.audit(
        session,
        actor=_actor(operator),
        action="merchant.create",
        subject=str(merchant.id),
        reason="new merchant",
        details={"name": body.name},
    )
    return MerchantRead.model_validate(merchant)


@router.get(
    "/merchants/{merchant_id}/qr",
    response_model=QrRead,
    responses=error_responses(*AUTH, UnknownMerchant),
)
def merchant_qr(
    merchant_id: uuid.UUID,
    operator: CurrentOperator,
    session: SessionDep,
    amount: Annotated[int | None, Query(gt=0, le=1_000_000)] = None,
) -> QrRead:
    """A signed QR payload for the merchant (dynamic with ``amount``, else static)."""
    return QrRead(qr=wallets.merchant_qr(session, merchant_id=merchant_id, amount=amount))


@router.post(
    "/wallets/{wallet_id}/credits",
    status_code=status.HTTP_201_CREATED,
    response_model=TopUpRead,
    responses=error_responses(
        *AUTH,
        UnknownWallet,
        WalletNotActive,
        LimitExceeded,
        IdempotencyConflict,
        IdempotencyInFlight,
    ),
)
def credit(
    wallet_id: uuid.UUID,
    body: CreditCreate,
    operator: CurrentAdmin,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
) -> TopUpRead:
    """Credit a wallet from the operator float (testing, goodwill)."""

    def operation(session: Session) -> TopUpRead:
        topup = wallets.credit_from_float(
            session, wallet_id=wallet_id, amount=body.amount, reason=body.reason
        )
        controls.audit(
            session,
            actor=_actor(operator),
            action="wallet.credit",
            subject=str(wallet_id),
            reason=body.reason,
            details={"amount": body.amount},
        )
        return TopUpRead.model_validate(topup)

    return run_idempotent(
        runtime,
        scope=f"operator:{operator.id}",
        key=idempotency_key,
        request_payload=["credit", str(wallet_id), body.model_dump()],
        model=TopUpRead,
        operation=operation,
    )


@router.post(
    "/payments/{payment_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    response_model=RefundRead,
    responses=error_responses(
        *AUTH, UnknownPayment, RefundTooLarge, IdempotencyConflict, IdempotencyInFlight
    ),
)
def refund(
    payment_id: uuid.UUID,
    body: RefundCreate,
    operator: CurrentAdmin,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
) -> RefundRead:
    """Refund (part of) a payment from the merchant back to the wallet."""

    def operation(session: Session) -> RefundRead:
        done = wallets.refund(
            session, payment_id=payment_id, amount=body.amount, reason=body.reason
        )
        controls.audit(
            session,
            actor=_actor(operator),
            action="payment.refund",
            subject=str(payment_id),
            reason=body.reason,
            details={"amount": body.amount},
        )
        return RefundRead.model_validate(done)

    return run_idempotent(
        runtime,
        scope=f"operator:{operator.id}",
        key=idempotency_key,
        request_payload=["refund", str(payment_id), body.model_dump()],
        model=RefundRead,
        operation=operation,
    )


@router.put(
    "/switches", response_model=SwitchRead, responses=error_responses(*AUTH, ReasonRequired)
)
def set_switch(body: SwitchChange, operator: CurrentAdmin, session: SessionDep) -> SwitchRead:
    """Turn a kill switch on or off; effective for the very next request (idempotent)."""
    switch = switches.set(
        session,
        scope=body.scope,
        target=body.target,
        active=body.active,
        actor=_actor(operator),
        reason=body.reason,
    )
    return SwitchRead.model_validate(switch)


@router.get("/switches", response_model=list[SwitchRead], responses=error_responses(*AUTH))
def list_switches(operator: CurrentOperator, session: SessionDep) -> list[SwitchRead]:
    """The switches that are on."""
    return [SwitchRead.model_validate(s) for s in switches.active(session)]


@router.post(
    "/wallets/{wallet_id}/lock",
    response_model=WalletStatusRead,
    responses=error_responses(*AUTH, UnknownWallet, ReasonRequired),
)
def lock_wallet(
    wallet_id: uuid.UUID, body: ReasonCreate, operator: CurrentAdmin, session: SessionDep
) -> WalletStatusRead:
    """Freeze a wallet: no spending or withdrawal; the balance is kept (idempotent)."""
    wallet = locks.lock(session, wallet_id=wallet_id, actor=_actor(operator), reason=body.reason)
    return WalletStatusRead.model_validate(wallet)


@router.post(
    "/wallets/{wallet_id}/unlock",
    response_model=WalletStatusRead,
    responses=error_responses(*AUTH, UnknownWallet, ReasonRequired),
)
def unlock_wallet(
    wallet_id: uuid.UUID, body: ReasonCreate, operator: CurrentAdmin, session: SessionDep
) -> WalletStatusRead:
    """Lift a wallet lock."""
    wallet = locks.unlock(session, wallet_id=wallet_id, actor=_actor(operator), reason=body.reason)
    return WalletStatusRead.model_validate(wallet)


@router.post(
    "/cases",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseRead,
    responses=error_responses(*AUTH, UnknownWallet),
)
def open_case(body: CaseCreate, operator: CurrentOperator, session: SessionDep) -> CaseRead:
    """Open a case about a wallet (or return its case that is still open)."""
    wallets.get_wallet(session, body.wallet_id)
    case = cases.open(
        session,
        wallet_id=body.wallet_id,
        source=_actor(operator),
        summary=body.summary,
        actor=_actor(operator),
    )
    return CaseRead.model_validate(case)


@router.post(
    "/cases/{case_id}/status",
    response_model=CaseRead,
    responses=error_responses(*AUTH, UnknownCase, InvalidCaseTransition),
)
def move_case(
    case_id: uuid.UUID, body: CaseMove, operator: CurrentOperator, session: SessionDep
) -> CaseRead:
    """Investigate, confirm fraud or clear a case."""
    case = cases.move(
        session, case_id=case_id, to=body.status, actor=_actor(operator), note=body.note
    )
    return CaseRead.model_validate(case)


@router.get("/cases", response_model=list[CaseRead], responses=error_responses(*AUTH))
def list_cases(
    operator: CurrentOperator,
    session: SessionDep,
    status_filter: Annotated[CaseStatus | None, Query(alias="status")] = None,
) -> list[CaseRead]:
    """Cases, newest first."""
    return [CaseRead.model_validate(c) for c in cases.list(session, status=status_filter)]


# --- compensation ---------------------------------------------------------------------------


def _compensation_read(report: CompensationReport) -> CompensationRead:
    return CompensationRead(
        compensation_id=report.compensation_id,
        case_id=report.case_id,
        wallet_id=report.wallet_id,
        status=report.status,
        clawed_back=report.clawed_back,
        refunded=report.refunded,
        costs_paid=report.costs_paid,
        outstanding=report.outstanding,
        net_cost=report.net_cost,
        payments=[CompensationPaymentRead.model_validate(p) for p in report.payments],
    )


@router.get(
    "/cases/{case_id}/victims",
    response_model=list[VictimRead],
    responses=error_responses(*AUTH, UnknownCase),
)
def case_victims(
    case_id: uuid.UUID, operator: CurrentOperator, session: SessionDep
) -> list[VictimRead]:
    """The accounts the case's wallet took money from, and what each is owed."""
    case = cases.get(session, case_id)
    return [
        VictimRead(
            link_id=v.link_id,
            bank_code=v.bank_code,
            account_last3=v.account_last3,
            debited=v.debited,
            credited_back=v.credited_back,
            owed=v.owed,
        )
        for v in compensations.victims(session, case.wallet_id)
    ]


@router.post(
    "/cases/{case_id}/costs",
    status_code=status.HTTP_201_CREATED,
    response_model=CostRead,
    responses=error_responses(*AUTH, UnknownCase, UnknownVictimAccount, InvalidOpsInput),
)
def add_cost(
    case_id: uuid.UUID, body: CostCreate, operator: CurrentAdmin, session: SessionDep
) -> CostRead:
    """Record a cost a victim incurred (bank fees, …); the next compensation run pays it."""
    cost = compensations.add_cost(
        session,
        case_id=case_id,
        link_id=body.link_id,
        amount=body.amount,
        description=body.description,
        actor=_actor(operator),
    )
    return CostRead.model_validate(cost)


@router.post(
    "/cases/{case_id}/compensation",
    response_model=CompensationRead,
    responses=error_responses(
        *AUTH, UnknownCase, CaseNotConfirmed, WalletNotLocked, MovementsUnresolved, ReasonRequired
    ),
)
def compensate(
    case_id: uuid.UUID, body: ReasonCreate, operator: CurrentAdmin, runtime: RuntimeDep
) -> CompensationRead:
    """Refund every victim in full (plus recorded costs) and claw back the fraud wallet.

    Idempotent: a second call pays nothing twice; it retries what the bank did not confirm."""
    result = compensations.compensate(
        runtime, case_id=case_id, actor=_actor(operator), reason=body.reason
    )
    return _compensation_read(result)


@router.get(
    "/cases/{case_id}/compensation",
    response_model=CompensationRead,
    responses=error_responses(*AUTH, UnknownCase),
)
def compensation_status(
    case_id: uuid.UUID, operator: CurrentOperator, session: SessionDep
) -> CompensationRead:
    """Where the case's compensation stands."""
    return _compensation_read(compensations.report(session, case_id))


# --- bank notices ---------------------------------------------------------------------------


@router.get(
    "/wallets/{wallet_id}/bank-notices",
    response_model=list[BankNoticeRead],
    responses=error_responses(*AUTH),
)
def bank_notices(
    wallet_id: uuid.UUID, operator: CurrentOperator, session: SessionDep
) -> list[BankNoticeRead]:
    """The signed notices sent to banks about this wallet's locks, with delivery state."""
    return [
        BankNoticeRead(
            id=n.id,
            lock_id=n.lock_id,
            link_id=n.link_id,
            bank_code=n.bank_code,
            created_at=n.created_at,
            delivered_at=m.delivered_at,
            attempts=m.attempts,
            last_error=m.last_error,
        )
        for n, m in notices.notices_of(session, wallet_id)
    ]


@router.post("/bank-notices/deliver", response_model=DeliveryRead, responses=error_responses(*AUTH))
def deliver_bank_notices(operator: CurrentAdmin, runtime: RuntimeDep) -> DeliveryRead:
    """Retry every bank notice not yet accepted by its bank."""
    delivered = notices.deliver_pending(runtime)
    with runtime.db.unit_of_work() as session:
        pending = len(notices.pending_ids(session))
    return DeliveryRead(delivered=delivered, pending=pending)


# --- call centre ----------------------------------------------------------------------------


def _account(query: AccountQuery) -> AccountRef:
    return AccountRef(query.bank_code, query.branch, query.account_number)


@router.post(
    "/enquiries",
    status_code=status.HTTP_201_CREATED,
    response_model=EnquiryTaken,
    responses=error_responses(*AUTH, InvalidOpsInput),
)
def take_enquiry(
    body: EnquiryCreate, operator: CallCentreOperator, session: SessionDep
) -> EnquiryTaken:
    """Record a call (the account number is reduced to its fingerprint) and look it up."""
    enquiry, lookup = callcentre.take_enquiry(
        session,
        caller_name=body.caller_name,
        caller_contact=body.caller_contact,
        account=_account(body.account) if body.account else None,
        notes=body.notes,
        actor=_actor(operator),
        open_case=body.open_case,
    )
    return EnquiryTaken(
        enquiry=EnquiryRead.model_validate(enquiry),
        lookup=AccountLookupRead.model_validate(lookup.to_dict()) if lookup else None,
    )


@router.get("/enquiries", response_model=list[EnquiryRead], responses=error_responses(*AUTH))
def list_enquiries(operator: CurrentOperator, session: SessionDep) -> list[EnquiryRead]:
    """Enquiries, newest first."""
    return [EnquiryRead.model_validate(e) for e in callcentre.enquiries(session)]


@router.post(
    "/accounts/lookup",
    response_model=AccountLookupRead,
    responses=error_responses(*AUTH, InvalidOpsInput),
)
def lookup_account(
    body: AccountQuery, operator: CallCentreOperator, session: SessionDep
) -> AccountLookupRead:
    """Is this bank account linked to a wallet, which, since when, and what did it do?"""
    lookup = callcentre.lookup(session, _account(body), actor=_actor(operator))
    return AccountLookupRead.model_validate(lookup.to_dict())


@router.get(
    "/wallets/{wallet_id}/spend-trace",
    response_model=list[SpendLineRead],
    responses={**error_responses(*AUTH, UnknownWallet), 200: {"content": {"text/csv": {}}}},
)
def spend_trace(
    wallet_id: uuid.UUID,
    operator: CallCentreOperator,
    session: SessionDep,
    output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """Every payment of the wallet: merchant, category, time (UTC), amount — for the police."""
    wallets.get_wallet(session, wallet_id)
    controls.audit(
        session,
        actor=_actor(operator),
        action="callcentre.spend_trace",
        subject=str(wallet_id),
        reason="spend trace",
    )
    lines = callcentre.spend_trace(session, wallet_id)
    if output == "csv":
        return PlainTextResponse(spend_csv(lines), media_type="text/csv")
    return [SpendLineRead.model_validate(asdict(line)) for line in lines]


# --- regulator report -----------------------------------------------------------------------


@router.get(
    "/reports/regulator",
    responses={**error_responses(*AUTH, InvalidOpsInput), 200: {"content": {"text/markdown": {}}}},
)
def regulator_report(
    operator: CurrentOperator,
    session: SessionDep,
    runtime: RuntimeDep,
    period_from: Annotated[date, Query(alias="from")],
    period_to: Annotated[date, Query(alias="to")],
    output: Annotated[Literal["json", "md"], Query(alias="format")] = "json",
) -> Any:
    """Counts and amounts by bank, timeline and measures for ``[from, to]`` (UTC dates)."""
    built = report.build(
        session,
        period_from=period_from,
        period_to=period_to,
        now=runtime.now(),
        operator=runtime.settings.operator_name,
    )
    if output == "md":
        return PlainTextResponse(report.to_markdown(built), media_type="text/markdown")
    return JSONResponse(report.to_json(built))


# --- a candidate rule set in shadow -------------------------------------------------------


class ShadowReportRead(BaseModel):
    """Live against candidate outcomes over stored decisions (``kouza.ops.shadow``)."""

    since: str
    until: str | None
    decisions: int
    candidate_versions: dict[str, int]
    confusion: dict[str, dict[str, int]]
    """live outcome → candidate outcome → decisions."""
    candidate_flagged_live_allowed: dict[str, int]
    live_flagged_candidate_allowed: dict[str, int]
    confirmed_fraud: dict[str, int]


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _rfc3339(value: Any) -> Any:
    """A time in a query is an RFC 3339 string, as the schema says (pydantic would otherwise
    read ``0.5`` as a Unix time)."""
    if value is not None and not (isinstance(value, str) and _RFC3339.match(value)):
        raise ValueError("a time is an RFC 3339 string with its zone, e.g. 2026-12-01T00:00:00Z")
    return value


@router.get(
    "/risk/shadow",
    response_model=ShadowReportRead,
    responses=error_responses(*AUTH, InvalidOpsInput),
)
def risk_shadow(
    operator: CurrentOperator,
    session: SessionDep,
    since: Annotated[
        datetime,
        BeforeValidator(_rfc3339),
        Query(description="events at or after (RFC 3339, with zone)"),
    ],
    until: Annotated[
        datetime | None, BeforeValidator(_rfc3339), Query(description="… and before")
    ] = None,
) -> ShadowReportRead:
    """How the candidate rule set run in shadow decided against the live rules, and what each
    caught of the wallets later confirmed as fraud."""
    if since.tzinfo is None or (until is not None and until.tzinfo is None):
        raise InvalidOpsInput("since and until need their time zone (e.g. 2026-12-01T00:00:00Z)")
    if until is not None and until <= since:
        raise InvalidOpsInput("until must be after since")
    return ShadowReportRead.model_validate(shadow_report(session, since=since, until=until))
