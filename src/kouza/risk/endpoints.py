"""Risk endpoints for operators and internal callers (``/v1/ops/risk``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from kouza.kit.openapi import error_responses
from kouza.kit.web import RuntimeDep, SessionDep
from kouza.ops.dependencies import CurrentAdmin, CurrentOperator
from kouza.ops.errors import InvalidOperatorToken, RoleRequired
from kouza.ops.service import ops
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.rules import RuleSetError
from kouza.risk.service import risk

router = APIRouter(prefix="/v1/ops/risk", tags=["risk"])


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: EventType
    at: datetime
    wallet: str = Field(default="", max_length=64)
    user: str = Field(default="", max_length=64)
    device: str = Field(default="", max_length=128)
    ip: str = Field(default="", max_length=64)
    email_domain: str = Field(default="", max_length=255)
    bank: str = Field(default="", pattern=r"^(\d{4})?$")
    account: str = Field(default="", max_length=64, description="account fingerprint")
    holder_name: str = Field(default="", max_length=100)
    merchant: str = Field(default="", max_length=64)
    category: str = Field(default="", max_length=32)
    amount: int = Field(default=0, ge=0, le=10**12)
    outcome: str = Field(default="ok", max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict)


class FiredRead(BaseModel):
    id: str
    score: int
    outcome: str | None
    shadow: bool
    features: dict[str, Any]


class DecisionRead(BaseModel):
    outcome: str
    score: int
    rule_set_version: str
    fired: list[FiredRead]


class RulesRead(BaseModel):
    version: str
    rules: int


@router.post("/assess", response_model=DecisionRead,
             responses=error_responses(InvalidOperatorToken))
def assess(body: EventCreate, operator: CurrentOperator, session: SessionDep) -> DecisionRead:
    """Judge one event in real time; the event and the decision are stored."""
    event = RiskEvent(**body.model_dump())
    decision = risk.assess(session, event)
    return DecisionRead(
        outcome=decision.outcome.value, score=decision.score,
        rule_set_version=decision.rule_set_version,
        fired=[FiredRead(id=r.id, score=r.score, outcome=r.outcome.value if r.outcome else None,
                         shadow=r.shadow, features=r.features) for r in decision.fired],
    )


async def _yaml_body(request: Request) -> str:
    raw = await request.body()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RuleSetError("the rule set must be UTF-8 text") from None


@router.put("/rules", response_model=RulesRead,
            responses=error_responses(InvalidOperatorToken, RoleRequired, RuleSetError),
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/yaml": {"schema": {"type": "string"}}}}})
def replace_rules(operator: CurrentAdmin, runtime: RuntimeDep,
                  text: Annotated[str, Depends(_yaml_body)]) -> RulesRead:
    """Switch to a new rule set at once; a bad file is refused and the old one stays."""
    rules = risk.load_rules(runtime, text, source="request body")
    with runtime.db.unit_of_work() as session:
        ops.audit(session, actor=f"operator:{operator.name}", action="risk.rules",
                  subject=rules.version, reason="rule set replaced",
                  details={"rules": len(rules.rules)})
    return RulesRead(version=rules.version, rules=len(rules.rules))
