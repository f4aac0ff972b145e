"""Device keys: registration and signatures over single-use server challenges.

A device (the customer's phone app) holds a private key that never leaves it and registers the
public half as a JWK: **ES256** (EC P-256) or **Ed25519** (OKP, JWS algorithm ``Ed25519`` of
RFC 9864). The first device is registered together with the phone verification; a later device
is approved either by an *established* device of the same user signing a ``device.register``
challenge (a new phone beside the old one: no code to type) or by a satisfied OTP step-up for
``device.register`` (the old phone is lost). How it was added is kept (``added_by``) and fed to
the risk history, because a key added by SMS alone is what a SIM swap or a relayed code gives an
attacker. A device is *established* (:func:`established`) once it has been registered for
``device_trust_after_hours`` or when an established device approved it; its signature then
answers a risk step-up without an SMS code (ADR 0033). kouza records each device's
RFC 7638 thumbprint, name, first-seen and last-used times, and feeds every device added or
revoked to the risk history (``device_added`` / ``contact_change``). Revoking the last active
device lowers the user to ``email`` (:func:`kouza.identity.levels.settle`, audited); adding a
device again restores what the remaining facts allow.

A sensitive action (link a bank, charge, withdraw, change phone, e-mail or device) carries the
device's signature over a fresh server challenge:

1. the server issues a nonce for (user, device, action): :func:`issue_device_challenge`; it lives
   2 minutes and only its keyed hash is stored;
2. the device signs a **compact JWS** whose protected header is ``{"alg": "ES256"}`` (or
   ``"Ed25519"``) and whose payload is exactly the JSON object
   ``{"nonce": …, "action": …, "device_id": …, "user_id": …}`` (member order and whitespace
   free; no other members allowed);
3. :func:`verify_device_signature` spends the nonce on any attempt that names a live challenge
   of this user and device (so a captured signature cannot be replayed and a refused attempt
   cannot be retried) and returns the :class:`Device`, whose id the caller puts on its events.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.identity import events, levels, otp
from kouza.identity.errors import (
    DeviceChallengeExpired,
    DeviceChallengeInvalid,
    DeviceChallengeReplayed,
    DeviceExists,
    DeviceNotEstablished,
    DeviceRevoked,
    DeviceSignatureInvalid,
    InvalidDeviceKey,
    PhoneRequired,
    UnknownAction,
    UnknownDevice,
    UnsupportedDeviceKey,
)
from kouza.identity.models import Device, DeviceChallenge, User
from kouza.identity.settings import seconds
from kouza.kit.db import add_unique
from kouza.kit.security import keyed_hash, random_token
from kouza.risk.events import EventType
from kouza.runtime import runtime_of

DeviceKey = ECKey | OKPKey


class SensitiveAction(StrEnum):
    """Actions that must carry a device signature."""

    LINK_BANK = "bank.link"
    """Link a bank account for instant-debit top-up."""
    CHARGE = "charge"
    """Top up the wallet from a linked bank account."""
    WITHDRAW = "withdraw"
    """Withdraw the balance to a bank account."""
    CHANGE_PHONE = "phone.change"
    """Replace the verified phone number."""
    CHANGE_EMAIL = "email.change"
    """Replace the e-mail address."""
    REGISTER_DEVICE = "device.register"
    """Add another device key (also needs an OTP step-up)."""
    REVOKE_DEVICE = "device.revoke"
    """Revoke a device key."""
    PAY = "payment"
    """Pay a merchant above the free amount (``money_out_free_payment_yen``)."""
    TRANSFER = "transfer"
    """Send money to another wallet."""
    CHANGE_PASSWORD = "password.change"
    """Replace the password (a device signature or an SMS step-up, as for money out)."""


@dataclass(frozen=True)
class SignedChallenge:
    """A device's compact JWS over a server challenge, with the device that made it."""

    device_id: uuid.UUID
    nonce: str
    signature: str


@dataclass(frozen=True)
class ParsedKey:
    """A validated public device key."""

    key: DeviceKey
    algorithm: str
    thumbprint: str
    public_jwk: dict[str, Any]


_CURVES = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "Ed25519"}
_PUBLIC_MEMBERS = {"EC": ("kty", "crv", "x", "y"), "OKP": ("kty", "crv", "x")}


def parse_device_key(jwk: Mapping[str, Any]) -> ParsedKey:
    """Validate a public JWK (ES256 P-256 or Ed25519); refuse private or other keys."""
    if not isinstance(jwk, Mapping) or "d" in jwk:
        raise InvalidDeviceKey("send the device's public key as a JWK (never the private key)")
    algorithm = _CURVES.get((str(jwk.get("kty")), str(jwk.get("crv"))))
    if algorithm is None:
        raise UnsupportedDeviceKey(
            "device keys are EC P-256 (ES256) or OKP Ed25519",
            kty=str(jwk.get("kty"))[:16],
            crv=str(jwk.get("crv"))[:16],
        )
    kty = str(jwk["kty"])
    public = {name: jwk.get(name) for name in _PUBLIC_MEMBERS[kty]}
    try:
        key: DeviceKey = (ECKey if kty == "EC" else OKPKey).import_key(public)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidDeviceKey(f"the JWK is not a valid {kty} public key: {exc}") from None
    return ParsedKey(key, algorithm, key.thumbprint(), key.as_dict(private=False))


class DeviceAddedBy(StrEnum):
    """What proved a device's registration."""

    PHONE_VERIFICATION = "phone_verification"
    """The first device, registered with the SMS code that verified the phone."""
    SMS_OTP = "sms_otp"
    """A later device, after an SMS step-up for ``device.register``."""
    DEVICE_SIGNATURE = "device_signature"
    """A later device, approved by an established device's signature."""


def add_device(
    session: Session, user: User, key: ParsedKey, name: str, added_by: DeviceAddedBy
) -> Device:
    """Record a device key for the user (refused if this key is already registered)."""
    now = runtime_of(session).now()
    device = Device(
        id=uuid.uuid4(),
        user_id=user.id,
        thumbprint=key.thumbprint,
        algorithm=key.algorithm,
        public_jwk=key.public_jwk,
        name=name.strip()[:100] or "device",
        created_at=now,
        added_by=added_by.value,
    )
    add_unique(session, device, DeviceExists("this device key is already registered"))
    return device


def established(session: Session, device: Device, *, at: datetime | None = None) -> bool:
    """Whether ``device`` is established: live, and approved by an established device or
    registered at least ``device_trust_after_hours`` before ``at`` (default now)."""
    if device.revoked_at is not None:
        return False
    if device.added_by == DeviceAddedBy.DEVICE_SIGNATURE.value:
        return True
    runtime = runtime_of(session)
    now = at if at is not None else runtime.now()
    return device.created_at <= now - timedelta(hours=runtime.settings.device_trust_after_hours)


def register_device(
    session: Session,
    user: User,
    *,
    jwk: Mapping[str, Any],
    name: str,
    ip: str = "",
    approval: SignedChallenge | None = None,
) -> Device:
    """Register another device (recorded with how it was proven): approved by an established
    device's signature over a ``device.register`` challenge, or else after a satisfied SMS
    step-up. An approval from a device that is not established yet is refused (a key added by
    a relayed code must not vouch for the next one)."""
    key = parse_device_key(jwk)
    if otp.verified_phone(session, user) is None:
        raise PhoneRequired("verify a phone number first; the first device comes with it")
    if approval is not None:
        approver = verify_device_signature(
            session,
            user,
            device_id=approval.device_id,
            action=SensitiveAction.REGISTER_DEVICE.value,
            nonce=approval.nonce,
            signature=approval.signature,
        )
        if not established(session, approver):
            raise DeviceNotEstablished(
                "this device is too new to approve another one: confirm with the code sent "
                "to your phone instead (POST /v1/step-up with purpose 'device.register')",
                device_id=str(approver.id),
                keep_changes=True,
            )
        added_by = DeviceAddedBy.DEVICE_SIGNATURE
    else:
        otp.spend_step_up(session, user, SensitiveAction.REGISTER_DEVICE.value)
        added_by = DeviceAddedBy.SMS_OTP
    device = add_device(session, user, key, name, added_by)
    user = levels.attached(session, user)
    events.record(
        session,
        EventType.DEVICE_ADDED,
        user,
        device=device.id,
        ip=ip,
        attributes={"first": False, "added_by": added_by.value},
    )
    levels.promote(session, user)  # back up if a revoked last device had lowered the level
    return device


def active_devices(session: Session, user: User) -> Sequence[Device]:
    """The user's devices that are not revoked, oldest first."""
    return session.scalars(
        select(Device)
        .where(Device.user_id == user.id, Device.revoked_at.is_(None))
        .order_by(Device.created_at, Device.id)
    ).all()


def owned_device(session: Session, user: User, device_id: uuid.UUID) -> Device:
    """The user's device; UnknownDevice for an unknown id or someone else's device."""
    device = session.get(Device, device_id)
    if device is None or device.user_id != user.id:
        raise UnknownDevice("no such device", device_id=str(device_id))
    return device


def _live_device(session: Session, user: User, device_id: uuid.UUID) -> Device:
    device = owned_device(session, user, device_id)
    if device.revoked_at is not None:
        raise DeviceRevoked("this device was revoked", device_id=str(device_id))
    return device


def revoke_device(session: Session, user: User, device_id: uuid.UUID, *, ip: str = "") -> Device:
    """Revoke a device (step-up for ``device.revoke``); the last one lowers the level."""
    device = _live_device(session, user, device_id)
    otp.spend_step_up(session, user, SensitiveAction.REVOKE_DEVICE.value)
    device.revoked_at = runtime_of(session).now()
    session.flush()
    user = levels.attached(session, user)
    events.record(
        session,
        EventType.CONTACT_CHANGE,
        user,
        device=device.id,
        ip=ip,
        attributes={"contact": "device", "change": "revoked"},
    )
    levels.settle(
        session,
        user,
        actor=f"user:{user.id}",
        reason=f"device {device.id} revoked: no active device key left",
    )
    return device


def require_action(action: str) -> SensitiveAction:
    """The action named by ``action``; UnknownAction otherwise."""
    try:
        return SensitiveAction(action)
    except ValueError:
        raise UnknownAction(
            f"unknown action {action[:40]!r}", allowed=[a.value for a in SensitiveAction]
        ) from None


def _nonce_hash(session: Session, nonce: str) -> str:
    return keyed_hash(runtime_of(session).secret, nonce, purpose="device-challenge")


def issue_device_challenge(session: Session, user: User, device_id: uuid.UUID, action: str) -> str:
    """A fresh single-use nonce for ``device_id`` to sign for ``action``."""
    chosen = require_action(action)
    device = _live_device(session, user, device_id)
    now = runtime_of(session).now()
    nonce = random_token(32)
    session.add(
        DeviceChallenge(
            nonce_hash=_nonce_hash(session, nonce),
            user_id=user.id,
            device_id=device.id,
            action=chosen.value,
            created_at=now,
            expires_at=now + seconds(session, "device_challenge_ttl_seconds"),
        )
    )
    session.flush()
    return nonce


def signing_payload(
    *, nonce: str, action: str, device_id: uuid.UUID, user_id: uuid.UUID
) -> dict[str, str]:
    """The JSON object a device signs (as the payload of a compact JWS)."""
    return {"nonce": nonce, "action": action, "device_id": str(device_id), "user_id": str(user_id)}


def _spend_challenge(session: Session, user: User, device: Device, nonce: str) -> DeviceChallenge:
    challenge = session.scalars(
        select(DeviceChallenge)
        .where(DeviceChallenge.nonce_hash == _nonce_hash(session, nonce))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if challenge is None or challenge.user_id != user.id or challenge.device_id != device.id:
        raise DeviceChallengeInvalid("unknown challenge for this device; ask for a new one")
    now = runtime_of(session).now()
    if challenge.used_at is not None:
        raise DeviceChallengeReplayed("this challenge was already used; ask for a new one")
    if challenge.expires_at <= now:
        raise DeviceChallengeExpired("this challenge has expired; ask for a new one")
    challenge.used_at = now
    return challenge


def _signed_payload(device: Device, signature: str) -> Any:
    key = (ECKey if device.public_jwk.get("kty") == "EC" else OKPKey).import_key(device.public_jwk)
    try:
        signed = jws.deserialize_compact(signature, key, algorithms=[device.algorithm])
        if signed.headers().get("alg") != device.algorithm:
            raise ValueError("unexpected algorithm")
        return json.loads(signed.payload)
    except (JoseError, ValueError, TypeError, UnicodeDecodeError):
        return None


def verify_device_signature(
    session: Session,
    user: User,
    *,
    device_id: uuid.UUID,
    action: str,
    nonce: str,
    signature: str,
) -> Device:
    """Check the device's JWS over this user's challenge for ``action``; returns the device."""
    chosen = require_action(action)
    device = _live_device(session, user, device_id)
    challenge = _spend_challenge(session, user, device, nonce)
    if challenge.action != chosen.value:
        raise DeviceChallengeInvalid(
            f"this challenge was issued for '{challenge.action}', not '{chosen.value}'",
            keep_changes=True,
        )
    expected = signing_payload(
        nonce=nonce, action=chosen.value, device_id=device.id, user_id=user.id
    )
    if _signed_payload(device, signature) != expected:
        raise DeviceSignatureInvalid("the device signature does not verify", keep_changes=True)
    device.last_used_at = runtime_of(session).now()
    session.flush()
    return device
