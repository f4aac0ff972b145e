"""Where risk's SQL lives: the event and decision tables, written and read in bulk.

Events and decisions are written with Core, not two ORM flushes, and on PostgreSQL in one
statement for both rows (:data:`_STORE_BOTH`): the same rows for about half the CPU, which is
what a decision mostly costs over HTTP. The feature store's warm-up streams the stored events
back in the order they were assessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from kouza.kit.db import UtcDateTime
from kouza.risk.engine import Decision
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord, RuleSetRecord

_EVENTS = cast(Table, RiskEventRecord.__table__)
_DECISIONS = cast(Table, RiskDecisionRecord.__table__)
_EVENT_COLUMNS = (
    "type",
    "at",
    "wallet",
    "user",
    "device",
    "ip",
    "email_domain",
    "bank",
    "account",
    "holder_name",
    "merchant",
    "category",
    "amount",
    "outcome",
)
_STORE_BOTH = text(
    "WITH event AS (INSERT INTO risk_events ("
    + ", ".join(f'"{c}"' for c in _EVENT_COLUMNS)
    + ", attributes) VALUES ("
    + ", ".join(f":{c}" for c in _EVENT_COLUMNS)
    + ", CAST(:attributes AS JSON)) RETURNING id) "
    "INSERT INTO risk_decisions "
    "(event_id, outcome, score, rule_set_version, fired, model, candidate, created_at) "
    "SELECT id, :decision_outcome, :decision_score, :decision_rule_set_version, "
    "CAST(:fired AS JSON), CAST(:decision_model AS JSON), CAST(:decision_candidate AS JSON), "
    ":decision_created_at "
    "FROM event RETURNING id"
).bindparams(
    bindparam("at", type_=UtcDateTime()), bindparam("decision_created_at", type_=UtcDateTime())
)
"""Both rows in one statement (PostgreSQL): one round trip, one statement to execute."""


def _rows(
    decision: Decision, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The event's row, the fired rules and the decision's row, as stored."""
    event = decision.event
    row = {
        "type": event.type.value,
        "at": event.at,
        "wallet": event.wallet,
        "user": event.user,
        "device": event.device,
        "ip": event.ip,
        "email_domain": event.email_domain,
        "bank": event.bank,
        "account": event.account,
        "holder_name": event.holder_name,
        "merchant": event.merchant,
        "category": event.category,
        "amount": event.amount,
        "outcome": event.outcome,
    }
    fired = [
        {
            "id": r.id,
            "score": r.score,
            "outcome": r.outcome.value if r.outcome else None,
            "shadow": r.shadow,
            "features": _jsonable(r.features),
        }
        for r in decision.fired
    ]
    stored = {
        "outcome": decision.outcome.value,
        "score": decision.score,
        "rule_set_version": decision.rule_set_version,
        "model": decision.model.to_json() if decision.model is not None else None,
        "candidate": decision.candidate.to_json() if decision.candidate is not None else None,
        "created_at": now,
    }
    return row, fired, stored


def _both_params(decision: Decision, now: datetime) -> dict[str, Any]:
    """The parameters of :data:`_STORE_BOTH`."""
    row, fired, stored = _rows(decision, now)
    attributes = decision.event.attributes
    return {
        **row,
        "attributes": json.dumps(attributes) if attributes else None,
        **{f"decision_{k}": v for k, v in stored.items()},
        "decision_model": json.dumps(stored["model"]) if stored["model"] is not None else None,
        "decision_candidate": json.dumps(stored["candidate"])
        if stored["candidate"] is not None
        else None,
        "fired": json.dumps(fired),
    }


def store_decision(session: Session, decision: Decision, now: datetime) -> int:
    """Insert the decision's event and the decision in ``session``'s transaction; its id."""
    if session.get_bind().dialect.name == "postgresql":
        return int(session.execute(_STORE_BOTH, _both_params(decision, now)).scalar_one())
    row, fired, stored = _rows(decision, now)
    event_id = session.execute(
        insert(_EVENTS).returning(_EVENTS.c.id),
        {**row, "attributes": decision.event.attributes or None},
    ).scalar_one()
    return int(
        session.execute(
            insert(_DECISIONS).returning(_DECISIONS.c.id),
            {**stored, "event_id": event_id, "fired": fired},
        ).scalar_one()
    )


def store_decision_in_one_statement(
    connection: Connection, decision: Decision, now: datetime
) -> None:
    """Both rows in one statement (PostgreSQL only), on ``connection`` as it is (autocommit)."""
    connection.execute(_STORE_BOTH, _both_params(decision, now))


def events_since(connection: Connection, since: datetime) -> Iterator[RiskEvent]:
    """The stored events at or after ``since`` in the order they were assessed, streamed."""
    columns = [_EVENTS.c[name] for name in (*_EVENT_COLUMNS, "attributes")]
    statement = select(*columns).where(_EVENTS.c.at >= since).order_by(_EVENTS.c.at, _EVENTS.c.id)
    for row in connection.execute(statement.execution_options(yield_per=10_000)):
        yield RiskEvent(
            type=EventType(row.type),
            at=row.at,
            wallet=row.wallet,
            user=row.user,
            device=row.device,
            ip=row.ip,
            email_domain=row.email_domain,
            bank=row.bank,
            account=row.account,
            holder_name=row.holder_name,
            merchant=row.merchant,
            category=row.category,
            amount=row.amount,
            outcome=row.outcome,
            attributes=dict(row.attributes or {}),
        )


def recorded_events(
    session: Session, *, since: datetime, until: datetime | None = None, limit: int | None = None
) -> list[RiskEvent]:
    """Stored events in time order, as the engine saw them (for backtests); with ``limit``,
    only the latest ``limit`` of them."""
    statement = select(RiskEventRecord).where(RiskEventRecord.at >= since)
    if until is not None:
        statement = statement.where(RiskEventRecord.at < until)
    if limit is not None:
        latest = statement.order_by(RiskEventRecord.at.desc(), RiskEventRecord.id.desc())
        return [_event_of(row) for row in session.scalars(latest.limit(limit))][::-1]
    rows = session.scalars(statement.order_by(RiskEventRecord.at, RiskEventRecord.id))
    return [_event_of(row) for row in rows]


def _jsonable(features: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
        for k, v in features.items()
    }


def _event_of(row: RiskEventRecord) -> RiskEvent:
    return RiskEvent(
        type=EventType(row.type),
        at=row.at,
        wallet=row.wallet,
        user=row.user,
        device=row.device,
        ip=row.ip,
        email_domain=row.email_domain,
        bank=row.bank,
        account=row.account,
        holder_name=row.holder_name,
        merchant=row.merchant,
        category=row.category,
        amount=row.amount,
        outcome=row.outcome,
        attributes=dict(row.attributes or {}),
    )


def latest_published_rule_set_id(session: Session) -> int | None:
    """The id of the rule set published last (``risk_rule_sets``, role ``live``), if any."""
    found: int | None = session.scalar(
        select(func.max(RuleSetRecord.id)).where(RuleSetRecord.role == "live")
    )
    return found


def rule_set_record(session: Session, record_id: int) -> RuleSetRecord | None:
    return session.get(RuleSetRecord, record_id)
