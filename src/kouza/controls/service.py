"""Operator accounts, their authentication, and the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.controls import audit as audit_chain
from kouza.controls.errors import InvalidOperatorToken, OperatorExists, ReasonRequired, RoleRequired
from kouza.controls.models import AuditEvent, Operator, OperatorRole
from kouza.kit.db import add_unique
from kouza.kit.security import keyed_hash, random_token
from kouza.runtime import runtime_of

_RANK = {OperatorRole.CALL_CENTRE: -1, OperatorRole.ANALYST: 0, OperatorRole.ADMIN: 1}


class ControlsService:
    """Operators and audit."""

    def create_operator(
        self, session: Session, *, name: str, role: OperatorRole, actor: str
    ) -> tuple[Operator, str]:
        """Create an operator; returns it and its bearer token (shown once, stored hashed)."""
        runtime = runtime_of(session)
        token = "op_" + random_token()
        operator = Operator(
            name=name,
            role=role.value,
            created_at=runtime.now(),
            token_hash=keyed_hash(runtime.secret, token, purpose="operator"),
        )
        add_unique(
            session, operator, OperatorExists("an operator with this name exists", name=name)
        )
        self.audit(
            session,
            actor=actor,
            action="operator.create",
            subject=name,
            reason="new operator",
            details={"role": role.value},
        )
        return operator, token

    def authenticate(self, session: Session, token: str) -> Operator:
        """The operator a token belongs to; customers' tokens are never operators'."""
        runtime = runtime_of(session)
        operator = session.scalars(
            select(Operator).where(
                Operator.token_hash == keyed_hash(runtime.secret, token, purpose="operator")
            )
        ).one_or_none()
        if operator is None or operator.disabled_at is not None:
            raise InvalidOperatorToken("missing, unknown or disabled operator token")
        return operator

    def require_role(self, operator: Operator, role: OperatorRole) -> None:
        if _RANK[OperatorRole(operator.role)] < _RANK[role]:
            raise RoleRequired(f"this needs the '{role.value}' role", required=role.value)

    def audit(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        subject: str = "",
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Record an operator action in the same unit of work as the action: it is appended to
        the audit chain when the unit of work commits (:mod:`kouza.controls.audit`), so its id is
        set only then."""
        if not reason.strip():
            raise ReasonRequired("operator actions need a reason")
        event = AuditEvent(
            actor=actor,
            action=action,
            subject=subject[:200],
            reason=reason.strip()[:500],
            details=audit_chain.normalised(details),
            created_at=runtime_of(session).now(),
        )
        audit_chain.queue(session, event)
        return event

    def audit_trail(self, session: Session, *, limit: int = 100) -> Sequence[AuditEvent]:
        return session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).all()


controls = ControlsService()
"""The controls service singleton: operator accounts and the audit trail."""
