"""The feature store shared by several processes: one Redis sorted set per key.

Layout (every name starts with the configured prefix, ``kouza:risk:`` by default, so that several
kouza instances — or parallel test workers — can share one server)::

    {prefix}e:{key}   sorted set: member = 13 hex digits of sequence + the event, score = its
                      time in microseconds since the Unix epoch
    {prefix}f:{key}   string: first_seen of the key, microseconds since the epoch
    {prefix}seq       counter giving each recorded event its sequence number

The sequence prefix makes members unique (two identical events are two events) and orders events
of the same microsecond by arrival, as the in-memory deque does. The event itself is a JSON array
of its fields in a fixed order (:data:`_ORDER`; about 110 bytes for a top-up, half of
``RiskEvent.to_json``), stored once per key the event is filed under.

Recording and reading are one Lua script (:data:`_SCRIPT`), so for each of an event's keys the
set is trimmed by age (nothing older than the retention before the event's time), capped
(``ZREMRANGEBYRANK``), given a TTL of the retention (a key nobody writes any more disappears by
itself), and its ``first_seen`` set — or reset when nothing of it was left within the retention
— atomically. Semantics are those of :class:`~kouza.risk.features.InMemoryFeatureStore` (the
same behavioural tests run against both).

A decision reads through :meth:`RedisFeatureStore.snapshot`: one call of the script that fetches,
for each key the rule set reads for this event type, the events within the longest window any of
those rules uses (:mod:`kouza.risk.plan`), the ``first_seen`` of each of the event's keys, and
then records the event. Every feature of the decision is computed from that snapshot in the
process: one round trip per decision, and decisions are linearizable across processes — each
sees exactly the events recorded before it (ADR 0015).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis
from redis.exceptions import NoScriptError

from kouza.kit.tracing import instrument_redis
from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import FeatureStore, InMemoryFeatureStore, keys_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SEQUENCE_DIGITS = 13
_TYPES = {member.value: member for member in EventType}
_ORDER = (
    "wallet",
    "user",
    "device",
    "ip",
    "email_domain",
    "bank",
    "account",
    "holder_name",
    "merchant",
    "category",
    "amount",
    "outcome",
)
"""Fields after type and time, in the order they are stored (attributes last, when any)."""
if tuple(f.name for f in fields(RiskEvent)) != ("type", "at", *_ORDER, "attributes"):
    raise RuntimeError("RiskEvent's fields changed: update redis_store._ORDER and its prefix")

_SCRIPT = """
local n = (#KEYS - 1) / 2
local result = {}
for j = 8, #ARGV, 2 do
  local events = KEYS[1 + tonumber(ARGV[j])]
  result[#result + 1] = redis.call('ZRANGE', events, '+inf', ARGV[j + 1], 'BYSCORE', 'REV')
end
if ARGV[2] == '1' and n > 0 then
  result[#result + 1] = redis.call('MGET', unpack(KEYS, n + 2, 2 * n + 1))
end
if ARGV[1] == '1' then
  local member = string.format('%013x', redis.call('INCR', KEYS[1])) .. ARGV[4]
  local score, horizon, cap, ttl = ARGV[3], '(' .. ARGV[5], tonumber(ARGV[6]), ARGV[7]
  for i = 2, n + 1 do
    local events, first = KEYS[i], KEYS[i + n]
    redis.call('ZREMRANGEBYSCORE', events, '-inf', horizon)
    local size = redis.call('ZCARD', events)
    if size == 0 or redis.call('PEXPIRE', first, ttl) == 0 then
      redis.call('SET', first, score, 'PX', ttl)
    end
    redis.call('ZADD', events, score, member)
    if size >= cap then
      redis.call('ZREMRANGEBYRANK', events, 0, size - cap)
    end
    redis.call('PEXPIRE', events, ttl)
  end
  result[#result + 1] = member
end
return result
"""
"""One atomic step of a decision. KEYS: the sequence counter, the event's sets, their first-seen
keys (same order). ARGV: record? (``1``/``0``), return first-seen times? (``1``/``0``), score,
encoded event, retention horizon (a score), cap per key, TTL in milliseconds, then per read the
position of the set among KEYS and the lowest score wanted. Returns the reads' members (newest
first), the first-seen times, the member recorded — each when asked for."""


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


def _time(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def encode(event: RiskEvent) -> str:
    """The stored form of ``event`` (without the sequence prefix)."""
    row: list[Any] = [event.type.value, _micros(event.at)]
    row += [getattr(event, name) for name in _ORDER]
    if event.attributes:
        row.append(event.attributes)
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def decode(member: bytes) -> RiskEvent:
    """The event a stored member holds."""
    row = json.loads(member[_SEQUENCE_DIGITS:])
    # positional: a third faster than keywords, and the order is checked on import
    return RiskEvent(
        _TYPES[row[0]],
        _time(row[1]),
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        row[14] if len(row) > 14 else {},
    )


class RedisFeatureStore:
    """Per-key sorted sets in Redis; implements ``FeatureStore`` and ``SharedFeatureStore``."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "kouza:risk:",
        retention: timedelta = timedelta(days=31),
        cap_per_key: int = 20_000,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.retention = retention
        self.cap_per_key = cap_per_key
        self._ttl_ms = retention // timedelta(milliseconds=1)
        self._retention_us = retention // _MICROSECOND
        self._sha = ""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisFeatureStore:
        """A store on the server at ``url`` (a refused or hung server fails within 5 s)."""
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        instrument_redis(client)  # a span per command when this process traces
        return cls(client, **options)

    def _events_key(self, key: str) -> str:
        return f"{self.prefix}e:{key}"

    def _first_key(self, key: str) -> str:
        return f"{self.prefix}f:{key}"

    def _args(
        self, event: RiskEvent, reads: list[tuple[int, str]], *, record: bool, firsts: bool
    ) -> list[Any]:
        keys = list(keys_of(event).values())
        score = _micros(event.at)
        arguments: list[Any] = [
            1 + 2 * len(keys),
            f"{self.prefix}seq",
            *(self._events_key(k) for k in keys),
            *(self._first_key(k) for k in keys),
            int(record),
            int(firsts),
            score,
            encode(event) if record else "",
            score - self._retention_us,
            self.cap_per_key,
            self._ttl_ms,
        ]
        for position, low in reads:
            arguments += (position, low)
        return arguments

    def _script(self) -> str:
        if not self._sha:
            self._sha = str(self.client.script_load(_SCRIPT))
        return self._sha

    def _run(self, arguments: list[Any]) -> list[Any]:
        try:
            return cast(list[Any], self.client.evalsha(self._script(), *arguments))
        except NoScriptError:  # the server lost its script cache (restart, SCRIPT FLUSH)
            self._sha = ""
            return cast(list[Any], self.client.evalsha(self._script(), *arguments))

    def record(self, event: RiskEvent) -> None:
        self._run(self._args(event, [], record=True, firsts=False))

    def record_many(self, events: list[RiskEvent], *, batch: int = 2_000) -> None:
        """Record ``events`` in order, ``batch`` per round trip (loading history)."""
        sha = self._script()
        for start in range(0, len(events), batch):
            pipe = self.client.pipeline(transaction=False)
            for event in events[start : start + batch]:
                pipe.evalsha(sha, *self._args(event, [], record=True, firsts=False))
            pipe.execute()

    def window(self, key: str, since: datetime) -> Iterator[RiskEvent]:
        yield from map(decode, self._members(key, since))

    def _members(self, key: str, since: datetime | None) -> list[bytes]:
        low = "-inf" if since is None else _micros(since)
        return cast(
            list[bytes],
            self.client.zrange(self._events_key(key), "+inf", low, desc=True, byscore=True),
        )

    def first_seen(self, key: str) -> datetime | None:
        value = self.client.get(self._first_key(key))
        return None if value is None else _time(int(cast(bytes, value)))

    def snapshot(
        self, event: RiskEvent, windows: Mapping[str, timedelta | None], *, record: bool
    ) -> FeatureStore:
        keys = keys_of(event)
        positions = {dimension: i for i, dimension in enumerate(keys, start=1)}
        reads = {
            keys[d]: (positions[d], None if w is None else event.at - w)
            for d, w in windows.items()
            if d in keys
        }
        results = self._run(
            self._args(
                event,
                [
                    (p, "-inf" if since is None else str(_micros(since)))
                    for p, since in reads.values()
                ],
                record=record,
                firsts=True,
            )
        )
        fetched = {
            key: (since, [decode(m) for m in members])
            for (key, (_, since)), members in zip(reads.items(), results, strict=False)
        }
        firsts = results[len(reads)] if keys else []
        first_seen = {
            key: None if value is None else _time(int(value))
            for key, value in zip(keys.values(), firsts, strict=True)
        }
        written = cast(bytes, results[-1]) if record else None
        return _Snapshot(self, fetched, first_seen, written)

    def expire(self, now: datetime) -> None:
        """Forget events older than the retention, and keys left with none (a full scan)."""
        horizon = f"({_micros(now - self.retention)}"
        for names in self._scan(f"{self.prefix}e:*"):
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.zremrangebyscore(name, "-inf", horizon)
                pipe.exists(name)
            results = pipe.execute()
            gone = [name for name, left in zip(names, results[1::2], strict=True) if not left]
            if gone:
                start = len(self.prefix) + 2
                self.client.delete(*(self._first_key(n[start:].decode()) for n in gone))

    def clear(self) -> None:
        """Delete every key under this store's prefix."""
        for names in self._scan(f"{self.prefix}*"):
            self.client.delete(*names)

    def _scan(self, pattern: str) -> Iterator[list[bytes]]:
        batch: list[bytes] = []
        for name in self.client.scan_iter(match=pattern, count=1_000):
            batch.append(cast(bytes, name))
            if len(batch) == 1_000:
                yield batch
                batch = []
        if batch:
            yield batch

    def __len__(self) -> int:
        total = 0
        for names in self._scan(f"{self.prefix}e:*"):
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.zcard(name)
            total += sum(pipe.execute())
        return total


class _Snapshot:
    """One decision's view of a shared store: the history before its event."""

    def __init__(
        self,
        store: RedisFeatureStore,
        fetched: dict[str, tuple[datetime | None, list[RiskEvent]]],
        first_seen: dict[str, datetime | None],
        written: bytes | None,
    ) -> None:
        self._store = store
        self._fetched = fetched
        self._first_seen = first_seen
        self._written = written

    def record(self, event: RiskEvent) -> None:
        raise TypeError("a feature snapshot is read-only; record through the store")

    def window(self, key: str, since: datetime) -> Iterator[RiskEvent]:
        fetched = self._fetched.get(key)
        if fetched is not None and (fetched[0] is None or since >= fetched[0]):
            for event in fetched[1]:
                if event.at < since:
                    return
                yield event
            return
        # outside the plan (a computed key or window): read now, without this decision's event
        for member in self._store._members(key, since):
            if member != self._written:
                yield decode(member)

    def first_seen(self, key: str) -> datetime | None:
        if key in self._first_seen:
            return self._first_seen[key]
        return self._store.first_seen(key)  # not one of the event's keys: the write left it


def open_feature_store(
    setting: str,
    *,
    prefix: str = "kouza:risk:",
    retention: timedelta = timedelta(days=31),
    cap_per_key: int = 20_000,
) -> FeatureStore:
    """The store a ``KOUZA_RISK_FEATURE_STORE`` value names: ``memory`` (or empty) for this
    process only, or a ``redis://``, ``rediss://`` or ``unix://`` URL for a shared store whose
    keys start with ``prefix``."""
    if setting in ("", "memory"):
        return InMemoryFeatureStore(retention=retention, cap_per_key=cap_per_key)
    if setting.startswith(("redis://", "rediss://", "unix://")):
        return RedisFeatureStore.from_url(
            setting, prefix=prefix, retention=retention, cap_per_key=cap_per_key
        )
    raise ValueError(
        f"KOUZA_RISK_FEATURE_STORE must be 'memory' or a redis:// URL, not {setting!r}"
    )
