"""Exact sliding-window features over recorded events.

Each event is filed under one key per dimension it carries (``wallet:…``, ``device:…``,
``ip:…``, ``ip24:…``, ``email_domain:…``, ``account:…``, ``bank:…``, ``merchant:…``,
``user:…``). A feature is computed at read time by walking a key's events backwards until the
window's start, so windows are exact (no buckets) and expiry needs no timer. Each key keeps at
most ``cap_per_key`` events and nothing older than ``retention`` (trimmed when the key is
written, and for every key each 100,000 events); ``first_seen`` survives the cap, not the
retention.

The :class:`FeatureStore` protocol is what the engine needs; :class:`InMemoryFeatureStore` serves
one process (the simulator, tests, a single worker). A shared store (Redis sorted sets per key)
implements the same protocol for several processes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Protocol

from kouza.risk.events import RiskEvent, ip_prefix

DIMENSIONS = (
    "wallet",
    "user",
    "device",
    "ip",
    "ip24",
    "email_domain",
    "account",
    "bank",
    "merchant",
)


def keys_of(event: RiskEvent) -> dict[str, str]:
    """Dimension → key for every dimension the event carries."""
    values = {
        "wallet": event.wallet,
        "user": event.user,
        "device": event.device,
        "ip": event.ip,
        "ip24": ip_prefix(event.ip) if event.ip else "",
        "email_domain": event.email_domain,
        "account": event.account,
        "bank": event.bank,
        "merchant": event.merchant,
    }
    return {dimension: f"{dimension}:{value}" for dimension, value in values.items() if value}


class FeatureStore(Protocol):
    """Where events are kept for feature computation."""

    def record(self, event: RiskEvent) -> None: ...

    def window(self, key: str, since: datetime) -> Iterator[RiskEvent]:
        """Events filed under ``key`` at or after ``since``, newest first."""
        ...

    def first_seen(self, key: str) -> datetime | None: ...


class InMemoryFeatureStore:
    """Per-key deques of events, trimmed by age and count."""

    def __init__(
        self, *, retention: timedelta = timedelta(days=31), cap_per_key: int = 20_000
    ) -> None:
        self.retention = retention
        self.cap_per_key = cap_per_key
        self._events: dict[str, deque[RiskEvent]] = {}
        self._first_seen: dict[str, datetime] = {}
        self._recorded = 0

    def record(self, event: RiskEvent) -> None:
        self._recorded += 1
        if self._recorded % 100_000 == 0:  # amortised sweep of keys nobody touches any more
            self.expire(event.at)
        horizon = event.at - self.retention
        for key in keys_of(event).values():
            events = self._events.get(key)
            if events is None:
                events = self._events[key] = deque(maxlen=self.cap_per_key)
                self._first_seen.setdefault(key, event.at)
            events.append(event)
            while events and events[0].at < horizon:
                events.popleft()

    def expire(self, now: datetime) -> None:
        """Forget events older than the retention, and keys left with none."""
        horizon = now - self.retention
        for key in list(self._events):
            events = self._events[key]
            while events and events[0].at < horizon:
                events.popleft()
            if not events:
                del self._events[key]
                self._first_seen.pop(key, None)

    def window(self, key: str, since: datetime) -> Iterator[RiskEvent]:
        for event in reversed(self._events.get(key, ())):
            if event.at < since:
                return
            yield event

    def first_seen(self, key: str) -> datetime | None:
        return self._first_seen.get(key)

    def __len__(self) -> int:
        return sum(len(events) for events in self._events.values())
