"""Proof that whoever moves money out of a wallet holds the owner's device or phone (ADR 0021).

A password (or a bearer token got with it) proves little: passwords are reused and leaked. So
money leaving a wallet — a payment above ``money_out_free_payment_yen``, every transfer to
another wallet (which also covers every new payee) — needs one of two proofs for that action:

``device_signature``
    a registered, non-revoked device key's signature over a fresh single-use challenge issued
    for the action (:mod:`kouza.identity.devices`); the device it proves is the only device id
    the risk engine ever sees for the action;
``sms_otp``
    an SMS step-up for the action passed on the verified phone within the step-up validity
    (:mod:`kouza.identity.otp`); spent on use.

For ``credential_change_cooloff_hours`` after a password, phone or e-mail change, *every*
payment needs a proof (the free amount does not apply), and the SMS step-up is not accepted if
it was the phone that changed (whoever changed it receives the codes). Withdrawals to a bank
and bank links are device-signed by the linking policy already (``require_device_signature``).

A refusal is ``step_up_required`` (403) naming the methods this user can use, or
``phone_required`` when the user has neither a device key nor a verified phone yet. Nothing is
written before it, so the request's idempotency key is released and a retry with a proof works.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.identity import devices, otp
from kouza.identity.devices import SensitiveAction, SignedChallenge
from kouza.identity.errors import PhoneRequired, StepUpRequired
from kouza.identity.models import ContactChange, User
from kouza.runtime import runtime_of


class ProofMethod(StrEnum):
    """How the owner proved an action."""

    DEVICE_SIGNATURE = "device_signature"
    """A registered device key signed a challenge for the action."""
    SMS_OTP = "sms_otp"
    """The owner passed an SMS step-up for the action on the verified phone."""


@dataclass(frozen=True)
class Proven:
    """What an action was proven with: the device (None when no key signed) and the method
    (None when no proof was needed and none was brought)."""

    device_id: uuid.UUID | None = None
    method: ProofMethod | None = None

    @property
    def device(self) -> str:
        """The device id the risk engine files the action under ("" for an unproven one)."""
        return str(self.device_id) if self.device_id is not None else ""


def recent_changes(session: Session, user: User) -> set[str]:
    """Which of ``password``, ``phone`` and ``email`` changed within the cool-off."""
    runtime = runtime_of(session)
    since = runtime.now() - timedelta(hours=runtime.settings.credential_change_cooloff_hours)
    changed = set(
        session.scalars(
            select(ContactChange.kind).where(
                ContactChange.user_id == user.id, ContactChange.completed_at >= since
            )
        )
    )
    current = session.get(User, user.id)
    changed_at = current.password_changed_at if current is not None else None
    if changed_at is not None and changed_at >= since:
        changed.add("password")
    return changed


def prove(
    session: Session,
    user: User,
    *,
    action: SensitiveAction,
    signed: SignedChallenge | None,
    required: bool,
) -> Proven:
    """Check the proof brought for ``action``; refuse if one is needed and none is valid.

    ``required`` says whether the action needs a proof outside a cool-off (a transfer always,
    a payment above the free amount). A signature, when brought, is always checked.
    """
    if signed is not None:
        device = devices.verify_device_signature(
            session,
            user,
            device_id=signed.device_id,
            action=action.value,
            nonce=signed.nonce,
            signature=signed.signature,
        )
        return Proven(device.id, ProofMethod.DEVICE_SIGNATURE)
    if not runtime_of(session).settings.money_out_proof:
        return Proven()
    changed = recent_changes(session, user)
    if not required and not changed:
        return Proven()
    sms_allowed = "phone" not in changed and otp.verified_phone(session, user) is not None
    if sms_allowed and otp.step_up_satisfied(session, user, action.value):
        otp.spend_step_up(session, user, action.value)
        return Proven(None, ProofMethod.SMS_OTP)
    _refuse(session, user, action, changed, sms_allowed=sms_allowed)


def _refuse(
    session: Session, user: User, action: SensitiveAction, changed: set[str], *, sms_allowed: bool
) -> NoReturn:
    methods = []
    if devices.active_devices(session, user):
        methods.append(ProofMethod.DEVICE_SIGNATURE.value)
    if sms_allowed:
        methods.append(ProofMethod.SMS_OTP.value)
    why = (
        f"your {' and '.join(sorted(changed))} changed recently"
        if changed
        else "money is leaving your wallet"
    )
    if not methods:
        raise PhoneRequired(
            f"'{action.value}' needs proof that you hold your phone ({why}): verify a phone "
            "number and register this device first (POST /v1/phone/verification)",
            purpose=action.value,
            methods=[],
        )
    ways = []
    if ProofMethod.DEVICE_SIGNATURE.value in methods:
        ways.append(
            "sign a challenge with your registered device "
            "(POST /v1/devices/{device_id}/challenges, then send device_id, nonce "
            "and signature)"
        )
    if sms_allowed:
        ways.append(
            "confirm a code sent to your verified phone (POST /v1/step-up with "
            f"purpose '{action.value}', then retry)"
        )
    raise StepUpRequired(
        f"'{action.value}' needs proof that this is you ({why}): " + ", or ".join(ways),
        purpose=action.value,
        methods=methods,
        recent_changes=sorted(changed),
    )
