"""Risk endpoints for operators and internal callers (``/v1/ops/risk``).

``POST /assess`` is called for every sensitive action, hundreds of times a second per process,
so its path is kept short (measured with ``benchmarks/risk.py``, docs/risk.md):

* one hop to a worker thread per request, not one per synchronous dependency: the endpoint is
  ``async`` and runs the operator check (the same :func:`~kouza.controls.dependencies.get_operator`
  as ``CurrentOperator``), the assessment and the commit in a single thread call;
* the unit of work is opened inside that call rather than through ``SessionDep``, so a database
  connection is held only by the thread doing the work and handed back before the thread is
  (with a request-scoped session under a burst, more requests held connections than there were
  threads to finish them and the pool ran dry: ``QueuePool limit … reached`` after 30 s);
* at most :data:`CONCURRENT_ASSESSMENTS` run at once per process; the others wait on the event
  loop, where waiting costs nothing, instead of as threads contending for the interpreter lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from kouza.controls.dependencies import CurrentAdmin, CurrentOperator, get_operator, get_staff
from kouza.controls.errors import InvalidOperatorToken, RoleRequired
from kouza.errors import NotFound
from kouza.kit.openapi import error_responses
from kouza.kit.text import JsonObject, Text
from kouza.kit.web import MAX_BIGINT
from kouza.risk.engine import Decision
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.risk.rules import RuleSetError
from kouza.risk.service import risk
from kouza.risk.versions import rule_versions
from kouza.runtime import Runtime, RuntimeDep, SessionDep, get_runtime

router = APIRouter(prefix="/v1/ops/risk", tags=["risk"])

CONCURRENT_ASSESSMENTS = 8
"""Assessments one API process runs at once (each holds a thread and a database connection)."""
_limiter: RunVar[CapacityLimiter] = RunVar("kouza_risk_assessments")
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="OperatorToken",
    description="Operator token from `kouza operators create`",
)


def _text_time(value: Any) -> Any:
    """A time is an RFC 3339 string, as the schema says (a number was read as a Unix time)."""
    if not isinstance(value, str):
        raise ValueError("a time is an RFC 3339 string with its zone")
    return value


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: EventType
    at: Annotated[AwareDatetime, BeforeValidator(_text_time)]
    wallet: Text = Field(default="", max_length=64)
    user: Text = Field(default="", max_length=64)
    device: Text = Field(default="", max_length=128)
    ip: Text = Field(default="", max_length=64)
    email_domain: Text = Field(default="", max_length=255)
    bank: str = Field(default="", pattern=r"^(\d{4})?$")
    account: Text = Field(default="", max_length=64, description="account fingerprint")
    holder_name: Text = Field(default="", max_length=100)
    merchant: Text = Field(default="", max_length=64)
    category: Text = Field(default="", max_length=32)
    amount: StrictInt = Field(default=0, ge=0, le=10**12)
    outcome: Text = Field(default="ok", max_length=64)
    attributes: JsonObject = Field(default_factory=dict)


class FiredRead(BaseModel):
    id: str
    score: int
    outcome: str | None
    shadow: bool
    features: dict[str, Any]


class ContributionRead(BaseModel):
    feature: str
    value: float | str | None
    contribution: float
    """Log-odds the feature added to the score (negative: it spoke for the customer)."""


class ModelRead(BaseModel):
    """The learned model's verdict (ADR 0031): operators only, never shown to customers."""

    version: str
    score: float
    top: list[ContributionRead]


class CandidateRead(BaseModel):
    """What the candidate rule set would have decided (shadow: never enforced; operators only)."""

    version: str
    outcome: str
    score: int
    fired: list[str]


class DecisionRead(BaseModel):
    outcome: str
    score: int
    rule_set_version: str
    fired: list[FiredRead]
    model: ModelRead | None = None
    """Present when a learned model is loaded (``KOUZA_RISK_MODEL``)."""
    candidate: CandidateRead | None = None
    """Present when a candidate rule set runs beside the live one (never enforced)."""


class StoredDecisionRead(DecisionRead):
    id: int
    event_type: str
    wallet: str
    created_at: datetime


class UnknownDecision(NotFound):
    code = "unknown_decision"


class RulesRead(BaseModel):
    version: str
    rules: int


@router.post(
    "/assess",
    response_model=DecisionRead,
    responses=error_responses(InvalidOperatorToken, RoleRequired),
)
async def assess(
    body: EventCreate,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """Judge one event in real time; the event and the decision are stored."""
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = CapacityLimiter(CONCURRENT_ASSESSMENTS)
        _limiter.set(limiter)
    answer = await anyio.to_thread.run_sync(
        _assess, get_runtime(request), credentials, body, limiter=limiter
    )
    # built and serialised once here, not validated again against response_model
    return Response(answer.model_dump_json(), media_type="application/json")


def _assess(
    runtime: Runtime, credentials: HTTPAuthorizationCredentials | None, body: EventCreate
) -> DecisionRead:
    get_staff(get_operator(runtime, credentials))  # what CurrentOperator checks, in this thread
    return _read(risk.assess_on_its_own(runtime, RiskEvent(**body.model_dump())))


def _read(decision: Decision) -> DecisionRead:
    return DecisionRead(
        outcome=decision.outcome.value,
        score=decision.score,
        rule_set_version=decision.rule_set_version,
        fired=[
            FiredRead(
                id=r.id,
                score=r.score,
                outcome=r.outcome.value if r.outcome else None,
                shadow=r.shadow,
                features=r.features,
            )
            for r in decision.fired
        ],
        model=ModelRead.model_validate(decision.model.to_json()) if decision.model else None,
        candidate=CandidateRead.model_validate(decision.candidate.to_json())
        if decision.candidate
        else None,
    )


_YAML_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/yaml": {"schema": {"type": "string"}}},
    }
}
"""The OpenAPI body of the endpoints that take a rule file."""


async def _yaml_body(request: Request) -> str:
    raw = await request.body()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RuleSetError("the rule set must be UTF-8 text") from None


@router.put(
    "/rules",
    response_model=RulesRead,
    responses=error_responses(InvalidOperatorToken, RoleRequired, RuleSetError),
    openapi_extra=_YAML_BODY,
)
def replace_rules(
    operator: CurrentAdmin, runtime: RuntimeDep, text: Annotated[str, Depends(_yaml_body)]
) -> RulesRead:
    """Switch to a new rule set at once; a bad file is refused and the old one stays."""
    with runtime.db.unit_of_work() as session:
        rules = rule_versions.publish(
            session,
            text,
            source="request body",
            actor=f"operator:{operator.name}",
            reason="rule set replaced",
        )
    return RulesRead(version=rules.version, rules=len(rules.rules))


class CandidateRulesRead(BaseModel):
    version: str | None
    """The candidate's version; None when no candidate is set."""
    rules: int


@router.put(
    "/rules/candidate",
    response_model=CandidateRulesRead,
    responses=error_responses(InvalidOperatorToken, RoleRequired, RuleSetError),
    openapi_extra=_YAML_BODY,
)
def set_candidate_rules(
    operator: CurrentAdmin, runtime: RuntimeDep, text: Annotated[str, Depends(_yaml_body)]
) -> CandidateRulesRead:
    """Run a candidate rule set beside the live one: judged on every decision, stored on it,
    never enforced. A bad file is refused and the previous candidate (if any) stays."""
    with runtime.db.unit_of_work() as session:
        rules = rule_versions.set_candidate(
            session,
            text,
            source="request body",
            actor=f"operator:{operator.name}",
            reason="candidate rule set set (shadow)",
        )
    assert rules is not None
    return CandidateRulesRead(version=rules.version, rules=len(rules.rules))


@router.delete(
    "/rules/candidate",
    response_model=CandidateRulesRead,
    responses=error_responses(InvalidOperatorToken, RoleRequired),
)
def clear_candidate_rules(operator: CurrentAdmin, runtime: RuntimeDep) -> CandidateRulesRead:
    """Stop running a candidate rule set (decisions from now on carry none)."""
    with runtime.db.unit_of_work() as session:
        rule_versions.set_candidate(
            session,
            None,
            source="request",
            actor=f"operator:{operator.name}",
            reason="candidate rule set removed",
        )
    return CandidateRulesRead(version=None, rules=0)


@router.get(
    "/decisions/{decision_id}",
    response_model=StoredDecisionRead,
    responses=error_responses(InvalidOperatorToken, RoleRequired, UnknownDecision),
)
def decision(
    decision_id: Annotated[int, Path(ge=1, le=MAX_BIGINT)],
    operator: CurrentOperator,
    session: SessionDep,
) -> StoredDecisionRead:
    """A stored decision with the rules that fired and the learned model's verdict — what a
    refused customer's ``reference`` points at (customers are never shown either)."""
    del operator
    found = session.get(RiskDecisionRecord, decision_id)
    if found is None:
        raise UnknownDecision("no such risk decision", decision_id=decision_id)
    event = session.get(RiskEventRecord, found.event_id)
    assert event is not None
    return StoredDecisionRead(
        id=found.id,
        outcome=found.outcome,
        score=found.score,
        rule_set_version=found.rule_set_version,
        event_type=event.type,
        wallet=event.wallet,
        created_at=found.created_at,
        fired=[
            FiredRead(
                id=str(rule["id"]),
                score=int(rule.get("score") or 0),
                outcome=rule.get("outcome"),
                shadow=bool(rule.get("shadow")),
                features=dict(rule.get("features") or {}),
            )
            for rule in found.fired
        ],
        model=ModelRead.model_validate(found.model) if found.model else None,
        candidate=CandidateRead.model_validate(found.candidate) if found.candidate else None,
    )
