"""The bank → wallet webhook receiver: verify, refuse replays, apply the link's new status.

The token is verified by the bank package's pure verifier
(:func:`kouza.protocol.webhooks.verify_event` — no database, no bank runtime) against the
bank's JWKS, fetched through the :class:`~kouza.linking.client.BankClient` and cached on
the runtime for ``bank_jwks_ttl_seconds``; a token that fails with a cached key set is tried once
more after a refetch, so a key rotation at the bank costs one extra request. Replays are refused
twice over: the verifier's in-memory cache (fast, per process) and a row per event id in
``bank_webhook_events`` (durable, across processes). ``link.revoked`` and ``link.suspended``
take effect for the very next request: top-ups read the link's status under the wallet's lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.kit.db import add_unique
from kouza.linking import policy
from kouza.linking.client import bank_client_of
from kouza.linking.models import BankLink, BankLinkStatus, BankWebhookEvent
from kouza.protocol.webhooks import (
    LINK_RESUMED,
    LINK_REVOKED,
    LINK_SUSPENDED,
    BankEvent,
    MemoryReplayCache,
    WebhookRejected,
    verify_event,
)
from kouza.risk.events import EventType, RiskEvent
from kouza.runtime import Runtime, runtime_of

_TRANSITIONS = {
    LINK_REVOKED: ({BankLinkStatus.ACTIVE, BankLinkStatus.SUSPENDED}, BankLinkStatus.REVOKED),
    LINK_SUSPENDED: ({BankLinkStatus.ACTIVE}, BankLinkStatus.SUSPENDED),
    LINK_RESUMED: ({BankLinkStatus.SUSPENDED}, BankLinkStatus.ACTIVE),
}


@dataclass
class CachedKeys:
    """The bank's JWKS and when it was fetched."""

    keys: dict[str, Any]
    fetched_at: datetime


class WebhookPort(Protocol):
    """What the receiver keeps on the runtime (``kouza.assembly.KouzaRuntime``)."""

    bank_jwks: CachedKeys | None
    """The bank's signing keys, fetched on first use and again after their TTL."""
    webhook_replays: MemoryReplayCache
    """Event ids already accepted (a replayed event is refused)."""


def _keys(runtime: Runtime, *, refresh: bool) -> dict[str, Any]:
    port = cast(WebhookPort, runtime)
    cached = port.bank_jwks
    ttl = timedelta(seconds=runtime.settings.bank_jwks_ttl_seconds)
    now = runtime.now()
    if refresh or cached is None or now - cached.fetched_at >= ttl:
        cached = port.bank_jwks = CachedKeys(bank_client_of(runtime).jwks(), now)
    return cached.keys


def _replay_cache(runtime: Runtime) -> MemoryReplayCache:
    return cast(WebhookPort, runtime).webhook_replays


def verified_event(runtime: Runtime, token: str) -> BankEvent:
    """The verified bank event in ``token``; WebhookRejected otherwise."""
    settings = runtime.settings
    options: dict[str, Any] = {
        "now": runtime.now(),
        "replay_cache": _replay_cache(runtime),
        "audience": settings.bank_client_id,
        "issuer": settings.bank_issuer,
        "max_age": timedelta(seconds=settings.bank_webhook_max_age_seconds),
    }
    try:
        return verify_event(token, _keys(runtime, refresh=False), **options)
    except WebhookRejected:
        fresh = _keys(runtime, refresh=True)
        return verify_event(token, fresh, **options)


def receive(session: Session, token: str) -> BankLink | None:
    """Apply a signed bank event; returns the wallet's link it changed (None if not ours)."""
    runtime = runtime_of(session)
    event = verified_event(runtime, token)
    add_unique(
        session,
        BankWebhookEvent(
            jti=event.jti[:64],
            type=event.type[:32],
            bank_link_id=event.link_id[:64],
            received_at=runtime.now(),
        ),
        WebhookRejected("webhook replayed (event id already seen)", event_id=event.jti),
    )
    link = _link(session, event.link_id)
    if link is None or event.type not in _TRANSITIONS:
        return None
    sources, target = _TRANSITIONS[event.type]
    if BankLinkStatus(link.status) in sources:
        link.status = target.value
        link.status_reason = f"bank: {event.reason}"[:200]
        link.status_changed_at = runtime.now()
        session.flush()
        if target is BankLinkStatus.REVOKED:
            policy.record(
                session,
                RiskEvent(
                    type=EventType.LINK_REVOKED,
                    at=runtime.now(),
                    wallet=str(link.wallet_id),
                    bank=link.bank_code,
                    account=link.account_fingerprint,
                    attributes={"by": "bank", "reason": event.reason[:200]},
                ),
            )
    return link


def _link(session: Session, bank_link_id: str) -> BankLink | None:
    try:
        key = uuid.UUID(bank_link_id)
    except ValueError:
        return None
    return session.scalars(
        select(BankLink).where(BankLink.bank_link_id == key).with_for_update()
    ).one_or_none()
