"""One-time passwords by SMS: phone verification codes and step-up challenges.

A challenge is a row holding the keyed hash of a six-digit code, the number it went to, an
expiry (5 minutes), an attempt counter (5 wrong tries) and, once the right code is entered,
``satisfied``. The code leaves only through the encrypted outbox on the ``sms`` channel.

Checking a code locks the challenge row first (``SELECT … FOR UPDATE``, populate-existing), so
parallel guesses are counted one after another; a wrong guess is refused with
``keep_changes=True`` so the unit of work commits the counter although the request fails.

Step-up: any part of kouza may demand a fresh proof that the user holds their verified phone
before an action (``purpose``, e.g. ``device.register``). :func:`start_step_up` sends a code,
:func:`complete_step_up` marks the challenge satisfied, :func:`step_up_satisfied` answers
whether a satisfied, unspent challenge for that purpose is recent enough, and
:func:`spend_step_up` uses one up for a single action.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kouza.identity import ratelimits
from kouza.identity.errors import (
    CodeExpired,
    InvalidCode,
    InvalidPurpose,
    PhoneRequired,
    StepUpRequired,
    TooManyAttempts,
    UnknownChallenge,
)
from kouza.identity.models import OtpChallenge, OtpPurpose, User, UserPhone
from kouza.identity.settings import seconds, setting
from kouza.kit import outbox
from kouza.kit.security import constant_time_equal, keyed_hash, random_digits
from kouza.runtime import runtime_of

CODE_PURPOSE = "sms-code"
HOUR = timedelta(hours=1)
_PURPOSE_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


_WHAT = {
    OtpPurpose.PHONE_VERIFICATION: "to verify this phone number",
    OtpPurpose.PHONE_CHANGE: "to make this the phone number of your account",
}


def _code_hash(session: Session, challenge_id: uuid.UUID, code: str) -> str:
    # bound to the challenge id: the same code in two challenges has two different hashes
    secret = runtime_of(session).secret
    return keyed_hash(secret, f"{challenge_id}\x00{code}", purpose=CODE_PURPOSE)


def send_limits(session: Session, user: User, *, e164: str, ip: str) -> list[ratelimits.Limit]:
    """The per-number, per-IP and per-user limits on sending codes."""
    limits = [
        ratelimits.Limit(
            "phone number", e164, setting(session, "sms_limit_per_phone_per_hour"), HOUR
        ),
        ratelimits.Limit(
            "user", str(user.id), setting(session, "sms_limit_per_user_per_hour"), HOUR
        ),
    ]
    if ip:
        limits.append(
            ratelimits.Limit("IP address", ip, setting(session, "sms_limit_per_ip_per_hour"), HOUR)
        )
    return limits


def _latest(
    session: Session, user: User, purpose: OtpPurpose, step_up_for: str
) -> OtpChallenge | None:
    return session.scalars(
        select(OtpChallenge)
        .where(
            OtpChallenge.user_id == user.id,
            OtpChallenge.purpose == purpose.value,
            OtpChallenge.step_up_for == step_up_for,
        )
        .order_by(OtpChallenge.created_at.desc(), OtpChallenge.id)
        .limit(1)
    ).first()


def _throttle_resend(session: Session, user: User, purpose: OtpPurpose, step_up_for: str) -> None:
    latest = _latest(session, user, purpose, step_up_for)
    now = runtime_of(session).now()
    interval = seconds(session, "sms_resend_interval_seconds")
    if latest is not None and now - latest.created_at < interval:
        wait = int((latest.created_at + interval - now).total_seconds()) or 1
        raise TooManyAttempts(
            f"wait {wait} seconds before asking for another code", retry_after=wait
        )
    if latest is not None and latest.consumed_at is None:
        latest.consumed_at = now  # the previous code dies when a new one is sent


def send_code(
    session: Session,
    user: User,
    *,
    e164: str,
    purpose: OtpPurpose,
    step_up_for: str = "",
    ip: str = "",
    extra_limits: Sequence[ratelimits.Limit] = (),
) -> OtpChallenge:
    """Rate-limit, throttle, store the challenge and queue the SMS; returns the challenge."""
    # The limits lock the user's key row first, so the resend throttle below reads the latest
    # committed challenge: two parallel sends for one user cannot both pass it.
    limits = [*send_limits(session, user, e164=e164, ip=ip), *extra_limits]
    ratelimits.check(session, limits)
    _throttle_resend(session, user, purpose, step_up_for)
    runtime = runtime_of(session)
    now = runtime.now()
    code = random_digits(6)
    challenge = OtpChallenge(
        id=uuid.uuid4(),
        user_id=user.id,
        purpose=purpose.value,
        step_up_for=step_up_for,
        e164=e164,
        attempts=0,
        created_at=now,
        satisfied=False,
        ip=ip,
        expires_at=now + seconds(session, "sms_code_ttl_seconds"),
    )
    challenge.code_hash = _code_hash(session, challenge.id, code)
    session.add(challenge)
    session.flush()
    what = _WHAT.get(purpose, f"to confirm '{step_up_for}'")
    outbox.enqueue(
        session,
        channel="sms",
        recipient=e164,
        subject="",
        body=f"{runtime.settings.operator_name}: {code} is your code {what}. It expires in "
        f"{setting(session, 'sms_code_ttl_seconds') // 60} minutes. Never tell it to anyone.",
    )
    return challenge


def lock_challenge(
    session: Session, user: User, challenge_id: uuid.UUID, purpose: OtpPurpose
) -> OtpChallenge:
    """The user's challenge, row-locked; UnknownChallenge for anyone else's or another kind."""
    challenge = session.scalars(
        select(OtpChallenge)
        .where(OtpChallenge.id == challenge_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if challenge is None or challenge.user_id != user.id or challenge.purpose != purpose.value:
        raise UnknownChallenge("no such code request", challenge_id=str(challenge_id))
    return challenge


def check_code(session: Session, challenge: OtpChallenge, code: str) -> None:
    """Accept the right code once; count wrong ones (committed even though refused)."""
    now = runtime_of(session).now()
    maximum = setting(session, "sms_code_max_attempts")
    if challenge.consumed_at is not None:
        raise InvalidCode("this code was already used or replaced; ask for a new one")
    if challenge.expires_at <= now:
        raise CodeExpired("the code has expired; ask for a new one")
    if challenge.attempts >= maximum:
        raise TooManyAttempts("too many wrong codes; ask for a new one")
    if not constant_time_equal(
        _code_hash(session, challenge.id, code.strip()), challenge.code_hash
    ):
        challenge.attempts += 1
        raise InvalidCode(
            "wrong code", keep_changes=True, attempts_left=maximum - challenge.attempts
        )
    challenge.consumed_at = now
    challenge.satisfied = True


def verified_phone(session: Session, user: User) -> UserPhone | None:
    """The user's verified phone number, if any."""
    return session.get(UserPhone, user.id)


def require_purpose(purpose: str) -> str:
    """``purpose`` if it is a short lower-case action name (``device.register``)."""
    if not _PURPOSE_PATTERN.fullmatch(purpose):
        raise InvalidPurpose(
            "a step-up purpose is 1-64 characters of a-z, 0-9, '.', '_', '-'", purpose=purpose[:80]
        )
    return purpose


def start_step_up(session: Session, user: User, purpose: str, *, ip: str = "") -> uuid.UUID:
    """Send a step-up code to the user's verified phone; returns the challenge id."""
    require_purpose(purpose)
    phone = verified_phone(session, user)
    if phone is None:
        raise PhoneRequired("a step-up needs a verified phone number")
    challenge = send_code(
        session, user, e164=phone.e164, purpose=OtpPurpose.STEP_UP, step_up_for=purpose, ip=ip
    )
    return challenge.id


def complete_step_up(
    session: Session, user: User, challenge_id: uuid.UUID, code: str
) -> OtpChallenge:
    """Check the step-up code; the challenge is then satisfied for its purpose."""
    challenge = lock_challenge(session, user, challenge_id, OtpPurpose.STEP_UP)
    check_code(session, challenge, code)
    session.flush()
    return challenge


def _satisfied_query(
    session: Session, user: User, purpose: str, within: timedelta
) -> Select[OtpChallenge]:
    since = runtime_of(session).now() - within
    return (
        select(OtpChallenge)
        .where(
            OtpChallenge.user_id == user.id,
            OtpChallenge.purpose == OtpPurpose.STEP_UP.value,
            OtpChallenge.step_up_for == purpose,
            OtpChallenge.satisfied.is_(True),
            OtpChallenge.spent_at.is_(None),
            OtpChallenge.consumed_at > since,
        )
        .order_by(OtpChallenge.consumed_at.desc())
        .limit(1)
    )


def step_up_satisfied(
    session: Session, user: User, purpose: str, within: timedelta | None = None
) -> bool:
    """Whether the user passed an unspent step-up for ``purpose`` within ``within``."""
    window = within or seconds(session, "step_up_validity_seconds")
    return session.scalars(_satisfied_query(session, user, purpose, window)).first() is not None


def spend_step_up(
    session: Session, user: User, purpose: str, within: timedelta | None = None
) -> OtpChallenge:
    """Use up a recent satisfied step-up for ``purpose``; StepUpRequired if there is none."""
    window = within or seconds(session, "step_up_validity_seconds")
    query = _satisfied_query(session, user, purpose, window).with_for_update()
    challenge = session.scalars(query.execution_options(populate_existing=True)).first()
    if challenge is None:
        raise StepUpRequired(
            f"'{purpose}' needs a step-up: ask for a code (POST /v1/step-up) and confirm it",
            purpose=purpose,
        )
    challenge.spent_at = runtime_of(session).now()
    session.flush()
    return challenge
