"""Signed bank → operator webhooks: pure signing and verification, no database.

An event is a compact JWS (RFC 7515) signed with the deployment's Ed25519 key (``alg`` =
``Ed25519``, RFC 9864; ``kid`` = the key's RFC 7638 thumbprint; ``typ`` =
``kouza-bank-event+jws``), POSTed with ``Content-Type: application/jose``. Its payload::

    {"iss": bank deployment, "aud": operator client id, "jti": event id (uuid),
     "iat": unix seconds, "type": "link.revoked", "bank_code": "0125",
     "link_id": "...", "operator_reference": the wallet reference given at linking,
     "reason": "..."}

The receiver verifies with :func:`verify_event` against the JWKS published at
``/.well-known/jwks.json``: signature (only ``Ed25519``, only a key from the set), issuer and
audience, ``iat`` no older than ``max_age`` and not in the future beyond ``leeway``, and the
``jti`` seen for the first time (a :class:`ReplayCache` remembers ids for ``max_age``, so an
event replayed later than that is already too old). This module is the contract the two
systems share: the bank signs with it, the wallet verifies with it, and neither imports the
other's code for it (ADR 0026).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey

from kouza.errors import Unauthorized

ALGORITHM = "Ed25519"
MEDIA_TYPE = "application/jose"
TOKEN_TYPE = "kouza-bank-event+jws"
LINK_REVOKED = "link.revoked"
LINK_SUSPENDED = "link.suspended"
LINK_RESUMED = "link.resumed"


class WebhookRejected(Unauthorized):
    """A webhook that failed verification (bad signature, stale, replayed, wrong audience)."""

    code = "webhook_rejected"


@dataclass(frozen=True)
class BankEvent:
    """One event the bank tells an operator about."""

    jti: str
    type: str
    iss: str
    aud: str
    iat: int
    bank_code: str
    link_id: str
    operator_reference: str
    reason: str = ""

    @property
    def issued_at(self) -> datetime:
        return datetime.fromtimestamp(self.iat, UTC)


def new_event(
    *,
    type: str,
    issuer: str,
    audience: str,
    now: datetime,
    bank_code: str,
    link_id: str,
    operator_reference: str,
    reason: str = "",
) -> BankEvent:
    """A fresh event with a random id, issued ``now``."""
    return BankEvent(
        jti=str(uuid.uuid4()),
        type=type,
        iss=issuer,
        aud=audience,
        iat=int(now.timestamp()),
        bank_code=bank_code,
        link_id=link_id,
        operator_reference=operator_reference,
        reason=reason,
    )


def sign_event(event: BankEvent, key: OKPKey) -> str:
    """The event as a compact JWS signed with ``key``."""
    header = {"alg": ALGORITHM, "kid": key.kid or key.thumbprint(), "typ": TOKEN_TYPE}
    payload = json.dumps(asdict(event), separators=(",", ":"), sort_keys=True)
    return jws.serialize_compact(header, payload, key, algorithms=[ALGORITHM])


class ReplayCache(Protocol):
    """Remembers event ids; a shared store (Redis, a table) in a multi-process receiver."""

    def remember(self, event_id: str, *, until: datetime, now: datetime) -> bool:
        """Record ``event_id`` until ``until``; False if it was already recorded."""
        ...


class MemoryReplayCache:
    """An in-process replay cache (tests, a single receiver)."""

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def remember(self, event_id: str, *, until: datetime, now: datetime) -> bool:
        with self._lock:
            self._seen = {jti: end for jti, end in self._seen.items() if end > now}
            if event_id in self._seen:
                return False
            self._seen[event_id] = until
            return True


def verify_event(
    token: str | bytes,
    jwks: dict[str, Any],
    *,
    now: datetime,
    replay_cache: ReplayCache,
    audience: str,
    issuer: str,
    max_age: timedelta = timedelta(minutes=5),
    leeway: timedelta = timedelta(seconds=30),
) -> BankEvent:
    """The verified event carried by ``token``; raises :class:`WebhookRejected` otherwise."""
    event = _verified_payload(token, jwks)
    if event.iss != issuer or event.aud != audience:
        raise WebhookRejected("webhook for another issuer or audience")
    issued = event.issued_at
    if issued > now + leeway or issued < now - max_age:
        raise WebhookRejected("webhook timestamp outside the accepted window")
    if not replay_cache.remember(event.jti, until=issued + max_age + leeway, now=now):
        raise WebhookRejected("webhook replayed (event id already seen)", event_id=event.jti)
    return event


def _verified_payload(token: str | bytes, jwks: dict[str, Any]) -> BankEvent:
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        compact = jws.deserialize_compact(token, keys, algorithms=[ALGORITHM])
        if compact.headers().get("typ") != TOKEN_TYPE:
            raise WebhookRejected("not a bank event (typ)")
        claims = json.loads(compact.payload)
        return BankEvent(**claims)
    except WebhookRejected:
        raise
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise WebhookRejected(
            f"webhook signature or payload invalid ({type(exc).__name__})"
        ) from None
