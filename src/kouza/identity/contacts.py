"""Changing the verified phone number or the e-mail address.

Taking over an account starts with its contacts: whoever controls the phone number receives the
step-up codes, whoever controls the address receives the warnings. So a change needs three
things, each from a different channel:

1. the bearer token of the session (who is asking);
2. the **current device's signature** over a fresh challenge for ``phone.change`` /
   ``email.change`` (:mod:`kouza.identity.devices`; spent on use) — a stolen password or token
   alone changes nothing;
3. a **code sent to the new contact**, proving the user holds it: an SMS code (the OTP machinery
   of :mod:`kouza.identity.otp`, purpose ``phone_change``: 5 minutes, 5 tries, resend throttle,
   per-number / per-IP / per-user limits) or an e-mail code (keyed hash bound to the request,
   ``email_code_ttl_seconds``, ``email_code_max_attempts``).

Both kinds are also limited to ``contact_change_limit_per_user_per_day`` requests per user, and
e-mail codes to ``email_change_limit_per_address_per_day`` per new address. A new request of one
kind supersedes the user's pending one. The one-number-per-N-wallets cap
(``phone_max_users_per_number``) is checked when the code is sent and again, under the lock on
the number's ``phone_numbers`` row, when it is confirmed.

When the change completes, the **old contact is told** (SMS to the old number, e-mail to the old
address, and the other channel too) with the time and a masked new value, so a victim learns of
a takeover on a channel the attacker does not control; a ``contact_change`` risk event carries
the signing device. A phone change also kills every unspent step-up and pending code of the old
number, since they were proven with a phone the user no longer declares.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kouza.errors import BadRequest
from kouza.identity import devices, events, levels, otp, phones, ratelimits
from kouza.identity.devices import SensitiveAction
from kouza.identity.errors import (
    CodeExpired,
    EmailTaken,
    InvalidCode,
    PhoneRequired,
    TooManyAttempts,
    UnknownChallenge,
)
from kouza.identity.models import (
    ContactChange,
    ContactKind,
    OtpChallenge,
    OtpPurpose,
    User,
    UserPhone,
    VerificationLevel,
)
from kouza.identity.settings import seconds, setting
from kouza.kit import outbox
from kouza.kit.locking import lock_row
from kouza.kit.security import constant_time_equal, keyed_hash, random_digits
from kouza.risk.events import EventType
from kouza.runtime import runtime_of

DAY = timedelta(days=1)
_EMAIL_CODE_PURPOSE = "email-change-code"


def mask(value: str) -> str:
    """A contact shown in a warning: enough to recognise, not enough to harvest."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{value[:3]}****{value[-4:]}"


def _request_limits(session: Session, user: User) -> list[ratelimits.Limit]:
    return [
        ratelimits.Limit(
            "user",
            f"contact-change:{user.id}",
            setting(session, "contact_change_limit_per_user_per_day"),
            DAY,
        )
    ]


def _signed_by_device(
    session: Session,
    user: User,
    action: SensitiveAction,
    *,
    device_id: uuid.UUID,
    nonce: str,
    signature: str,
) -> uuid.UUID:
    device = devices.verify_device_signature(
        session, user, device_id=device_id, action=action.value, nonce=nonce, signature=signature
    )
    return device.id


def _supersede_pending(session: Session, user: User, kind: ContactKind) -> None:
    now = runtime_of(session).now()
    session.execute(
        update(ContactChange)
        .where(
            ContactChange.user_id == user.id,
            ContactChange.kind == kind.value,
            ContactChange.completed_at.is_(None),
            ContactChange.superseded_at.is_(None),
        )
        .values(superseded_at=now)
        .execution_options(synchronize_session=False)
    )


def _new_change(
    session: Session,
    user: User,
    kind: ContactKind,
    *,
    old: str,
    new: str,
    device_id: uuid.UUID,
    ip: str,
    expires_at: datetime,
) -> ContactChange:
    _supersede_pending(session, user, kind)
    change = ContactChange(
        id=uuid.uuid4(),
        user_id=user.id,
        kind=kind.value,
        old_value=old,
        new_value=new,
        device_id=device_id,
        attempts=0,
        ip=ip,
        created_at=runtime_of(session).now(),
        expires_at=expires_at,
    )
    session.add(change)
    return change


# --- phone ------------------------------------------------------------------------------------


def start_phone_change(
    session: Session,
    user: User,
    *,
    phone: str,
    device_id: uuid.UUID,
    nonce: str,
    signature: str,
    ip: str = "",
) -> ContactChange:
    """Check the device signature, then send a code to the new number; returns the request."""
    user = levels.attached(session, user)
    current = otp.verified_phone(session, user)
    if current is None:
        raise PhoneRequired("verify a phone number first; there is none to change")
    e164 = phones.normalize_phone(phone)
    if e164 == current.e164:
        raise BadRequest("this is already the phone number of your account")
    phones.require_room(session, e164, user)
    signer = _signed_by_device(
        session,
        user,
        SensitiveAction.CHANGE_PHONE,
        device_id=device_id,
        nonce=nonce,
        signature=signature,
    )
    challenge = otp.send_code(
        session,
        user,
        e164=e164,
        purpose=OtpPurpose.PHONE_CHANGE,
        ip=ip,
        extra_limits=_request_limits(session, user),
    )
    change = _new_change(
        session,
        user,
        ContactKind.PHONE,
        old=current.e164,
        new=e164,
        device_id=signer,
        ip=ip,
        expires_at=challenge.expires_at,
    )
    change.otp_challenge_id = challenge.id
    session.flush()
    return change


def _lock_pending(
    session: Session, user: User, change_id: uuid.UUID, kind: ContactKind
) -> ContactChange:
    change = session.scalars(
        select(ContactChange)
        .where(ContactChange.id == change_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if change is None or change.user_id != user.id or change.kind != kind.value:
        raise UnknownChallenge("no such change request", change_id=str(change_id))
    if change.completed_at is not None or change.superseded_at is not None:
        raise InvalidCode("this change request was completed or replaced; start a new one")
    return change


def _kill_old_phone_proofs(session: Session, user: User, old_e164: str) -> None:
    now = runtime_of(session).now()
    session.execute(
        update(OtpChallenge)
        .where(
            OtpChallenge.user_id == user.id,
            OtpChallenge.e164 == old_e164,
            OtpChallenge.consumed_at.is_(None),
        )
        .values(consumed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(OtpChallenge)
        .where(
            OtpChallenge.user_id == user.id,
            OtpChallenge.satisfied.is_(True),
            OtpChallenge.spent_at.is_(None),
        )
        .values(spent_at=now)
        .execution_options(synchronize_session=False)
    )


def confirm_phone_change(
    session: Session, user: User, change_id: uuid.UUID, code: str, *, ip: str = ""
) -> ContactChange:
    """Check the code sent to the new number; then switch numbers and warn the old one."""
    user = levels.attached(session, user)
    change = _lock_pending(session, user, change_id, ContactKind.PHONE)
    assert change.otp_challenge_id is not None
    challenge = otp.lock_challenge(session, user, change.otp_challenge_id, OtpPurpose.PHONE_CHANGE)
    otp.check_code(session, challenge, code)
    phones.lock_number(session, change.new_value)
    phones.require_room(session, change.new_value, user)
    phone = lock_row(session, UserPhone, user.id)
    if phone is None or phone.e164 != change.old_value:
        raise InvalidCode("the phone number changed since this request; start a new one")
    now = runtime_of(session).now()
    phone.e164, phone.verified_at = change.new_value, now
    change.completed_at = now
    _kill_old_phone_proofs(session, user, change.old_value)
    _warn_old_contacts(session, user, change)
    events.record(
        session,
        EventType.CONTACT_CHANGE,
        user,
        device=change.device_id,
        ip=ip,
        attributes={"contact": ContactKind.PHONE.value, "change": "replaced"},
    )
    session.flush()
    return change


# --- e-mail -----------------------------------------------------------------------------------


def _email_code_hash(session: Session, change_id: uuid.UUID, code: str) -> str:
    secret = runtime_of(session).secret
    return keyed_hash(secret, f"{change_id}\x00{code}", purpose=_EMAIL_CODE_PURPOSE)


def _throttle_email_resend(session: Session, user: User) -> None:
    latest = session.scalars(
        select(ContactChange)
        .where(ContactChange.user_id == user.id, ContactChange.kind == ContactKind.EMAIL.value)
        .order_by(ContactChange.created_at.desc())
        .limit(1)
    ).first()
    now = runtime_of(session).now()
    interval = seconds(session, "sms_resend_interval_seconds")
    if latest is not None and now - latest.created_at < interval:
        wait = int((latest.created_at + interval - now).total_seconds()) or 1
        raise TooManyAttempts(
            f"wait {wait} seconds before asking for another code", retry_after=wait
        )


def start_email_change(
    session: Session,
    user: User,
    *,
    email: str,
    device_id: uuid.UUID,
    nonce: str,
    signature: str,
    ip: str = "",
) -> ContactChange:
    """Check the device signature, then e-mail a code to the new address; returns the request."""
    user = levels.attached(session, user)
    levels.require_level(user, VerificationLevel.PHONE, action="changing the e-mail address")
    address = normalize_email(email)
    if address == user.email:
        raise BadRequest("this is already the e-mail address of your account")
    if session.scalars(select(User.id).where(User.email == address)).first() is not None:
        raise EmailTaken("an account with this e-mail address exists")
    signer = _signed_by_device(
        session,
        user,
        SensitiveAction.CHANGE_EMAIL,
        device_id=device_id,
        nonce=nonce,
        signature=signature,
    )
    per_address = setting(session, "email_change_limit_per_address_per_day")
    limits = [
        *_request_limits(session, user),
        ratelimits.Limit("e-mail address", address, per_address, DAY),
    ]
    ratelimits.check(session, limits)
    _throttle_email_resend(session, user)
    runtime = runtime_of(session)
    ttl = seconds(session, "email_code_ttl_seconds")
    change = _new_change(
        session,
        user,
        ContactKind.EMAIL,
        old=user.email,
        new=address,
        device_id=signer,
        ip=ip,
        expires_at=runtime.now() + ttl,
    )
    code = random_digits(6)
    change.code_hash = _email_code_hash(session, change.id, code)
    session.flush()
    outbox.enqueue(
        session,
        channel="email",
        recipient=address,
        subject=f"{runtime.settings.operator_name}: confirm your new e-mail address",
        body=f"Your code is {code}. Enter it in the app to make this the e-mail address of "
        f"your {runtime.settings.operator_name} account. It expires in "
        f"{int(ttl.total_seconds()) // 60} minutes. If you did not ask for this, ignore it.",
    )
    return change


def _check_email_code(session: Session, change: ContactChange, code: str) -> None:
    maximum = setting(session, "email_code_max_attempts")
    if change.expires_at <= runtime_of(session).now():
        raise CodeExpired("the code has expired; start a new change")
    if change.attempts >= maximum:
        raise TooManyAttempts("too many wrong codes; start a new change")
    expected = _email_code_hash(session, change.id, code.strip())
    if not constant_time_equal(expected, change.code_hash or ""):
        change.attempts += 1
        raise InvalidCode("wrong code", keep_changes=True, attempts_left=maximum - change.attempts)


def confirm_email_change(
    session: Session, user: User, change_id: uuid.UUID, code: str, *, ip: str = ""
) -> ContactChange:
    """Check the code sent to the new address; then switch addresses and warn the old one."""
    user = levels.attached(session, user)
    change = _lock_pending(session, user, change_id, ContactKind.EMAIL)
    _check_email_code(session, change, code)
    if user.email != change.old_value:
        raise InvalidCode("the e-mail address changed since this request; start a new one")
    now = runtime_of(session).now()
    try:
        with session.begin_nested():
            user.email, user.email_verified_at = change.new_value, now
            session.flush()
    except IntegrityError:
        raise EmailTaken("an account with this e-mail address exists") from None
    change.completed_at = now
    _warn_old_contacts(session, user, change)
    events.record(
        session,
        EventType.CONTACT_CHANGE,
        user,
        device=change.device_id,
        ip=ip,
        attributes={"contact": ContactKind.EMAIL.value, "change": "replaced"},
    )
    session.flush()
    return change


# --- warnings ---------------------------------------------------------------------------------


def _warning(session: Session, change: ContactChange) -> str:
    settings = runtime_of(session).settings
    what = "phone number" if change.kind == ContactKind.PHONE.value else "e-mail address"
    assert change.completed_at is not None
    # the call centre the ops domain quotes in its notices, when configured
    support = getattr(settings, "operator_fraud_contact", "") or f"{settings.operator_name} support"
    return (
        f"{settings.operator_name}: the {what} of your account was changed to "
        f"{mask(change.new_value)} at {change.completed_at:%Y-%m-%d %H:%M} UTC. If this was not "
        f"you, contact {support} at once: your account may have been taken over."
    )


def _warn_old_contacts(session: Session, user: User, change: ContactChange) -> None:
    """Tell the replaced contact (and the other channel) on a path the new holder cannot stop."""
    body = _warning(session, change)
    subject = f"{runtime_of(session).settings.operator_name}: your contact details were changed"
    if change.kind == ContactKind.PHONE.value:
        outbox.enqueue(session, channel="sms", recipient=change.old_value, subject="", body=body)
        outbox.enqueue(session, channel="email", recipient=user.email, subject=subject, body=body)
        return
    outbox.enqueue(session, channel="email", recipient=change.old_value, subject=subject, body=body)
    phone = otp.verified_phone(session, user)
    if phone is not None:
        outbox.enqueue(session, channel="sms", recipient=phone.e164, subject="", body=body)


def history(session: Session, user: User, *, limit: int = 50) -> list[ContactChange]:
    """The user's contact change requests, newest first."""
    return list(
        session.scalars(
            select(ContactChange)
            .where(ContactChange.user_id == user.id)
            .order_by(ContactChange.created_at.desc())
            .limit(limit)
        )
    )


def normalize_email(email: str) -> str:
    """The canonical, lower-cased form of an address; raises BadRequest if it is not one."""
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise BadRequest(f"not a valid e-mail address: {exc}") from None
