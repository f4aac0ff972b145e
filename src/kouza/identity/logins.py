"""What a login does besides checking the password: throttling, telling the customer, "not me".

**Throttling (credential stuffing).** Failed logins are counted per e-mail address (whether or
not an account has it, so a 429 reveals nothing) and per source IP address (across all
accounts), in sliding windows (:mod:`kouza.identity.ratelimits`). Once either reaches its limit,
logins for that address or from that IP answer 429 with ``Retry-After`` before the password is
even checked. Only failures count; the failure rows are committed although the login fails.

**Telling the customer.** A login from a network (/24, /48 for IPv6) this user has not logged in
from before is told on their verified contacts: an e-mail and, when a phone is verified, an SMS.
At login no device has proven its key yet, so a login is always from an unproven device; the
notice goes out on a new network, and the money-out proof (:mod:`kouza.identity.proofs`)
stops an unproven device from moving money. The first login of an account has nothing to
compare with and is not announced.

**"Not me".** The notice carries a link with a signed, expiring token naming the user (an HMAC
under the server secret, nothing stored). Presenting it revokes every session of the user; the
endpoint also locks the user's wallets for the fraud team. The token grants nothing else, and
no message carries a password, code or bearer token.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kouza.identity import otp, ratelimits
from kouza.identity.errors import InvalidNotMeToken
from kouza.identity.models import AccessToken, User
from kouza.identity.settings import setting
from kouza.kit import outbox
from kouza.kit.security import constant_time_equal, keyed_hash
from kouza.risk.events import ip_prefix
from kouza.runtime import runtime_of

NOT_ME_PURPOSE = "not-me"


def limits(session: Session, *, address: str, ip: str) -> list[ratelimits.Limit]:
    """The failure limits a login from ``ip`` for ``address`` is counted against."""
    window = timedelta(seconds=setting(session, "login_failure_window_seconds"))
    chosen = [
        ratelimits.Limit("account", address, setting(session, "login_failures_per_account"), window)
    ]
    if ip:
        chosen.append(
            ratelimits.Limit("IP address", ip, setting(session, "login_failures_per_ip"), window)
        )
    return chosen


def known_networks(session: Session, user: User) -> set[str]:
    """The networks of this user's earlier logins."""
    ips = session.scalars(select(AccessToken.ip).where(AccessToken.user_id == user.id)).all()
    return {ip_prefix(ip) for ip in ips if ip}


def notify_if_new_network(session: Session, user: User, *, ip: str, networks: set[str]) -> bool:
    """Tell the user of a login from a network not in ``networks``; whether a notice went."""
    if not networks or not ip or ip_prefix(ip) in networks:
        return False
    runtime = runtime_of(session)
    name = runtime.settings.operator_name
    when = runtime.now().strftime("%Y-%m-%d %H:%M UTC")
    token = not_me_token(session, user)
    outbox.enqueue(
        session,
        channel="email",
        recipient=user.email,
        subject=f"{name}: new sign-in to your account",
        body=f"Someone signed in to your {name} account at {when} from network "
        f"{ip_prefix(ip)}, where you have not signed in before.\n\n"
        "If this was you, there is nothing to do.\n\n"
        "If it was not you: send this link's token to POST /v1/auth/not-me (the app's "
        f'"not me" button does it) — token {token} — to sign out every session and stop '
        "money leaving your wallet, then change your password. We will never ask you for "
        "your password or a code.",
    )
    phone = otp.verified_phone(session, user)
    if phone is not None:
        outbox.enqueue(
            session,
            channel="sms",
            recipient=phone.e164,
            subject="",
            body=f"{name}: new sign-in to your account from {ip_prefix(ip)} at {when}. "
            'Not you? Open the e-mail we sent and press "not me".',
        )
    return True


def not_me_token(session: Session, user: User) -> str:
    """A signed, expiring token that lets its holder report a login as "not me"."""
    runtime = runtime_of(session)
    expires = int(
        (runtime.now() + timedelta(seconds=runtime.settings.not_me_link_ttl_seconds)).timestamp()
    )
    body = f"{user.id}.{expires}"
    return f"{body}.{keyed_hash(runtime.secret, body, purpose=NOT_ME_PURPOSE)}"


def user_of_not_me_token(session: Session, token: str) -> User:
    """The user a valid, unexpired "not me" token names; InvalidNotMeToken otherwise."""
    runtime = runtime_of(session)
    refused = InvalidNotMeToken("this link is not valid or has expired; call us instead")
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise refused
    body = f"{parts[0]}.{parts[1]}"
    if not constant_time_equal(keyed_hash(runtime.secret, body, purpose=NOT_ME_PURPOSE), parts[2]):
        raise refused
    if datetime.fromtimestamp(int(parts[1]), tz=UTC) <= runtime.now():
        raise refused
    try:
        user = session.get(User, uuid.UUID(parts[0]))
    except ValueError:
        raise refused from None
    if user is None:
        raise refused
    return user


def revoke_sessions(session: Session, user: User) -> int:
    """Revoke every live bearer token of the user; how many were revoked."""
    now = runtime_of(session).now()
    result = session.execute(
        update(AccessToken)
        .where(AccessToken.user_id == user.id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
