"""Exact sliding-window features over recorded events.

Each event is filed under one key per dimension it carries (``wallet:…``, ``device:…``,
``ip:…``, ``ip24:…``, ``email_domain:…``, ``account:…``, ``bank:…``, ``merchant:…``,
``user:…``). A feature is computed at read time by walking a key's events backwards until the
window's start, so windows are exact (no buckets) and expiry needs no timer. Each key keeps at
most ``cap_per_key`` events and nothing older than ``retention`` (trimmed when the key is
written, and for every key each 100,000 events); ``first_seen`` survives the cap, not the
retention: it is the time of the key's first event since it last had none within the retention.

The :class:`FeatureStore` protocol is what the engine needs; :class:`InMemoryFeatureStore` serves
one process (the simulator, tests, a single worker). :class:`SharedFeatureStore` is a store that
several processes share over the network (:class:`~kouza.risk.redis_store.RedisFeatureStore`,
ADR 0015): besides the protocol it offers :meth:`~SharedFeatureStore.snapshot`, which reads what
one decision needs and records its event in one round trip.
:func:`~kouza.risk.redis_store.open_feature_store` picks one from the
``KOUZA_RISK_FEATURE_STORE`` setting.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

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

    def first_seen(self, key: str) -> datetime | None:
        """When the key's events within the retention began (``None``: it has none)."""
        ...


@runtime_checkable
class SharedFeatureStore(FeatureStore, Protocol):
    """A feature store shared by several processes, read in one round trip per decision."""

    def snapshot(
        self, event: RiskEvent, windows: Mapping[str, timedelta | None], *, record: bool
    ) -> FeatureStore:
        """What the store held before ``event``: for each dimension in ``windows`` the event's
        key over that window (``None``: all of it), and ``first_seen`` of each of its keys. With
        ``record`` the event is filed in the same atomic step. The snapshot answers any other
        read directly from the store, as it was before ``event``; it cannot record."""
        ...


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
            if not events or events[-1].at < horizon:  # nothing left within the retention
                self._first_seen[key] = event.at
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
