"""Console sign-in: a password and a TOTP code per operator, server-side sessions (ADR 0038).

**Credentials.** ``kouza operators create NAME --console`` (or ``set-console``) sets a password
(argon2id, :mod:`kouza.kit.security`) and a new TOTP seed, shown once as a provisioning URI. The
seed is stored Fernet-encrypted under a key derived from the server secret for this purpose
alone; a database dump yields neither. A code is accepted once: the credential keeps the TOTP
step of the last code accepted, and its row is locked while a sign-in checks it.

**Throttling.** Failed sign-ins are counted per operator name (known or not, so a refusal
reveals nothing) and per source address, in the sliding windows of
:mod:`kouza.identity.ratelimits`; past the limit the sign-in is refused with 429 before the
password is checked. Failures are committed although the sign-in fails.

**Sessions.** A sign-in creates a random session id (the cookie) whose keyed hash is the row's
key. A session ends after ``KOUZA_CONSOLE_SESSION_IDLE_MINUTES`` without a request or
``KOUZA_CONSOLE_SESSION_HOURS`` after sign-in,
whichever comes first; signing out deletes it. Disabling an operator ends their sessions at
their next request.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from cryptography.fernet import Fernet
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kouza.config import Settings
from kouza.console.errors import (
    ConsoleSessionExpired,
    InvalidSignIn,
    SignInThrottled,
    WeakConsolePassword,
)
from kouza.console.models import ConsoleCredential, ConsoleSession
from kouza.controls.errors import InvalidOperatorToken
from kouza.controls.models import Operator
from kouza.controls.service import controls
from kouza.identity import ratelimits
from kouza.identity.errors import RateLimited
from kouza.kit.locking import lock_row
from kouza.kit.security import (
    constant_time_equal,
    hash_password,
    keyed_hash,
    random_token,
    verify_password,
)
from kouza.runtime import runtime_of

FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
TOTP_ISSUER = "kouza console"
_SEEN_EVERY = timedelta(seconds=30)


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown names (timing equal to a known one); made on first
    use, not at import: every ``kouza`` command imports this module."""
    return hash_password("not a real password: keeps timing equal for unknown names")


def _fernet(secret: bytes) -> Fernet:
    key = hashlib.sha256(b"kouza-console-totp\x00" + secret).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def idle_limit(settings: Settings) -> timedelta:
    """How long an unused console session lives."""
    return timedelta(minutes=settings.console_session_idle_minutes)


def session_limit(settings: Settings) -> timedelta:
    """How long a console session lives at most."""
    return timedelta(hours=settings.console_session_hours)


def actor_of(operator: Operator) -> str:
    """How console actions name their operator in the audit trail."""
    return f"console:{operator.name}"


@dataclass(frozen=True)
class SignedIn:
    """What a request learns from its session cookie."""

    operator: Operator
    session_id: str
    """The cookie's value (the CSRF token is an HMAC of it)."""


class ConsoleAuth:
    """Console credentials, sign-in and sessions."""

    def set_credential(
        self, session: Session, *, operator_name: str, password: str, actor: str
    ) -> str:
        """Give an operator a console password and a new TOTP seed; returns the seed (once)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise WeakConsolePassword(
                f"a console password has at least {MIN_PASSWORD_LENGTH} characters"
            )
        operator = self._operator(session, operator_name)
        if operator is None:
            raise InvalidOperatorToken(f"no operator named {operator_name!r}")
        runtime = runtime_of(session)
        seed = pyotp.random_base32()
        credential = session.get(ConsoleCredential, operator.id)
        if credential is None:
            credential = ConsoleCredential(operator_id=operator.id)
            session.add(credential)
        credential.password_hash = hash_password(password)
        credential.totp_seed_encrypted = _fernet(runtime.secret).encrypt(seed.encode()).decode()
        credential.last_totp_step = 0
        credential.set_at = runtime.now()
        session.execute(delete(ConsoleSession).where(ConsoleSession.operator_id == operator.id))
        controls.audit(
            session,
            actor=actor,
            action="console.credential",
            subject=operator.name,
            reason="console password and TOTP set",
        )
        session.flush()
        return seed

    def provisioning_uri(self, operator_name: str, seed: str) -> str:
        """The ``otpauth://`` URI an authenticator app reads (as a QR code or pasted)."""
        return pyotp.TOTP(seed).provisioning_uri(name=operator_name, issuer_name=TOTP_ISSUER)

    def sign_in(
        self, session: Session, *, name: str, password: str, code: str, ip: str = ""
    ) -> SignedIn:
        """Check password and TOTP code and open a session; throttled, failures committed."""
        limits = self._limits(session, name, ip)
        try:
            ratelimits.refuse_if_reached(session, limits)
        except RateLimited as refused:
            raise SignInThrottled(
                refused.message, retry_after=refused.details.get("retry_after", 60)
            ) from None
        operator = self._operator(session, name)
        credential = (
            lock_row(session, ConsoleCredential, operator.id) if operator is not None else None
        )
        if credential is None:
            verify_password(_dummy_hash(), password)
        step = self._accepted_step(session, credential, password, code)
        if operator is None or credential is None or step is None or operator.disabled_at:
            ratelimits.record(session, limits)
            raise InvalidSignIn("wrong name, password or code", keep_changes=True)
        credential.last_totp_step = step
        return self._open(session, operator, ip)

    def current(self, session: Session, session_id: str) -> SignedIn:
        """The signed-in operator of a cookie; :class:`ConsoleSessionExpired` if none."""
        runtime = runtime_of(session)
        now = runtime.now()
        row = session.get(ConsoleSession, self._hash(session, session_id)) if session_id else None
        if row is None:
            raise ConsoleSessionExpired("please sign in")
        operator = session.get(Operator, row.operator_id)
        if (
            operator is None
            or operator.disabled_at is not None
            or row.expires_at <= now
            or row.last_seen_at + idle_limit(runtime.settings) <= now
        ):
            session.delete(row)
            raise ConsoleSessionExpired(
                "your session has ended; please sign in again", keep_changes=True
            )
        if now - row.last_seen_at >= _SEEN_EVERY:
            row.last_seen_at = now
        return SignedIn(operator, session_id)

    def sign_out(self, session: Session, signed_in: SignedIn) -> None:
        """End a session (its row is deleted); audited."""
        session.execute(
            delete(ConsoleSession).where(
                ConsoleSession.id_hash == self._hash(session, signed_in.session_id)
            )
        )
        controls.audit(
            session,
            actor=actor_of(signed_in.operator),
            action="console.sign_out",
            subject=signed_in.operator.name,
            reason="signed out",
        )

    def has_credential(self, session: Session, operator_id: uuid.UUID) -> bool:
        return session.get(ConsoleCredential, operator_id) is not None

    def _open(self, session: Session, operator: Operator, ip: str) -> SignedIn:
        now = runtime_of(session).now()
        session_id = random_token()
        session.add(
            ConsoleSession(
                id_hash=self._hash(session, session_id),
                operator_id=operator.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + session_limit(runtime_of(session).settings),
                ip=ip[:64],
            )
        )
        controls.audit(
            session,
            actor=actor_of(operator),
            action="console.sign_in",
            subject=operator.name,
            reason="signed in with password and TOTP",
            details={"ip": ip},
        )
        session.flush()
        return SignedIn(operator, session_id)

    def _accepted_step(
        self,
        session: Session,
        credential: ConsoleCredential | None,
        password: str,
        code: str,
    ) -> int | None:
        """The TOTP step ``code`` matches (±1 step, never one already used), if the password
        is right too."""
        if credential is None or not verify_password(credential.password_hash, password):
            return None
        runtime = runtime_of(session)
        seed = _fernet(runtime.secret).decrypt(credential.totp_seed_encrypted.encode()).decode()
        totp = pyotp.TOTP(seed)
        now_step = int(runtime.now().timestamp()) // totp.interval
        cleaned = code.strip().replace(" ", "")
        for step in (now_step, now_step - 1, now_step + 1):
            if step > credential.last_totp_step and _same(totp, step, cleaned):
                return step
        return None

    def _limits(self, session: Session, name: str, ip: str) -> list[ratelimits.Limit]:
        settings = runtime_of(session).settings
        chosen = [
            ratelimits.Limit(
                "console operator",
                name.strip().lower(),
                settings.console_signin_failures_per_operator,
                FAILURE_WINDOW,
            )
        ]
        if ip:
            chosen.append(
                ratelimits.Limit(
                    "console address",
                    ip,
                    settings.console_signin_failures_per_address,
                    FAILURE_WINDOW,
                )
            )
        return chosen

    def _operator(self, session: Session, name: str) -> Operator | None:
        return session.scalars(select(Operator).where(Operator.name == name.strip())).one_or_none()

    def _hash(self, session: Session, session_id: str) -> str:
        return keyed_hash(runtime_of(session).secret, session_id, purpose="console-session")


def _same(totp: pyotp.TOTP, step: int, code: str) -> bool:
    expected = totp.generate_otp(step)
    return len(code) == len(expected) and constant_time_equal(expected, code)


console_auth = ConsoleAuth()
"""The console sign-in service singleton."""
