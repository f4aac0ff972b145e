"""Verification levels, the charge gate and re-verification campaigns.

Each level needs everything below it (DESIGN.md):

- ``email``: the e-mail address is verified;
- ``phone``: plus a verified phone number and at least one registered device key;
- ``verified``: plus a successful eKYC (JPKI or IC chip): the card's kanji name and birth date
  become the verified identity every link sends to the bank (the declared kana rides along).

:func:`promote` recomputes the highest level the facts allow and raises the user to it; it
never lowers. Lowering is :func:`settle`, called when a fact is withdrawn: the last active device
key revoked (back to ``email``), or the certificate behind the verified identity found revoked
by a re-check (``verified_identities.revoked_at``; back to ``phone``). Every lowering is written
to the operators' audit trail (``identity.level.lowered``) in the same unit of work. The facts
that remain are kept, so the user climbs back by restoring the missing one (a new device with an
OTP step-up; a new successful eKYC, which clears ``revoked_at``).

Charging (bank top-up) and linking need ``verified`` **and** no pending re-verification: an
operator's campaign puts a cohort of users on hold until each passes eKYC again after the
campaign started (as Docomo did in October 2020). The hold blocks only new charges: the balance
already in the wallet stays spendable, so payments and transfers are not gated here. The cohort
is chosen by the caller (a list of user ids, :func:`every_verified_user`, or any function of
the session), because the cohort that matters most, "every wallet with a linked bank", belongs
to the linking domain.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kouza.controls.service import controls
from kouza.identity.errors import (
    EmptyCohort,
    LevelRequired,
    ReverificationRequired,
    UnknownCampaign,
    UnknownUsers,
)
from kouza.identity.models import (
    LEVEL_ORDER,
    Device,
    EkycVerification,
    ReverificationCampaign,
    ReverificationRequirement,
    User,
    UserPhone,
    VerificationLevel,
    VerifiedIdentity,
)
from kouza.runtime import runtime_of

Cohort = Iterable[uuid.UUID] | Callable[[Session], Iterable[uuid.UUID]]


def attached(session: Session, user: User) -> User:
    """``user`` as an object of ``session`` (endpoints authenticate in a session of their own)."""
    if user in session:
        return user
    loaded = session.get(User, user.id)
    assert loaded is not None, "an authenticated user exists"
    return loaded


def raise_level(session: Session, user: User, level: VerificationLevel) -> None:
    """Move the user up to ``level`` (never down)."""
    if LEVEL_ORDER.index(level) > LEVEL_ORDER.index(VerificationLevel(user.level)):
        user.level = level.value
        session.flush()


def require_level(user: User, level: VerificationLevel, *, action: str) -> None:
    """Refuse ``action`` unless the user has reached ``level``."""
    if LEVEL_ORDER.index(VerificationLevel(user.level)) < LEVEL_ORDER.index(level):
        raise LevelRequired(
            f"{action} needs verification level '{level.value}' (you have '{user.level}')",
            required=level.value,
            current=user.level,
        )


def _has_device(session: Session, user: User) -> bool:
    query = select(Device.id).where(Device.user_id == user.id, Device.revoked_at.is_(None))
    return session.scalars(query.limit(1)).first() is not None


def earned_level(session: Session, user: User) -> VerificationLevel:
    """The highest level the recorded facts allow."""
    if user.email_verified_at is None:
        return VerificationLevel.NONE
    if session.get(UserPhone, user.id) is None or not _has_device(session, user):
        return VerificationLevel.EMAIL
    verified = session.get(VerifiedIdentity, user.id)
    if verified is None or verified.revoked_at is not None:
        return VerificationLevel.PHONE
    return VerificationLevel.VERIFIED


def promote(session: Session, user: User) -> None:
    """Raise the user to the level the recorded facts allow."""
    raise_level(session, user, earned_level(session, user))


def settle(session: Session, user: User, *, actor: str, reason: str) -> VerificationLevel | None:
    """Lower the user to the level the remaining facts allow (audited); the new level, if any."""
    earned = earned_level(session, user)
    current = VerificationLevel(user.level)
    if LEVEL_ORDER.index(earned) >= LEVEL_ORDER.index(current):
        return None
    user.level = earned.value
    controls.audit(
        session,
        actor=actor,
        action="identity.level.lowered",
        subject=f"user:{user.id}",
        reason=reason,
        details={"from": current.value, "to": earned.value},
    )
    session.flush()
    return earned


def pending_reverifications(session: Session, user: User) -> Sequence[ReverificationRequirement]:
    """The user's uncleared re-verification requirements."""
    return session.scalars(
        select(ReverificationRequirement)
        .where(
            ReverificationRequirement.user_id == user.id,
            ReverificationRequirement.cleared_at.is_(None),
        )
        .order_by(ReverificationRequirement.required_since)
    ).all()


def require_charge_allowed(session: Session, user: User) -> None:
    """Refuse a bank charge or link unless the user is ``verified`` and not on hold."""
    verified = session.get(VerifiedIdentity, user.id)
    if verified is not None and verified.revoked_at is not None:
        raise ReverificationRequired(
            "the identity document behind your verification was revoked: pass eKYC again "
            "before charging; your balance stays spendable meanwhile",
            revoked_at=verified.revoked_at.isoformat(),
        )
    require_level(user, VerificationLevel.VERIFIED, action="charging from a bank")
    pending = pending_reverifications(session, user)
    if pending:
        raise ReverificationRequired(
            "pass eKYC again before charging: your balance stays spendable meanwhile",
            campaigns=[str(p.campaign_id) for p in pending],
        )


def may_charge(session: Session, user: User) -> bool:
    """Whether the user may charge from (or link) a bank right now."""
    try:
        require_charge_allowed(session, user)
    except (LevelRequired, ReverificationRequired):
        return False
    return True


def every_verified_user(session: Session) -> list[uuid.UUID]:
    """Cohort: every user at level ``verified``."""
    return list(
        session.scalars(select(User.id).where(User.level == VerificationLevel.VERIFIED.value))
    )


def _cohort_ids(session: Session, cohort: Cohort) -> list[uuid.UUID]:
    chosen = cohort(session) if callable(cohort) else cohort
    ids = sorted(set(chosen), key=str)
    if not ids:
        raise EmptyCohort("the cohort is empty: nobody to re-verify")
    known = set(session.scalars(select(User.id).where(User.id.in_(ids))))
    unknown = [str(user_id) for user_id in ids if user_id not in known]
    if unknown:
        raise UnknownUsers("some user ids are unknown", user_ids=unknown[:20])
    return ids


def start_campaign(
    session: Session, *, name: str, reason: str, started_by: str, cohort: Cohort
) -> ReverificationCampaign:
    """Start a campaign: every user of ``cohort`` must pass eKYC again before charging."""
    ids = _cohort_ids(session, cohort)
    now = runtime_of(session).now()
    campaign = ReverificationCampaign(
        id=uuid.uuid4(),
        name=name[:200],
        reason=reason[:500],
        started_by=started_by[:120],
        started_at=now,
    )
    session.add(campaign)
    session.flush()
    session.add_all(
        ReverificationRequirement(campaign_id=campaign.id, user_id=user_id, required_since=now)
        for user_id in ids
    )
    session.flush()
    return campaign


@dataclass(frozen=True)
class CampaignProgress:
    """How far a campaign has got."""

    campaign: ReverificationCampaign
    pending: int
    cleared: int


def campaign_progress(session: Session, campaign_id: uuid.UUID) -> CampaignProgress:
    """The campaign with its counts of pending and cleared users."""
    campaign = session.get(ReverificationCampaign, campaign_id)
    if campaign is None:
        raise UnknownCampaign("no such campaign", campaign_id=str(campaign_id))
    rows = session.execute(
        select(ReverificationRequirement.cleared_at.is_(None), func.count())
        .where(ReverificationRequirement.campaign_id == campaign_id)
        .group_by(ReverificationRequirement.cleared_at.is_(None))
    ).all()
    counts = {bool(pending): int(number) for pending, number in rows}
    return CampaignProgress(campaign, counts.get(True, 0), counts.get(False, 0))


def clear_requirements(session: Session, user: User, verification: EkycVerification) -> None:
    """A successful eKYC clears every requirement that started no later than it."""
    session.execute(
        update(ReverificationRequirement)
        .where(
            ReverificationRequirement.user_id == user.id,
            ReverificationRequirement.cleared_at.is_(None),
            ReverificationRequirement.required_since <= verification.checked_at,
        )
        .values(cleared_at=verification.checked_at, cleared_by=verification.id)
    )
