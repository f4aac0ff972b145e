"""kouza's linking policy: the checks every link, top-up and withdrawal passes, in one place.

Each check is driven by a setting with the secure default (``kouza.config.Settings``); the
simulator flips them to replay 2019/2020 (ADR 0010):

* kill switches first (``ALL_LINKS``, ``BANK_LINKS`` for links; ``BANK_CHARGES`` for top-ups);
* the verification level (``link_min_level``, default ``verified``) and no pending
  re-verification (the identity charge gate);
* a device-key signature over a server challenge (``require_device_signature``);
* the risk decision: ``step_up`` is met by the request's own signature when its device is
  established (ADR 0033), else spends a satisfied OTP step-up or refuses with
  ``StepUpRequired``; ``review`` raises :class:`UnderReview` — a link is refused (it has no
  funds to hold), a top-up goes ahead at the bank and is credited as held funds until an
  operator releases or rejects it (``kouza.linking.reviews``, ADR 0013), a withdrawal is
  refused; ``block``
  refuses; ``lock`` also locks the wallet (the banks of its accounts are told) and opens a case,
  and the refusal keeps those changes — through :func:`kouza.wallet.enforcement.enforce`, the one
  enforcement path of every action.

Decisions are taken with the engine's what-if evaluation *before* the bank is called, and the
attempt is recorded once through ``risk.assess`` with its final outcome afterwards, so the
failed-attempt features count the real outcome (``ok``, ``bank_link_refused``, …).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction
from kouza.identity.errors import ReverificationRequired
from kouza.identity.models import User, VerificationLevel
from kouza.identity.service import identity
from kouza.linking.errors import (
    DeviceSignatureRequired,
    InvalidBankDetails,
    RiskRefused,
    UnderReview,
)
from kouza.risk.engine import Decision
from kouza.risk.events import RiskEvent
from kouza.risk.rules import Outcome
from kouza.risk.service import risk
from kouza.runtime import runtime_of
from kouza.wallet import enforcement

RISK_SOURCE = "risk"
"""``source`` of the cases a linking lock opens."""


@dataclass(frozen=True)
class DeviceProof:
    """A device's compact JWS over a server challenge (``POST /v1/devices/{id}/challenges``)."""

    nonce: str
    signature: str


def require_bank_gate(session: Session, user: User) -> None:
    """Refuse unless the user has the policy's level and no pending re-verification."""
    level = VerificationLevel(runtime_of(session).settings.link_min_level)
    if level is VerificationLevel.VERIFIED:
        identity.require_charge_allowed(session, user)
        return
    identity.require_level(user, level, action="using a bank account")
    pending = identity.pending_reverifications(session, user)
    if pending:
        raise ReverificationRequired(
            "pass eKYC again before charging: your balance stays spendable meanwhile",
            campaigns=[str(p.campaign_id) for p in pending],
        )


def require_device(
    session: Session,
    user: User,
    *,
    device_id: uuid.UUID | None,
    proof: DeviceProof | None,
    action: SensitiveAction,
) -> uuid.UUID | None:
    """The verified device id, or None when the policy allows an unsigned request."""
    if proof is None:
        if runtime_of(session).settings.require_device_signature:
            raise DeviceSignatureRequired(
                f"'{action.value}' must be signed by a registered device: ask for a challenge "
                "(POST /v1/devices/{device_id}/challenges) and send its nonce and signature",
                action=action.value,
            )
        return None
    if device_id is None:
        raise InvalidBankDetails("a device signature needs the device_id that made it")
    device = identity.verify_device_signature(
        session, user, device_id, action.value, proof.nonce, proof.signature
    )
    return device.id


def decide(session: Session, event: RiskEvent) -> Decision:
    """What the risk engine would decide about ``event`` (recorded later with its outcome)."""
    return risk.preview(session, event)


def record(session: Session, event: RiskEvent, *, refusal: KouzaError | None = None) -> None:
    """Record the attempt (with its final outcome) in the risk engine's history. A refusal
    decided on the what-if evaluation gets the recorded decision's id as its ``reference``."""
    decision = risk.assess(session, event)
    if (
        refusal is not None
        and "reference" in refusal.details
        and refusal.details["reference"] is None
    ):
        refusal.details["reference"] = decision.record_id


def enforce(
    session: Session,
    decision: Decision,
    *,
    user: User,
    wallet_id: uuid.UUID,
    purpose: SensitiveAction,
    signed_by: uuid.UUID | None = None,
) -> None:
    """Act on a risk decision taken before the bank is called (through :mod:`risk.enforcement`).

    ``review`` and ``block`` are raised here and keep nothing: a link or withdrawal refused
    before the bank is called leaves no trace but its recorded attempt; a top-up catches
    :class:`UnderReview` and proceeds with its funds held for an operator (ADR 0013).
    ``step_up`` and ``lock`` take the one enforcement path every action shares, so a lock from
    linking notifies the banks and opens its case exactly as a lock from a payment does.
    """
    rules = [rule.id for rule in decision.enforced]
    if decision.outcome is Outcome.REVIEW:
        raise UnderReview(
            "this request needs a review by kouza staff before it can proceed",
            rules=rules,
            reference=decision.record_id,
        )
    if decision.outcome is Outcome.BLOCK:
        raise RiskRefused(
            "refused by kouza's fraud checks", rules=rules, reference=decision.record_id
        )
    enforcement.enforce(
        session,
        decision,
        user=user,
        wallet_id=wallet_id,
        purpose=purpose.value,
        case_source=RISK_SOURCE,
        step_up_within=None,
        signed_by=signed_by,
    )
