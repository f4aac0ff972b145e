"""Sign-up, e-mail verification, login and bearer tokens.

Codes and tokens never rest in plain text: codes are stored as HMAC under the server secret and
leave through the encrypted outbox; tokens are returned once and stored as HMAC. Login spends the
same argon2 time whether or not the address exists, so response time does not reveal accounts.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kouza.errors import BadRequest, NotFound
from kouza.identity.errors import (
    AlreadyVerified,
    CodeExpired,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
    LevelRequired,
    TooManyAttempts,
    WeakPassword,
)
from kouza.identity.models import (
    LEVEL_ORDER,
    AccessToken,
    EmailVerification,
    User,
    UserStatus,
    VerificationLevel,
)
from kouza.kit import outbox
from kouza.kit.db import add_unique
from kouza.kit.runtime import runtime_of
from kouza.kit.security import (
    constant_time_equal,
    hash_password,
    keyed_hash,
    random_digits,
    random_token,
    verify_password,
)

_DUMMY_HASH = hash_password("kouza-timing-equaliser")
RESEND_INTERVAL = timedelta(seconds=60)


def normalize_email(email: str) -> str:
    """The canonical, lower-cased form of an address; raises BadRequest if it is not one."""
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise BadRequest(f"not a valid e-mail address: {exc}") from None


def check_password_strength(password: str, email: str) -> None:
    if not 10 <= len(password) <= 128:
        raise WeakPassword("passwords are 10 to 128 characters long")
    if password.lower() == email.lower() or len(set(password)) < 4:
        raise WeakPassword("this password is too easy to guess")


class IdentityService:
    """Users, e-mail verification, sessions and verification levels."""

    def signup(self, session: Session, *, email: str, password: str) -> User:
        """Create a user and send an e-mail verification code."""
        address = normalize_email(email)
        check_password_strength(password, address)
        user = User(
            email=address, password_hash=hash_password(password),
            level=VerificationLevel.NONE.value, status=UserStatus.ACTIVE.value,
            created_at=runtime_of(session).now(),
        )
        add_unique(session, user, EmailTaken("an account with this e-mail address exists"))
        self._send_code(session, user)
        return user

    def _send_code(self, session: Session, user: User) -> None:
        runtime = runtime_of(session)
        code = random_digits(6)
        now = runtime.now()
        session.add(
            EmailVerification(
                user_id=user.id, code_hash=keyed_hash(runtime.secret, code, purpose="email-code"),
                attempts=0, created_at=now,
                expires_at=now + timedelta(seconds=runtime.settings.email_code_ttl_seconds),
            )
        )
        outbox.enqueue(
            session, channel="email", recipient=user.email,
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
        return user

    def login(self, session: Session, *, email: str, password: str, ip: str = "") -> str:
        """Check the password and return a new bearer token (shown once)."""
        try:
            address = normalize_email(email)
        except BadRequest:
            raise InvalidCredentials("wrong e-mail address or password") from None
        user = self._user_by_email(session, address)
        if user is None:
            verify_password(_DUMMY_HASH, password)
            raise InvalidCredentials("wrong e-mail address or password")
        if not verify_password(user.password_hash, password):
            raise InvalidCredentials("wrong e-mail address or password")
        if user.status != UserStatus.ACTIVE.value:
            raise InvalidCredentials("this account is disabled")
        runtime = runtime_of(session)
        token = random_token()
        now = runtime.now()
        session.add(
            AccessToken(
                user_id=user.id, token_hash=keyed_hash(runtime.secret, token, purpose="token"),
                created_at=now, ip=ip,
                expires_at=now + timedelta(seconds=runtime.settings.token_ttl_seconds),
            )
        )
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
        if LEVEL_ORDER.index(level) > LEVEL_ORDER.index(VerificationLevel(user.level)):
            user.level = level.value
            session.flush()

    def require_level(self, user: User, level: VerificationLevel, *, action: str) -> None:
        """Refuse ``action`` unless the user has reached ``level``."""
        if LEVEL_ORDER.index(VerificationLevel(user.level)) < LEVEL_ORDER.index(level):
            raise LevelRequired(
                f"{action} needs verification level '{level.value}' (you have '{user.level}')",
                required=level.value, current=user.level,
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


identity = IdentityService()
"""The identity service singleton."""
