"""Identity's contribution to the risk history: one event per security-relevant change.

Logins, e-mail and phone verifications, devices added or revoked, contact changes and eKYC
demotions are recorded through ``risk.assess`` in the caller's unit of work, with the user and,
where a device acted, its id (the risk engine keys features on devices). Nothing is enforced
here: the actions that move money or link banks judge their own events, and rules may key on
these (for example "a contact change in the last 24 hours").
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from kouza.identity.models import User
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.service import risk
from kouza.runtime import runtime_of


def record(
    session: Session,
    kind: EventType,
    user: User,
    *,
    device: uuid.UUID | None = None,
    ip: str = "",
    attributes: dict[str, Any] | None = None,
) -> None:
    """Feed one event about ``user`` to the risk engine (recorded, not enforced)."""
    risk.assess(
        session,
        RiskEvent(
            type=kind,
            at=runtime_of(session).now(),
            user=str(user.id),
            device=str(device) if device else "",
            ip=ip,
            email_domain=user.email.rpartition("@")[2],
            attributes=dict(attributes or {}),
        ),
    )
