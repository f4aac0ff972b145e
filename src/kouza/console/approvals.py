"""Maker-checker: dangerous actions wait for a second operator (ADR 0038).

Unlocking a wallet, turning a kill switch off, compensating a case and publishing a rule set
(:mod:`kouza.risk.versions`; the request carries the set's text and digest, so what is approved
is what was requested) are *requested* (:meth:`ApprovalService.request`, audited as
``approval.request``) and run only when an admin other than the requester approves
(:meth:`ApprovalService.approve`). The action then runs through the same service the operator
API uses — :mod:`kouza.wallet.locks`, :mod:`kouza.controls.switches`,
:mod:`kouza.ops.compensation` — so the same checks and audit apply, with the approver as actor
and the requester named in the reason.

The checker is never the maker: the service refuses it (:class:`SelfApproval`) and a CHECK
constraint on ``console_approvals`` would refuse it again. Safe-direction actions (lock,
switch on) never come here: they run at once.

Unlock and switch-off run inside the approver's unit of work with the approval's own update,
so either both happen or neither. Compensation calls banks in its own steps (it cannot sit in
one transaction): the approval is committed as ``approved`` first, then the run's outcome is
recorded (``executed`` or ``failed``); re-running a compensation is idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.console.errors import (
    ApprovalDecided,
    InvalidConsoleInput,
    SelfApproval,
    UnknownApproval,
)
from kouza.console.models import Approval, ApprovalAction, ApprovalStatus
from kouza.controls.models import Operator, OperatorRole, SwitchScope
from kouza.controls.service import controls
from kouza.controls.switches import switches
from kouza.errors import KouzaError
from kouza.kit.locking import lock_row
from kouza.ops.compensation import compensations
from kouza.risk.versions import digest, rule_versions
from kouza.runtime import Runtime, runtime_of
from kouza.wallet.locks import locks


def _actor(name: str) -> str:
    return f"console:{name}"


class ApprovalService:
    """Request, approve, reject and list maker-checker approvals."""

    def request(
        self,
        session: Session,
        *,
        action: ApprovalAction,
        params: dict[str, Any],
        subject: str,
        reason: str,
        operator: Operator,
    ) -> Approval:
        """Record a dangerous action to be approved by another admin; audited."""
        if not reason.strip():
            raise InvalidConsoleInput("a reason is required", field="reason")
        approval = Approval(
            action=action.value,
            params=params,
            subject=subject[:200],
            reason=reason.strip()[:500],
            requested_by=operator.name,
            requested_at=runtime_of(session).now(),
            status=ApprovalStatus.PENDING.value,
            decision_note="",
        )
        session.add(approval)
        session.flush()
        controls.audit(
            session,
            actor=_actor(operator.name),
            action="approval.request",
            subject=f"{action.value}:{subject}"[:200],
            reason=reason,
            details={"approval": approval.id, "params": params},
        )
        return approval

    def approve(
        self, runtime: Runtime, *, approval_id: int, operator: Operator, note: str = ""
    ) -> Approval:
        """Approve and run the action; ``failed`` (with the refusal) if the service refuses."""
        with runtime.db.unit_of_work() as session:
            approval = self._decidable(session, approval_id, operator)
            compensate = approval.action == ApprovalAction.COMPENSATE.value
            if compensate:
                self._decide(session, approval, operator, ApprovalStatus.APPROVED, note)
        if compensate:  # committed as approved first: the run calls banks in its own steps
            return self._compensate(runtime, approval_id, operator)
        try:
            with runtime.db.unit_of_work() as session:
                approval = self._decidable(session, approval_id, operator)
                result = self._run(session, approval, operator)
                self._decide(session, approval, operator, ApprovalStatus.EXECUTED, note)
                approval.result = result
                return approval
        except (SelfApproval, ApprovalDecided, UnknownApproval):
            raise
        except KouzaError as refused:
            return self._failed(runtime, approval_id, operator, note, refused)

    def reject(
        self, session: Session, *, approval_id: int, operator: Operator, note: str
    ) -> Approval:
        """Refuse a request: nothing runs; audited."""
        approval = self._decidable(session, approval_id, operator)
        self._decide(session, approval, operator, ApprovalStatus.REJECTED, note)
        return approval

    def pending(self, session: Session) -> Sequence[Approval]:
        return session.scalars(
            select(Approval)
            .where(Approval.status == ApprovalStatus.PENDING.value)
            .order_by(Approval.requested_at)
        ).all()

    def recent(self, session: Session, *, limit: int = 50) -> Sequence[Approval]:
        return session.scalars(
            select(Approval)
            .where(Approval.status != ApprovalStatus.PENDING.value)
            .order_by(Approval.id.desc())
            .limit(limit)
        ).all()

    def of_subject(self, session: Session, subject: str) -> Sequence[Approval]:
        return session.scalars(
            select(Approval).where(Approval.subject == subject).order_by(Approval.id)
        ).all()

    def _decidable(self, session: Session, approval_id: int, operator: Operator) -> Approval:
        approval = lock_row(session, Approval, approval_id)
        if approval is None:
            raise UnknownApproval("no such approval request", approval=approval_id)
        if approval.status != ApprovalStatus.PENDING.value:
            raise ApprovalDecided(f"this request is already {approval.status}")
        if approval.requested_by == operator.name:
            raise SelfApproval("you cannot approve or reject your own request")
        controls.require_role(operator, OperatorRole.ADMIN)
        return approval

    def _decide(
        self,
        session: Session,
        approval: Approval,
        operator: Operator,
        status: ApprovalStatus,
        note: str,
    ) -> None:
        approval.status = status.value
        approval.decided_by = operator.name
        approval.decided_at = runtime_of(session).now()
        approval.decision_note = note.strip()[:500]
        verb = "reject" if status is ApprovalStatus.REJECTED else "approve"
        controls.audit(
            session,
            actor=_actor(operator.name),
            action=f"approval.{verb}",
            subject=f"{approval.action}:{approval.subject}"[:200],
            reason=note.strip() or f"{verb}d request of {approval.requested_by}",
            details={"approval": approval.id, "requested_by": approval.requested_by},
        )
        session.flush()

    def _reason(self, approval: Approval) -> str:
        return f"{approval.reason} (requested by {approval.requested_by}, approval #{approval.id})"

    def _run(self, session: Session, approval: Approval, operator: Operator) -> dict[str, Any]:
        params = approval.params
        actor, reason = _actor(operator.name), self._reason(approval)
        if approval.action == ApprovalAction.UNLOCK_WALLET.value:
            wallet = locks.unlock(
                session, wallet_id=uuid.UUID(params["wallet_id"]), actor=actor, reason=reason
            )
            return {"wallet": str(wallet.id), "status": wallet.status}
        if approval.action == ApprovalAction.SWITCH_OFF.value:
            switch = switches.set(
                session,
                scope=SwitchScope(params["scope"]),
                target=str(params.get("target", "")),
                active=False,
                actor=actor,
                reason=reason,
            )
            return {"scope": switch.scope, "target": switch.target, "active": switch.active}
        if approval.action == ApprovalAction.PUBLISH_RULES.value:
            text = str(params["text"])
            if digest(text) != params.get("digest"):
                raise InvalidConsoleInput("the rule set changed after it was requested")
            rules = rule_versions.publish(
                session, text, source=f"approval #{approval.id}", actor=actor, reason=reason
            )
            return {"version": rules.version, "rules": len(rules.rules)}
        raise InvalidConsoleInput(f"{approval.action} cannot be approved from the console yet")

    def _compensate(self, runtime: Runtime, approval_id: int, operator: Operator) -> Approval:
        with runtime.db.unit_of_work() as session:
            approval = session.get_one(Approval, approval_id)
            case_id, reason = uuid.UUID(approval.params["case_id"]), self._reason(approval)
        try:
            report = compensations.compensate(
                runtime, case_id=case_id, actor=_actor(operator.name), reason=reason
            )
        except KouzaError as refused:
            return self._record(
                runtime,
                approval_id,
                ApprovalStatus.FAILED,
                {"error": refused.code, "message": refused.message},
            )
        return self._record(
            runtime,
            approval_id,
            ApprovalStatus.EXECUTED,
            {
                "status": report.status,
                "refunded": report.refunded,
                "clawed_back": report.clawed_back,
                "outstanding": report.outstanding,
            },
        )

    def _failed(
        self,
        runtime: Runtime,
        approval_id: int,
        operator: Operator,
        note: str,
        refused: KouzaError,
    ) -> Approval:
        with runtime.db.unit_of_work() as session:
            approval = self._decidable(session, approval_id, operator)
            self._decide(session, approval, operator, ApprovalStatus.FAILED, note)
            approval.result = {"error": refused.code, "message": refused.message}
            return approval

    def _record(
        self,
        runtime: Runtime,
        approval_id: int,
        status: ApprovalStatus,
        result: dict[str, Any],
    ) -> Approval:
        with runtime.db.unit_of_work() as session:
            approval = session.get_one(Approval, approval_id)
            approval.status, approval.result = status.value, result
            return approval


approvals = ApprovalService()
"""The maker-checker service singleton."""
