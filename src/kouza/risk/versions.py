"""Rule-set versions: making a rule set live or the candidate, recorded with its text.

The engine keeps one live rule set and at most one candidate (:mod:`kouza.risk.service`).
:meth:`RuleVersions.publish` and :meth:`RuleVersions.set_candidate` validate the text, swap
it into this process's engine and record it in ``risk_rule_sets`` (version, role, SHA-256,
text, who and why) and in the audit trail, in the caller's unit of work — the operator API
(``PUT /v1/ops/risk/rules``) and the console's approved publish request both come here. The
records are what earlier versions are read, compared and backtested from: a rule set loaded
from a file at start (``KOUZA_RISK_RULES``) is not recorded, but it is the live set, whose
text the engine keeps (:attr:`~kouza.risk.rules.RuleSet.text`).

A published set is enforced once its unit of work commits (a rolled-back publish never is), at
once in the process that served it; every other process — and this one after a restart —
switches to the set published last within a few seconds
(:data:`kouza.risk.service.PUBLISHED_RULES_CHECK_SECONDS`, ADR 0041).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from kouza.controls.service import controls
from kouza.risk.models import RiskDecisionRecord, RuleSetRecord
from kouza.risk.rules import RuleSet, parse_rule_set
from kouza.risk.service import risk
from kouza.runtime import runtime_of


class RuleSetRole(StrEnum):
    """What a recorded rule set was loaded as."""

    LIVE = "live"
    """Enforced from then on."""
    CANDIDATE = "candidate"
    """Judged beside the live one on every decision, never enforced."""


def digest(text: str) -> str:
    """SHA-256 of a rule set's text (hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RuleVersions:
    """Publish rule sets and set candidates, recorded; read the records back."""

    def publish(
        self, session: Session, text: str, *, source: str, actor: str, reason: str
    ) -> RuleSet:
        """Make ``text`` the live rule set now (a bad one raises and changes nothing); a
        candidate with the same text is removed, its job done. Recorded and audited."""
        rules = parse_rule_set(text, source=source)
        runtime = runtime_of(session)
        engine = risk.engine(runtime, session)
        retired = engine.candidate is not None and digest(engine.candidate.text) == digest(text)
        record = self._record(
            session, rules, RuleSetRole.LIVE, source=source, actor=actor, reason=reason
        )

        def swap(_: Session) -> None:
            engine.replace_rules(rules)
            engine.published_id = record.id
            if retired:
                engine.replace_candidate(None)

        # enforced once recorded: a rolled-back publish never reaches the engine
        event.listen(session, "after_commit", swap, once=True)
        controls.audit(
            session,
            actor=actor,
            action="risk.rules",
            subject=rules.version,
            reason=reason,
            details={
                "rules": len(rules.rules),
                "digest": digest(text),
                "candidate_retired": retired,
            },
        )
        return rules

    def set_candidate(
        self, session: Session, text: str | None, *, source: str, actor: str, reason: str
    ) -> RuleSet | None:
        """Run ``text`` as the candidate beside the live set (``None``: stop running one); a
        bad one raises and changes nothing. Recorded and audited."""
        engine = risk.engine(runtime_of(session), session)
        previous = engine.candidate
        candidate = risk.load_candidate(runtime_of(session), text, source=source)
        if candidate is not None:
            self._record(
                session, candidate, RuleSetRole.CANDIDATE, source=source, actor=actor, reason=reason
            )
        controls.audit(
            session,
            actor=actor,
            action="risk.rules.candidate",
            subject=candidate.version if candidate else (previous.version if previous else "-"),
            reason=reason,
            details={"rules": len(candidate.rules), "digest": digest(candidate.text)}
            if candidate
            else {"removed": previous is not None},
        )
        return candidate

    def history(self, session: Session, *, limit: int = 100) -> Sequence[RuleSetRecord]:
        """Recorded rule sets, newest first."""
        return session.scalars(
            select(RuleSetRecord).order_by(RuleSetRecord.id.desc()).limit(limit)
        ).all()

    def get(self, session: Session, record_id: int) -> RuleSetRecord | None:
        return session.get(RuleSetRecord, record_id)

    def seen(self, session: Session) -> list[tuple[str, int, datetime, datetime]]:
        """Each rule-set version stored decisions name: (version, decisions, first, last)."""
        rows = session.execute(
            select(
                RiskDecisionRecord.rule_set_version,
                func.count(),
                func.min(RiskDecisionRecord.created_at),
                func.max(RiskDecisionRecord.created_at),
            )
            .group_by(RiskDecisionRecord.rule_set_version)
            .order_by(func.max(RiskDecisionRecord.created_at).desc())
        ).all()
        return [(str(v), int(n), first, last) for v, n, first, last in rows]

    def _record(
        self,
        session: Session,
        rules: RuleSet,
        role: RuleSetRole,
        *,
        source: str,
        actor: str,
        reason: str,
    ) -> RuleSetRecord:
        record = RuleSetRecord(
            version=rules.version[:64],
            role=role.value,
            digest=digest(rules.text),
            text=rules.text,
            source=source[:200],
            actor=actor[:120],
            reason=reason[:500],
            loaded_at=runtime_of(session).now(),
        )
        session.add(record)
        session.flush()
        return record


rule_versions = RuleVersions()
"""The rule-set versions service singleton."""
