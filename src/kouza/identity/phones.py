"""Phone numbers: parsing to E.164 and verification by SMS code.

Numbers are parsed with ``phonenumbers`` (libphonenumber's metadata), Japanese by default: a
number without ``+`` is read as a Japanese national number (``090-1234-5678`` →
``+819012345678``). Only numbers libphonenumber calls valid **mobile** (or, where a country
does not distinguish, fixed-line-or-mobile) are accepted, since the code goes by SMS: Japanese
landlines (03-…), toll-free (0120-…), IP phones (050-…) and premium numbers are refused.
Foreign mobile numbers are accepted.

Verifying a number registers the first device key in the same step. One number may back at most
``phone_max_users_per_number`` users (default 1). The count is checked when the code is sent
(to fail early) and again, under a lock on the number's ``phone_numbers`` row, when it is
confirmed, so two users racing for one number cannot both get it. A verified number is
replaced through the device-signed ``phone.change`` flow of :mod:`kouza.identity.contacts`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kouza.identity import devices, events, levels, otp
from kouza.identity.errors import InvalidPhoneNumber, PhoneAlreadyVerified, PhoneInUse
from kouza.identity.models import (
    Device,
    OtpChallenge,
    OtpPurpose,
    PhoneNumber,
    User,
    UserPhone,
    VerificationLevel,
)
from kouza.identity.settings import setting
from kouza.kit.locking import lock_row
from kouza.risk.events import EventType
from kouza.runtime import runtime_of

DEFAULT_REGION = "JP"
_SMS_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def normalize_phone(raw: str, *, region: str = DEFAULT_REGION) -> str:
    """The E.164 form of a mobile number (Japanese unless it starts with +)."""
    if len(raw) > 40:
        raise InvalidPhoneNumber("a phone number is at most 40 characters")
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("not a valid phone number")
    if phonenumbers.number_type(number) not in _SMS_TYPES:
        raise InvalidPhoneNumber("not a mobile number: SMS codes need a mobile phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _users_of(session: Session, e164: str, other_than: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(UserPhone)
            .where(UserPhone.e164 == e164, UserPhone.user_id != other_than)
        )
        or 0
    )


def require_room(session: Session, e164: str, user: User) -> None:
    """Refuse if ``e164`` already backs as many other users as the cap allows."""
    if _users_of(session, e164, user.id) >= setting(session, "phone_max_users_per_number"):
        raise PhoneInUse("this phone number already backs another account")


def start_phone_verification(
    session: Session, user: User, *, phone: str, ip: str = ""
) -> OtpChallenge:
    """Send a code to ``phone`` to verify it; returns the challenge."""
    levels.require_level(user, VerificationLevel.EMAIL, action="verifying a phone number")
    if otp.verified_phone(session, user) is not None:
        raise PhoneAlreadyVerified("this account already has a verified phone number")
    e164 = normalize_phone(phone)
    require_room(session, e164, user)
    return otp.send_code(session, user, e164=e164, purpose=OtpPurpose.PHONE_VERIFICATION, ip=ip)


def lock_number(session: Session, e164: str) -> None:
    """Lock the number's ``phone_numbers`` row (created first if missing)."""
    if session.get(PhoneNumber, e164) is None:
        try:
            with session.begin_nested():
                session.add(PhoneNumber(e164=e164, created_at=runtime_of(session).now()))
        except IntegrityError:
            pass  # another transaction created it first; the lock below waits for it
    lock_row(session, PhoneNumber, e164)


def complete_phone_verification(
    session: Session,
    user: User,
    *,
    challenge_id: uuid.UUID,
    code: str,
    device_jwk: Mapping[str, Any],
    device_name: str,
) -> Device:
    """Check the code, claim the number and register the first device; may reach ``phone``."""
    user = levels.attached(session, user)
    if otp.verified_phone(session, user) is not None:
        raise PhoneAlreadyVerified("this account already has a verified phone number")
    key = devices.parse_device_key(device_jwk)
    challenge = otp.lock_challenge(session, user, challenge_id, OtpPurpose.PHONE_VERIFICATION)
    otp.check_code(session, challenge, code)
    lock_number(session, challenge.e164)
    require_room(session, challenge.e164, user)
    session.add(
        UserPhone(user_id=user.id, e164=challenge.e164, verified_at=runtime_of(session).now())
    )
    session.flush()
    device = devices.add_device(
        session, user, key, device_name, devices.DeviceAddedBy.PHONE_VERIFICATION
    )
    levels.promote(session, user)
    events.record(session, EventType.PHONE_VERIFIED, user, device=device.id, ip=challenge.ip)
    events.record(
        session,
        EventType.DEVICE_ADDED,
        user,
        device=device.id,
        ip=challenge.ip,
        attributes={"first": True, "added_by": devices.DeviceAddedBy.PHONE_VERIFICATION.value},
    )
    return device
