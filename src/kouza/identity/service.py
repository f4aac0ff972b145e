"""The identity service: the one entry point other domains call.

Sign-up, e-mail verification, login, password change and bearer tokens are implemented here.
Codes and tokens never rest in plain text: codes are stored as HMAC under the server secret and
leave through the encrypted outbox; tokens are returned once and stored as HMAC. Login spends the
same argon2 time whether or not the address exists, so response time does not reveal accounts;
failures are throttled per address and per IP, and a login from a new network is told to the
customer with a "not me" link (:mod:`~kouza.identity.logins`). Passwords are judged by zxcvbn
(the user's e-mail counts as a guessable word) at sign-up and at every change.

The rest lives in one module per concern and is exposed through :class:`IdentityService`:
:mod:`~kouza.identity.phones` (E.164 numbers, SMS verification), :mod:`~kouza.identity.otp`
(codes and step-up), :mod:`~kouza.identity.devices` (device keys and signed challenges),
:mod:`~kouza.identity.proofing` (eKYC records), :mod:`~kouza.identity.levels` (levels, the
charge gate, re-verification campaigns, demotion), :mod:`~kouza.identity.contacts` (device-signed
phone and e-mail changes), :mod:`~kouza.identity.rechecks` (revocation re-checks of stored JPKI
verifications).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn  # type: ignore[import-untyped]

from kouza.errors import BadRequest, NotFound
from kouza.identity import (
    contacts,
    devices,
    events,
    levels,
    logins,
    otp,
    phones,
    proofing,
    proofs,
    ratelimits,
    rechecks,
)
from kouza.identity.contacts import normalize_email
from kouza.identity.devices import SensitiveAction, SignedChallenge
from kouza.identity.ekyc import ChipRead, EkycMethod
from kouza.identity.errors import (
    AlreadyVerified,
    CodeExpired,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
    TooManyAttempts,
    WeakPassword,
)
from kouza.identity.models import (
    AccessToken,
    ContactChange,
    Device,
    EkycVerification,
    EmailVerification,
    OtpChallenge,
    ReverificationCampaign,
    ReverificationRequirement,
    User,
    UserStatus,
    VerificationLevel,
)
from kouza.kit import outbox
from kouza.kit.db import add_unique
from kouza.kit.security import (
    constant_time_equal,
    hash_password,
    keyed_hash,
    random_digits,
    random_token,
    verify_password,
)
from kouza.risk.events import EventType
from kouza.runtime import runtime_of

_DUMMY_HASH = hash_password("kouza-timing-equaliser")
RESEND_INTERVAL = timedelta(seconds=60)


def check_password_strength(password: str, email: str, *, min_score: int = 3) -> None:
    """Refuse a password shorter than 10 characters or that zxcvbn scores below ``min_score``
    (common passwords, keyboard walks, dates, the e-mail address and its parts)."""
    if not 10 <= len(password) <= 128:
        raise WeakPassword("passwords are 10 to 128 characters long")
    local, _, domain = email.lower().partition("@")
    words = [email.lower(), local, *domain.split("."), *local.replace("_", ".").split(".")]
    # zxcvbn refuses (ValueError) anything over its default 72 characters; 128 is kouza's own
    # bound, so the whole password is judged (its matching is quadratic only up to that).
    judged = zxcvbn(password, user_inputs=[word for word in words if word], max_length=128)
    if judged["score"] < min_score:
        feedback = judged["feedback"]
        hints = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
        advice = " ".join(hint for hint in hints if hint)
        raise WeakPassword(
            "this password is too easy to guess" + (f": {advice}" if advice else ""),
            score=judged["score"],
            min_score=min_score,
        )


class IdentityService:
    """Users, e-mail verification, sessions and verification levels."""

    def signup(self, session: Session, *, email: str, password: str) -> User:
        """Create a user and send an e-mail verification code."""
        address = normalize_email(email)
        check_password_strength(
            password, address, min_score=runtime_of(session).settings.password_min_score
        )
        user = User(
            email=address,
            password_hash=hash_password(password),
            level=VerificationLevel.NONE.value,
            status=UserStatus.ACTIVE.value,
            created_at=runtime_of(session).now(),
        )
        add_unique(session, user, EmailTaken("an account with this e-mail address exists"))
        self._send_code(session, user)
        return user

    def request_signup(self, session: Session, *, email: str, password: str) -> str:
        """Sign up without revealing whether ``email`` is registered: a new address gets a
        verification code, a registered one a warning that someone tried to sign up with it.
        Returns the normalised address; the caller answers both cases alike."""
        try:
            user = self.signup(session, email=email, password=password)
        except EmailTaken:
            self._warn_signup_attempt(session, normalize_email(email))
            return normalize_email(email)
        return user.email

    def _warn_signup_attempt(self, session: Session, address: str) -> None:
        operator = runtime_of(session).settings.operator_name
        outbox.enqueue(
            session,
            channel="email",
            recipient=address,
            subject=f"{operator}: someone tried to sign up with your address",
            body=f"Someone tried to open a {operator} account with this e-mail address, which "
            "already has one. Nothing was changed. If it was you, log in instead (or reset your "
            "password); if not, you can ignore this message.",
        )

    def _send_code(self, session: Session, user: User) -> None:
        runtime = runtime_of(session)
        code = random_digits(6)
        now = runtime.now()
        session.add(
            EmailVerification(
                user_id=user.id,
                code_hash=keyed_hash(runtime.secret, code, purpose="email-code"),
                attempts=0,
                created_at=now,
                expires_at=now + timedelta(seconds=runtime.settings.email_code_ttl_seconds),
            )
        )
        outbox.enqueue(
            session,
            channel="email",
            recipient=user.email,
            subject=f"{runtime.settings.operator_name}: your verification code",
            body=f"Your code is {code}. It expires in "
            f"{runtime.settings.email_code_ttl_seconds // 60} minutes. "
            "If you did not sign up, ignore this message.",
        )

    def resend_code(self, session: Session, *, email: str) -> None:
        """Send a fresh code (at most once a minute); silently does nothing for unknown users."""
        user = self._user_by_email(session, normalize_email(email))
        if user is None or user.email_verified_at is not None:
            return
        latest = self._latest_code(session, user.id)
        now = runtime_of(session).now()
        if latest is not None and now - latest.created_at < RESEND_INTERVAL:
            raise TooManyAttempts("wait a minute before asking for another code")
        if latest is not None and latest.consumed_at is None:
            latest.consumed_at = now  # the old code dies when a new one is sent
        self._send_code(session, user)

    def verify_email(self, session: Session, *, email: str, code: str) -> User:
        """Check the latest code; on success the user reaches the ``email`` level."""
        user = self._user_by_email(session, normalize_email(email))
        if user is None:
            raise InvalidCode("wrong or unknown code")
        if user.email_verified_at is not None:
            raise AlreadyVerified("this e-mail address is already verified")
        runtime = runtime_of(session)
        now = runtime.now()
        latest = self._latest_code(session, user.id, lock=True)
        if latest is None or latest.consumed_at is not None:
            raise InvalidCode("no active code; ask for a new one")
        if latest.expires_at <= now:
            raise CodeExpired("the code has expired; ask for a new one")
        if latest.attempts >= runtime.settings.email_code_max_attempts:
            raise TooManyAttempts("too many wrong codes; ask for a new one")
        expected = keyed_hash(runtime.secret, code.strip(), purpose="email-code")
        if not constant_time_equal(expected, latest.code_hash):
            latest.attempts += 1
            raise InvalidCode("wrong or unknown code", keep_changes=True)
        latest.consumed_at = now
        user.email_verified_at = now
        self.raise_level(session, user, VerificationLevel.EMAIL)
        _record(session, EventType.EMAIL_VERIFIED, user)
        return user

    def login(self, session: Session, *, email: str, password: str, ip: str = "") -> str:
        """Check the password and return a new bearer token (shown once).

        Throttled per address and per IP (429 before the password is checked); a failure is
        counted and committed although the login fails; a new network is told to the user.
        """
        try:
            address = normalize_email(email)
        except BadRequest:
            address = email.strip().lower()[:320]
        limits = logins.limits(session, address=address, ip=ip)
        ratelimits.refuse_if_reached(session, limits)
        user = self._user_by_email(session, address)
        if user is None:
            verify_password(_DUMMY_HASH, password)
        if user is None or not verify_password(user.password_hash, password):
            ratelimits.record(session, limits)
            raise InvalidCredentials("wrong e-mail address or password", keep_changes=True)
        if user.status != UserStatus.ACTIVE.value:
            raise InvalidCredentials("this account is disabled")
        logins.notify_if_new_network(
            session, user, ip=ip, networks=logins.known_networks(session, user)
        )
        runtime = runtime_of(session)
        token = random_token()
        now = runtime.now()
        session.add(
            AccessToken(
                user_id=user.id,
                token_hash=keyed_hash(runtime.secret, token, purpose="token"),
                created_at=now,
                ip=ip,
                expires_at=now + timedelta(seconds=runtime.settings.token_ttl_seconds),
            )
        )
        _record(session, EventType.LOGIN, user, ip=ip)
        return token

    def authenticate(self, session: Session, token: str) -> User:
        """The user a bearer token belongs to; InvalidToken if it is unknown, expired or revoked."""
        runtime = runtime_of(session)
        token_hash = keyed_hash(runtime.secret, token, purpose="token")
        row = session.scalars(
            select(AccessToken).where(AccessToken.token_hash == token_hash)
        ).one_or_none()
        if row is None or row.revoked_at is not None or row.expires_at <= runtime.now():
            raise InvalidToken("missing, expired or revoked token")
        user = session.get(User, row.user_id)
        if user is None or user.status != UserStatus.ACTIVE.value:
            raise InvalidToken("missing, expired or revoked token")
        return user

    def change_password(
        self,
        session: Session,
        user: User,
        *,
        current_password: str,
        new_password: str,
        signed: SignedChallenge | None = None,
        ip: str = "",
    ) -> User:
        """Replace the password: the current one, a strong new one, and — once the user has a
        device key or a verified phone — a device signature or SMS step-up for
        ``password.change``. Other sessions are signed out; the user is told; money out needs a
        proof for the cool-off that follows (ADR 0021)."""
        current = levels.attached(session, user)
        if not verify_password(current.password_hash, current_password):
            raise InvalidCredentials("the current password is wrong")
        runtime = runtime_of(session)
        check_password_strength(
            new_password, current.email, min_score=runtime.settings.password_min_score
        )
        has_factor = (
            bool(devices.active_devices(session, current))
            or otp.verified_phone(session, current) is not None
        )
        if has_factor or signed is not None:
            proofs.prove(
                session,
                current,
                action=SensitiveAction.CHANGE_PASSWORD,
                signed=signed,
                required=True,
            )
        now = runtime.now()
        current.password_hash = hash_password(new_password)
        current.password_changed_at = now
        logins.revoke_sessions(session, current)
        session.flush()
        events.record(
            session,
            EventType.CONTACT_CHANGE,
            current,
            ip=ip,
            attributes={"contact": "password", "change": "replaced"},
        )
        outbox.enqueue(
            session,
            channel="email",
            recipient=current.email,
            subject=f"{runtime.settings.operator_name}: your password was changed",
            body=f"Your password was changed at {now.strftime('%Y-%m-%d %H:%M UTC')} and every "
            "other session was signed out. If you did not do this, call us at once: "
            f"{runtime.settings.operator_fraud_contact}.",
        )
        return current

    def report_not_me(self, session: Session, token: str) -> tuple[User, int]:
        """A "not me" link was used: sign out every session of its user (the caller locks
        the wallets); the user and how many sessions were revoked."""
        user = logins.user_of_not_me_token(session, token)
        revoked = logins.revoke_sessions(session, user)
        events.record(
            session,
            EventType.CONTACT_CHANGE,
            user,
            attributes={"contact": "login", "change": "reported_not_me"},
        )
        return user, revoked

    def logout(self, session: Session, token: str) -> None:
        """Revoke a bearer token."""
        runtime = runtime_of(session)
        session.execute(
            update(AccessToken)
            .where(AccessToken.token_hash == keyed_hash(runtime.secret, token, purpose="token"))
            .values(revoked_at=runtime.now())
        )

    def get_user(self, session: Session, user_id: uuid.UUID) -> User:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    def user_by_email(self, session: Session, email: str) -> User:
        user = self._user_by_email(session, normalize_email(email))
        if user is None:
            raise NotFound("no such user", email=email)
        return user

    def raise_level(self, session: Session, user: User, level: VerificationLevel) -> None:
        """Move the user up to ``level`` (never down)."""
        levels.raise_level(session, user, level)

    def require_level(self, user: User, level: VerificationLevel, *, action: str) -> None:
        """Refuse ``action`` unless the user has reached ``level``."""
        levels.require_level(user, level, action=action)

    # --- phone and one-time passwords ----------------------------------------------------

    def start_phone_verification(
        self, session: Session, user: User, *, phone: str, ip: str = ""
    ) -> OtpChallenge:
        """Send an SMS code to verify ``phone`` (normalised to E.164)."""
        return phones.start_phone_verification(session, user, phone=phone, ip=ip)

    def complete_phone_verification(
        self,
        session: Session,
        user: User,
        *,
        challenge_id: uuid.UUID,
        code: str,
        device_jwk: Mapping[str, Any],
        device_name: str,
    ) -> Device:
        """Confirm the phone with its code and register the first device key."""
        return phones.complete_phone_verification(
            session,
            user,
            challenge_id=challenge_id,
            code=code,
            device_jwk=device_jwk,
            device_name=device_name,
        )

    def start_step_up(
        self, session: Session, user: User, purpose: str, *, ip: str = ""
    ) -> uuid.UUID:
        """Send a step-up code to the user's verified phone; returns the challenge id."""
        return otp.start_step_up(session, user, purpose, ip=ip)

    def complete_step_up(
        self, session: Session, user: User, challenge_id: uuid.UUID, code: str
    ) -> OtpChallenge:
        """Confirm a step-up code; the purpose is then satisfied for a short while."""
        return otp.complete_step_up(session, user, challenge_id, code)

    def step_up_satisfied(
        self, session: Session, user: User, purpose: str, *, within: timedelta | None = None
    ) -> bool:
        """Whether an unspent step-up for ``purpose`` was passed within ``within``."""
        return otp.step_up_satisfied(session, user, purpose, within)

    def spend_step_up(
        self, session: Session, user: User, purpose: str, *, within: timedelta | None = None
    ) -> OtpChallenge:
        """Use up a recent step-up for ``purpose``; StepUpRequired if there is none."""
        return otp.spend_step_up(session, user, purpose, within)

    # --- devices -------------------------------------------------------------------------

    def register_device(
        self,
        session: Session,
        user: User,
        *,
        jwk: Mapping[str, Any],
        name: str,
        ip: str = "",
        approval: SignedChallenge | None = None,
    ) -> Device:
        """Register another device key: approved by an established device's signature, or
        after a step-up for ``device.register``."""
        return devices.register_device(session, user, jwk=jwk, name=name, ip=ip, approval=approval)

    def device_established(self, session: Session, user: User, device_id: uuid.UUID) -> bool:
        """Whether the user's device ``device_id`` is established (ADR 0033): its signature
        answers a risk step-up without an SMS code."""
        device = session.get(Device, device_id)
        if device is None or device.user_id != user.id:
            return False
        return devices.established(session, device)

    def revoke_device(
        self, session: Session, user: User, device_id: uuid.UUID, *, ip: str = ""
    ) -> Device:
        """Revoke a device key (needs a step-up for ``device.revoke``); may lower the level."""
        return devices.revoke_device(session, user, device_id, ip=ip)

    def devices_of(self, session: Session, user: User) -> Sequence[Device]:
        """The user's active devices."""
        return devices.active_devices(session, user)

    def issue_device_challenge(
        self, session: Session, user: User, device_id: uuid.UUID, action: str
    ) -> str:
        """A single-use nonce for the device to sign for ``action``."""
        return devices.issue_device_challenge(session, user, device_id, action)

    def verify_device_signature(
        self,
        session: Session,
        user: User,
        device_id: uuid.UUID,
        action: str,
        nonce: str,
        signature: str,
    ) -> Device:
        """Check a device's JWS over a challenge; returns the device (for events)."""
        return devices.verify_device_signature(
            session, user, device_id=device_id, action=action, nonce=nonce, signature=signature
        )

    # --- contact changes ------------------------------------------------------------------

    def start_phone_change(
        self,
        session: Session,
        user: User,
        *,
        phone: str,
        device_id: uuid.UUID,
        nonce: str,
        signature: str,
        ip: str = "",
    ) -> ContactChange:
        """Device-signed request to change the phone; a code goes to the new number."""
        return contacts.start_phone_change(
            session, user, phone=phone, device_id=device_id, nonce=nonce, signature=signature, ip=ip
        )

    def confirm_phone_change(
        self, session: Session, user: User, change_id: uuid.UUID, code: str, *, ip: str = ""
    ) -> ContactChange:
        """Confirm the new number's code; the old number is told."""
        return contacts.confirm_phone_change(session, user, change_id, code, ip=ip)

    def start_email_change(
        self,
        session: Session,
        user: User,
        *,
        email: str,
        device_id: uuid.UUID,
        nonce: str,
        signature: str,
        ip: str = "",
    ) -> ContactChange:
        """Device-signed request to change the e-mail; a code goes to the new address."""
        return contacts.start_email_change(
            session, user, email=email, device_id=device_id, nonce=nonce, signature=signature, ip=ip
        )

    def confirm_email_change(
        self, session: Session, user: User, change_id: uuid.UUID, code: str, *, ip: str = ""
    ) -> ContactChange:
        """Confirm the new address's code; the old address is told."""
        return contacts.confirm_email_change(session, user, change_id, code, ip=ip)

    def recheck_ekyc(self, session: Session, *, actor: str) -> rechecks.RecheckSummary:
        """Re-check revocation of every JPKI identity in force; demote revoked ones."""
        return rechecks.recheck_jpki(session, actor=actor)

    # --- eKYC ----------------------------------------------------------------------------

    def start_ekyc(self, session: Session, user: User, method: EkycMethod) -> str:
        """A nonce for the card or chip to sign."""
        return proofing.start_ekyc(session, user, method)

    def submit_jpki(
        self,
        session: Session,
        user: User,
        *,
        certificate: bytes,
        signature: bytes,
        nonce: str,
        kana_name: str,
    ) -> EkycVerification:
        """Verify a JPKI signature; record the attempt; promote on success."""
        return proofing.submit_jpki(
            session,
            user,
            certificate=certificate,
            signature=signature,
            nonce=nonce,
            kana_name=kana_name,
        )

    def submit_ic_chip(
        self,
        session: Session,
        user: User,
        *,
        chip: ChipRead,
        selfie: bytes,
        nonce: str,
        kana_name: str,
    ) -> EkycVerification:
        """Verify an IC-chip read and selfie; record the attempt; promote on success."""
        return proofing.submit_ic_chip(
            session, user, chip=chip, selfie=selfie, nonce=nonce, kana_name=kana_name
        )

    # --- charge gate and re-verification -------------------------------------------------

    def may_charge(self, session: Session, user: User) -> bool:
        """Whether the user may charge from or link a bank now."""
        return levels.may_charge(session, user)

    def pending_reverifications(
        self, session: Session, user: User
    ) -> list[ReverificationRequirement]:
        """Re-verification holds the user still has to clear."""
        return list(levels.pending_reverifications(session, user))

    def require_charge_allowed(self, session: Session, user: User) -> None:
        """Refuse unless ``verified`` and no re-verification is pending."""
        levels.require_charge_allowed(session, user)

    def start_reverification(
        self, session: Session, *, name: str, reason: str, started_by: str, cohort: levels.Cohort
    ) -> ReverificationCampaign:
        """Start a re-verification campaign for ``cohort``."""
        return levels.start_campaign(
            session, name=name, reason=reason, started_by=started_by, cohort=cohort
        )

    def _user_by_email(self, session: Session, address: str) -> User | None:
        return session.scalars(select(User).where(User.email == address)).one_or_none()

    def _latest_code(
        self, session: Session, user_id: uuid.UUID, *, lock: bool = False
    ) -> EmailVerification | None:
        """The newest code; with ``lock``, its row is locked so parallel guesses are counted
        one after another (an unlocked read-modify-write would let them bypass the limit)."""
        statement = (
            select(EmailVerification)
            .where(EmailVerification.user_id == user_id)
            .order_by(EmailVerification.id.desc())
            .limit(1)
        )
        if lock:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return session.scalars(statement).first()


def _record(session: Session, kind: EventType, user: User, *, ip: str = "") -> None:
    """Feed the risk engine's history (features such as logins per IP); nothing is enforced
    here — the actions that move money or link banks judge their own events."""
    events.record(session, kind, user, ip=ip)


identity = IdentityService()
"""The identity service singleton."""
