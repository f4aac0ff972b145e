"""Cases: alerts become cases; an analyst investigates and confirms fraud or clears it.

Allowed transitions: ``open → investigating → confirmed_fraud | cleared`` (and ``open →
confirmed_fraud | cleared`` directly). Every step is a :class:`CaseNote` with the actor, and an
audit event. Opening a case for a wallet that already has one open returns that case
(idempotent).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.controls.errors import InvalidCaseTransition, UnknownCase
from kouza.controls.models import Case, CaseNote, CaseStatus
from kouza.controls.service import controls
from kouza.kit.locking import lock_row
from kouza.runtime import runtime_of

_NEXT = {
    CaseStatus.OPEN: {CaseStatus.INVESTIGATING, CaseStatus.CONFIRMED_FRAUD, CaseStatus.CLEARED},
    CaseStatus.INVESTIGATING: {CaseStatus.CONFIRMED_FRAUD, CaseStatus.CLEARED},
    CaseStatus.CONFIRMED_FRAUD: set(),
    CaseStatus.CLEARED: set(),
}
_OPEN = (CaseStatus.OPEN.value, CaseStatus.INVESTIGATING.value)


class CaseService:
    """Open, move and read cases."""

    def open(
        self,
        session: Session,
        *,
        wallet_id: uuid.UUID,
        source: str,
        summary: str,
        actor: str,
        details: dict[str, Any] | None = None,
    ) -> Case:
        """Open a case (or return the wallet's case that is still open)."""
        existing = self.open_case_of(session, wallet_id)
        if existing is not None:
            self._note(session, existing, actor, "alert", summary, details)
            return existing
        now = runtime_of(session).now()
        case = Case(
            wallet_id=wallet_id,
            status=CaseStatus.OPEN.value,
            source=source[:120],
            summary=summary[:500],
            created_at=now,
            updated_at=now,
        )
        session.add(case)
        session.flush()
        self._note(session, case, actor, "open", summary, details)
        controls.audit(
            session,
            actor=actor,
            action="case.open",
            subject=str(case.id),
            reason=summary,
            details={"wallet": str(wallet_id), "source": source},
        )
        return case

    def move(
        self, session: Session, *, case_id: uuid.UUID, to: CaseStatus, actor: str, note: str
    ) -> Case:
        """Change a case's status; the same status again is a no-op (idempotent)."""
        case = lock_row(session, Case, case_id)
        if case is None:
            raise UnknownCase("no such case", case_id=str(case_id))
        current = CaseStatus(case.status)
        if current is to:
            return case
        if to not in _NEXT[current]:
            raise InvalidCaseTransition(f"a case that is {current.value} cannot become {to.value}")
        case.status = to.value
        case.updated_at = runtime_of(session).now()
        self._note(session, case, actor, to.value, note, None)
        controls.audit(
            session, actor=actor, action=f"case.{to.value}", subject=str(case.id), reason=note
        )
        return case

    def assign(
        self, session: Session, *, case_id: uuid.UUID, assignee: str | None, actor: str
    ) -> Case:
        """Give a case to an operator (``None``: back to the queue); audited, idempotent."""
        case = lock_row(session, Case, case_id)
        if case is None:
            raise UnknownCase("no such case", case_id=str(case_id))
        if case.assigned_to == assignee:
            return case
        case.assigned_to = assignee
        case.updated_at = runtime_of(session).now()
        text = f"assigned to {assignee}" if assignee else "unassigned"
        self._note(session, case, actor, "assign", text, {"assignee": assignee})
        controls.audit(
            session, actor=actor, action="case.assign", subject=str(case.id), reason=text
        )
        return case

    def get(self, session: Session, case_id: uuid.UUID) -> Case:
        case = session.get(Case, case_id)
        if case is None:
            raise UnknownCase("no such case", case_id=str(case_id))
        return case

    def open_case_of(self, session: Session, wallet_id: uuid.UUID) -> Case | None:
        return session.scalars(
            select(Case).where(Case.wallet_id == wallet_id, Case.status.in_(_OPEN))
        ).first()

    def notes(self, session: Session, case_id: uuid.UUID) -> Sequence[CaseNote]:
        return session.scalars(
            select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id)
        ).all()

    def list(
        self,
        session: Session,
        *,
        status: CaseStatus | None = None,
        assigned_to: str | None = None,
        limit: int = 100,
    ) -> Sequence[Case]:
        """Cases, newest first; ``assigned_to=""`` lists the unassigned ones."""
        statement = select(Case).order_by(Case.created_at.desc()).limit(limit)
        if status is not None:
            statement = statement.where(Case.status == status.value)
        if assigned_to == "":
            statement = statement.where(Case.assigned_to.is_(None))
        elif assigned_to is not None:
            statement = statement.where(Case.assigned_to == assigned_to)
        return session.scalars(statement).all()

    def _note(
        self,
        session: Session,
        case: Case,
        actor: str,
        action: str,
        note: str,
        details: dict[str, Any] | None,
    ) -> None:
        session.add(
            CaseNote(
                case_id=case.id,
                actor=actor,
                action=action,
                note=note[:2000],
                details=details,
                created_at=runtime_of(session).now(),
            )
        )
        session.flush()


cases = CaseService()
"""The case service singleton."""
