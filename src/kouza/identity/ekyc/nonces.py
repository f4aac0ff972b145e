"""Single-use server challenges for eKYC.

The server issues a random nonce; the card (JPKI) or the chip (IC-chip active authentication)
signs it, and the verifier *consumes* it before anything else. A nonce is good for one
verification attempt, successful or not, so a captured signature cannot be replayed and a failed
attempt cannot be retried with the same challenge. It must be bound to the session that asked
for it by the caller (store it with the user's pending verification), since the nonce itself
says nothing about who it was issued to.

``consume`` answers only yes/no, which is what a database-backed store can do atomically
(``UPDATE … SET used_at = :now WHERE nonce = :n AND used_at IS NULL AND expires_at > :now``).
When it says no, :meth:`NonceStore.refusal_reason` explains why, for the verification record.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

DEFAULT_NONCE_TTL = timedelta(minutes=5)
NONCE_BYTES = 32


class NonceRefusal(StrEnum):
    """Why a nonce could not be consumed."""

    UNKNOWN = "unknown"
    """Never issued by this store (or forgotten long after it expired)."""
    EXPIRED = "expired"
    """Issued, but its time to live had passed."""
    REPLAYED = "replayed"
    """Already consumed by an earlier attempt."""


class NonceStore(Protocol):
    """Issues single-use nonces and consumes each at most once."""

    def issue(self, now: datetime) -> str:
        """A new random nonce: 32 bytes, URL-safe base64 without padding."""
        ...

    def consume(self, nonce: str, now: datetime) -> bool:
        """True exactly once per issued, unexpired nonce; False otherwise."""
        ...

    def refusal_reason(self, nonce: str, now: datetime) -> NonceRefusal:
        """Why ``consume`` said False for ``nonce`` (call only after it did)."""
        ...


@dataclass
class _Entry:
    expires_at: datetime
    used_at: datetime | None = None


class InMemoryNonceStore:
    """A process-local :class:`NonceStore`; for one process, tests and the simulator.

    Used nonces are remembered until ``ttl`` after they expire so that a replay is reported as
    a replay rather than as unknown; entries older than that are dropped on each ``issue``.
    """

    def __init__(self, ttl: timedelta = DEFAULT_NONCE_TTL) -> None:
        if ttl <= timedelta(0):
            raise ValueError("the nonce time to live must be positive")
        self._ttl = ttl
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def issue(self, now: datetime) -> str:
        """A new random nonce valid for ``ttl`` from ``now``."""
        nonce = secrets.token_urlsafe(NONCE_BYTES)
        with self._lock:
            self._forget_old(now)
            self._entries[nonce] = _Entry(expires_at=now + self._ttl)
        return nonce

    def consume(self, nonce: str, now: datetime) -> bool:
        """Mark ``nonce`` used; True only the first time and only before it expires."""
        with self._lock:
            entry = self._entries.get(nonce)
            if entry is None or entry.used_at is not None or now >= entry.expires_at:
                return False
            entry.used_at = now
            return True

    def refusal_reason(self, nonce: str, now: datetime) -> NonceRefusal:
        """Unknown, replayed (takes precedence) or expired."""
        with self._lock:
            entry = self._entries.get(nonce)
        if entry is None:
            return NonceRefusal.UNKNOWN
        if entry.used_at is not None:
            return NonceRefusal.REPLAYED
        return NonceRefusal.EXPIRED if now >= entry.expires_at else NonceRefusal.UNKNOWN

    def _forget_old(self, now: datetime) -> None:
        horizon = now - self._ttl
        stale = [key for key, entry in self._entries.items() if entry.expires_at < horizon]
        for key in stale:
            del self._entries[key]
