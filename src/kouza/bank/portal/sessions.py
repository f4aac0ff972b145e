"""Holder portal sessions, kept by the bank.

Sign-in is internet banking's: branch + account number + password, then a TOTP code, checked
and counted by :data:`kouza.bank.oauth.interaction.interactions` exactly as on the OAuth pages
(the same failure count and lock, each code used once). The browser holds a random cookie; the
bank stores its HMAC only. Passing the one-time password issues a new cookie (no session
fixation). A session ends on sign-out, after :data:`IDLE` without a request, :data:`LIFETIME`
after sign-in, or as soon as the customer's internet-banking login is locked (a "not me" on a
security notice locks it).

Before sign-in a form is protected by a pre-session cookie (random, never stored): its CSRF
token is the kit's HMAC of the cookie, so a page of another site can neither read nor forge it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.bank.models import Bank, Customer, InternetBankingLogin, PortalSession, PortalStage
from kouza.bank.oauth.interaction import interactions
from kouza.bank.runtime import bank_runtime_of
from kouza.kit.pages import csrf_token, csrf_valid
from kouza.kit.security import keyed_hash, random_token

IDLE = timedelta(minutes=10)
"""A signed-in session ends after this long without a request."""
LIFETIME = timedelta(hours=1)
"""…and this long after sign-in, whatever the activity."""
SIGN_IN_WINDOW = timedelta(minutes=5)
"""Time to type the one-time password after the password."""


@dataclass(frozen=True)
class Opened:
    """A session and the cookie value to hand to the browser (never stored)."""

    portal: PortalSession
    token: str


def _digest(session: Session, token: str) -> str:
    return keyed_hash(bank_runtime_of(session).secret, token, purpose="portal-session")


def session_csrf(session: Session, token: str) -> str:
    """The CSRF token of the portal session whose cookie is ``token``."""
    return csrf_token(bank_runtime_of(session).secret, "portal:" + token)


def pre_session_csrf(secret: bytes, pre_token: str) -> str:
    """The CSRF token of a pre-session cookie (sign-in and notice forms)."""
    return csrf_token(secret, "portal-pre:" + pre_token)


def pre_session_csrf_valid(secret: bytes, pre_token: str | None, token: str | None) -> bool:
    """Whether ``token`` belongs to the pre-session cookie ``pre_token``."""
    return bool(pre_token) and csrf_valid(secret, "portal-pre:" + (pre_token or ""), token)


class PortalSessions:
    """Sign-in, the current session, sign-out."""

    def start(
        self,
        session: Session,
        bank: Bank,
        *,
        branch_code: str,
        account_number: str,
        password: str,
    ) -> Opened:
        """Remember who is signing in and whether the password matched; always ask for the
        one-time password next (nothing tells which part was wrong)."""
        customer, matched = interactions.check_password(
            session, bank, branch_code=branch_code, account_number=account_number, password=password
        )
        if customer is not None and customer.bank_id != bank.id:
            customer, matched = None, False
        now = bank_runtime_of(session).now()
        token = random_token()
        portal = PortalSession(
            bank_id=bank.id,
            session_hash=_digest(session, token),
            stage=PortalStage.OTP.value,
            customer_id=customer.id if customer else None,
            password_matched=matched,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SIGN_IN_WINDOW,
        )
        session.add(portal)
        session.flush()
        return Opened(portal, token)

    def complete(self, session: Session, bank: Bank, token: str | None, code: str) -> Opened | None:
        """The one-time password: a signed-in session under a new cookie, or None (the session
        is spent; the holder starts again from the password)."""
        portal = self._find(session, bank, token, PortalStage.OTP)
        if portal is None:
            return None
        customer = session.get(Customer, portal.customer_id) if portal.customer_id else None
        now = bank_runtime_of(session).now()
        if customer is None or not interactions.second_factor(
            session, customer, password_matched=portal.password_matched, code=code
        ):
            portal.stage, portal.ended_at = PortalStage.ENDED.value, now
            return None
        fresh = random_token()
        portal.session_hash = _digest(session, fresh)
        portal.stage = PortalStage.ACTIVE.value
        portal.last_seen_at = now
        portal.expires_at = now + LIFETIME
        return Opened(portal, fresh)

    def current(self, session: Session, bank: Bank, token: str | None) -> PortalSession | None:
        """The signed-in session behind ``token`` (its idle clock restarts), or None."""
        portal = self._find(session, bank, token, PortalStage.ACTIVE)
        if portal is None:
            return None
        now = bank_runtime_of(session).now()
        if portal.last_seen_at + IDLE <= now or self._login_locked(session, portal):
            self.end(session, portal)
            return None
        portal.last_seen_at = now
        return portal

    def end(self, session: Session, portal: PortalSession) -> None:
        """Sign out: the cookie is worthless from now on."""
        portal.stage = PortalStage.ENDED.value
        portal.ended_at = bank_runtime_of(session).now()

    def _find(
        self, session: Session, bank: Bank, token: str | None, stage: PortalStage
    ) -> PortalSession | None:
        if not token:
            return None
        portal = session.scalars(
            select(PortalSession).where(
                PortalSession.session_hash == _digest(session, token),
                PortalSession.bank_id == bank.id,
            )
        ).one_or_none()
        if portal is None or portal.stage != stage.value:
            return None
        if portal.expires_at <= bank_runtime_of(session).now():
            self.end(session, portal)
            return None
        return portal

    def _login_locked(self, session: Session, portal: PortalSession) -> bool:
        login = session.get(InternetBankingLogin, portal.customer_id)
        return login is not None and login.locked_at is not None


portal_sessions = PortalSessions()
"""The portal session service singleton."""
