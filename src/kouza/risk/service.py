"""The risk service: the one entry point the rest of kouza calls, ``risk.assess``.

The engine (rule set + feature store + models) lives on the runtime, so each kouza instance —
a server process, or one of the simulator's isolated instances — has its own. The rule set comes
from ``KOUZA_RISK_RULES`` (a YAML path) or the shipped default; :meth:`RiskService.load_rules`
swaps it at once, or refuses a bad file and keeps the old one.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.kit.runtime import Runtime, runtime_of
from kouza.risk.engine import Decision, RiskEngine
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.models import RiskDecisionRecord, RiskEventRecord
from kouza.risk.rules import RuleSet, load_rule_set, parse_rule_set


def shipped_rule_set() -> RuleSet:
    """kouza's default rule set (``kouza/risk/rulesets/default.yaml``)."""
    text = resources.files("kouza.risk").joinpath("rulesets/default.yaml").read_text("utf-8")
    return parse_rule_set(text, source="default.yaml")


class RiskService:
    """Assess events; manage the active rule set."""

    def engine(self, runtime: Runtime) -> RiskEngine:
        """The runtime's engine, created on first use."""
        engine = runtime.providers.get("risk")
        if engine is None:
            path = getattr(runtime.settings, "risk_rules", "")
            rules = load_rule_set(Path(path)) if path else shipped_rule_set()
            engine = runtime.providers["risk"] = RiskEngine(rules)
        assert isinstance(engine, RiskEngine)
        return engine

    def assess(self, session: Session, event: RiskEvent) -> Decision:
        """Judge ``event`` against its history, record it, and store the decision."""
        runtime = runtime_of(session)
        decision = self.engine(runtime).assess(event)
        self.store(session, decision)
        return decision

    def preview(self, session: Session, event: RiskEvent) -> Decision:
        """What the engine would decide about ``event``, without recording it (what-if)."""
        return self.engine(runtime_of(session)).evaluate(event)

    def store(self, session: Session, decision: Decision) -> RiskDecisionRecord:
        """Persist an event and its decision (in the caller's unit of work)."""
        event = decision.event
        record = RiskEventRecord(type=event.type.value, at=event.at, wallet=event.wallet,
                                 user=event.user, device=event.device, ip=event.ip,
                                 email_domain=event.email_domain, bank=event.bank,
                                 account=event.account, holder_name=event.holder_name,
                                 merchant=event.merchant, category=event.category,
                                 amount=event.amount, outcome=event.outcome,
                                 attributes=event.attributes or None)
        session.add(record)
        session.flush()
        stored = RiskDecisionRecord(
            event_id=record.id, outcome=decision.outcome.value, score=decision.score,
            rule_set_version=decision.rule_set_version,
            fired=[{"id": r.id, "score": r.score, "outcome": r.outcome.value if r.outcome
                    else None, "shadow": r.shadow, "features": _jsonable(r.features)}
                   for r in decision.fired],
            created_at=runtime_of(session).now(),
        )
        session.add(stored)
        session.flush()
        return stored

    def recorded_events(self, session: Session, *, since: datetime,
                        until: datetime | None = None) -> list[RiskEvent]:
        """Stored events in time order, as the engine saw them (for backtests)."""
        statement = select(RiskEventRecord).where(RiskEventRecord.at >= since)
        if until is not None:
            statement = statement.where(RiskEventRecord.at < until)
        rows = session.scalars(statement.order_by(RiskEventRecord.at, RiskEventRecord.id))
        return [_event_of(row) for row in rows]

    def load_rules(self, runtime: Runtime, text: str, *, source: str) -> RuleSet:
        """Validate and switch to a new rule set; a bad one raises and changes nothing."""
        rules = parse_rule_set(text, source=source)
        self.engine(runtime).replace_rules(rules)
        return rules


def _jsonable(features: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
            for k, v in features.items()}


def _event_of(row: RiskEventRecord) -> RiskEvent:
    return RiskEvent(type=EventType(row.type), at=row.at, wallet=row.wallet, user=row.user,
                     device=row.device, ip=row.ip, email_domain=row.email_domain, bank=row.bank,
                     account=row.account, holder_name=row.holder_name, merchant=row.merchant,
                     category=row.category, amount=row.amount, outcome=row.outcome,
                     attributes=dict(row.attributes or {}))


risk = RiskService()
"""The risk service singleton."""
