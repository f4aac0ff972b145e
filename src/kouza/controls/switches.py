"""Kill switches: stop links, charges or payments at once, with who and why.

A switch is a row (scope, target) with its current state; every change is audited. Services
that link, charge or pay call :meth:`SwitchService.require_open` inside their unit of work, so a
switch takes effect for the very next request — there is no cache to expire. Setting a switch to
the state it already has changes nothing and is still answered (idempotent).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.controls.errors import KillSwitchActive
from kouza.controls.models import KillSwitch, SwitchScope
from kouza.controls.service import controls
from kouza.kit.db import add_unique
from kouza.runtime import runtime_of

_MESSAGES = {
    SwitchScope.ALL_LINKS: "new bank links are stopped",
    SwitchScope.BANK_LINKS: "new links to this bank are stopped",
    SwitchScope.BANK_CHARGES: "charges from this bank are stopped",
    SwitchScope.MERCHANT_PAYMENTS: "payments to this merchant are stopped",
}


class SwitchService:
    """Set, read and enforce kill switches."""

    def set(
        self,
        session: Session,
        *,
        scope: SwitchScope,
        target: str = "",
        active: bool,
        actor: str,
        reason: str,
    ) -> KillSwitch:
        """Turn a switch on or off (idempotent); audited."""
        target = "" if scope is SwitchScope.ALL_LINKS else target
        controls.audit(
            session,
            actor=actor,
            action=f"switch.{'on' if active else 'off'}",
            subject=f"{scope.value}:{target}",
            reason=reason,
        )
        switch = self._row(session, scope, target)
        now = runtime_of(session).now()
        if switch is None:
            switch = KillSwitch(
                scope=scope.value,
                target=target,
                active=active,
                actor=actor,
                reason=reason,
                changed_at=now,
            )
            add_unique(session, switch, KillSwitchActive("switch changed concurrently; retry"))
            return switch
        if switch.active != active:
            switch.active, switch.actor, switch.reason, switch.changed_at = (
                active,
                actor,
                reason,
                now,
            )
            session.flush()
        return switch

    def is_active(self, session: Session, scope: SwitchScope, target: str = "") -> bool:
        switch = self._row(session, scope, "" if scope is SwitchScope.ALL_LINKS else target)
        return switch is not None and switch.active

    def require_open(self, session: Session, scope: SwitchScope, target: str = "") -> None:
        """Refuse with :class:`KillSwitchActive` if the switch is on."""
        if self.is_active(session, scope, target):
            raise KillSwitchActive(_MESSAGES[scope], scope=scope.value, target=target)

    def active(self, session: Session) -> Sequence[KillSwitch]:
        return session.scalars(
            select(KillSwitch).where(KillSwitch.active.is_(True)).order_by(KillSwitch.id)
        ).all()

    def _row(self, session: Session, scope: SwitchScope, target: str) -> KillSwitch | None:
        return session.scalars(
            select(KillSwitch)
            .where(KillSwitch.scope == scope.value, KillSwitch.target == target)
            .execution_options(populate_existing=True)
        ).one_or_none()


switches = SwitchService()
"""The kill-switch service singleton."""
