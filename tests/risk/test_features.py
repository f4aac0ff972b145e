"""Feature stores: the same windows, caps and first-seen times in memory and in Redis; what the
shared store adds (one atomic snapshot per decision, key prefixes, TTLs); the read plans."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.plan import plan_reads, reads_of
from kouza.risk.redis_store import RedisFeatureStore, decode, encode, open_feature_store
from kouza.risk.service import risk, shipped_rule_set
from kouza.runtime import Runtime
from tests.risk.stores import REDIS_URL, Stores, redis_client, unique_prefix

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
E = EventType


def ev(minutes: float, type_: EventType = E.LINK_ATTEMPT, **fields: object) -> RiskEvent:
    base: dict[str, object] = {"wallet": "w1", "device": "d1", "ip": "192.0.2.1"}
    base.update(fields)
    return RiskEvent(type=type_, at=T0 + timedelta(minutes=minutes), **base)  # type: ignore[arg-type]


class TestEveryStore:
    """Behaviour the engine relies on, identical for every store."""

    def test_cap_keeps_the_newest_and_first_seen_survives(self, stores: Stores) -> None:
        store = stores.new(cap_per_key=3)
        for minute in range(5):
            store.record(ev(minute, account=f"a{minute}"))
        assert [e.account for e in store.window("device:d1", T0)] == ["a4", "a3", "a2"]
        assert store.first_seen("device:d1") == T0
        assert stores.evaluate('count(device, "1h")', store, ev(6)) == 3

    def test_identical_events_are_two_events(self, stores: Stores) -> None:
        store = stores.new()
        store.record(ev(0, amount=500))
        store.record(ev(0, amount=500))
        assert stores.evaluate('total(wallet, "1h")', store, ev(1)) == 1_000

    def test_same_instant_keeps_arrival_order(self, stores: Stores) -> None:
        store = stores.new()
        for device in ("first", "second", "third"):
            store.record(ev(0, E.LINK_CREATED, account="acc", device=device))
        assert [e.device for e in store.window("account:acc", T0)] == ["third", "second", "first"]
        current = ev(1, E.TOPUP, account="acc")
        assert (
            stores.evaluate('first(account, "device", "link_created")', store, current) == "first"
        )

    def test_window_excludes_what_is_older(self, stores: Stores) -> None:
        store = stores.new()
        store.record(ev(0))
        store.record(ev(10, E.TOPUP, amount=7))
        assert [e.type for e in store.window("wallet:w1", T0 + timedelta(minutes=5))] == [E.TOPUP]
        assert list(store.window("wallet:unknown", T0)) == []
        assert store.first_seen("wallet:unknown") is None

    def test_first_seen_restarts_after_a_gap_longer_than_the_retention(
        self, stores: Stores
    ) -> None:
        store = stores.new(retention=timedelta(days=1))
        store.record(ev(0))
        store.record(ev(60 * 20))
        assert store.first_seen("wallet:w1") == T0  # 20 h: the same stretch of activity
        store.record(ev(60 * 24 * 5))
        assert store.first_seen("wallet:w1") == T0 + timedelta(days=5)
        assert [e.at for e in store.window("wallet:w1", T0)] == [T0 + timedelta(days=5)]


class TestRedisFeatureStore:
    @pytest.fixture
    def store(self) -> RedisFeatureStore:
        client = redis_client()
        return RedisFeatureStore(client, prefix=unique_prefix())

    @pytest.fixture(autouse=True)
    def _clean(self, store: RedisFeatureStore) -> object:
        yield
        store.clear()

    def test_snapshot_reads_the_history_before_its_event_and_records_it(
        self, store: RedisFeatureStore
    ) -> None:
        store.record(ev(0, account="a1"))
        current = ev(5, account="a2", wallet="w-new")
        snapshot = store.snapshot(current, {"device": timedelta(hours=1)}, record=True)
        assert [e.account for e in snapshot.window("device:d1", T0)] == ["a1"]
        assert snapshot.first_seen("wallet:w-new") is None  # new before this event
        assert snapshot.first_seen("device:d1") == T0
        assert [e.account for e in store.window("device:d1", T0)] == ["a2", "a1"]
        assert store.first_seen("wallet:w-new") == current.at

    def test_preview_snapshot_records_nothing(self, store: RedisFeatureStore) -> None:
        store.record(ev(0))
        snapshot = store.snapshot(ev(5), {"wallet": None}, record=False)
        assert len(list(snapshot.window("wallet:w1", T0))) == 1
        assert len(store) == 4  # one event under wallet, device, ip and ip24

    def test_reads_outside_the_plan_still_exclude_the_decisions_event(
        self, store: RedisFeatureStore
    ) -> None:
        store.record(ev(0))
        snapshot = store.snapshot(ev(5), {"device": timedelta(minutes=1)}, record=True)
        # a wider window than planned, and a key the plan does not cover: read directly
        assert len(list(snapshot.window("device:d1", T0))) == 1
        assert len(list(snapshot.window("wallet:w1", T0))) == 1
        assert len(list(store.window("wallet:w1", T0))) == 2
        with pytest.raises(TypeError):
            snapshot.record(ev(6))

    def test_concurrent_decisions_each_see_all_earlier_ones(self, store: RedisFeatureStore) -> None:
        seen: list[int] = []
        lock = threading.Lock()

        def decide(i: int) -> None:
            event = ev(1, outcome="wrong_pin", account=f"a{i}")
            snapshot = store.snapshot(event, {"device": timedelta(hours=1)}, record=True)
            count = sum(1 for _ in snapshot.window("device:d1", T0))
            with lock:
                seen.append(count)

        threads = [threading.Thread(target=decide, args=(i,)) for i in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(seen) == list(range(24))  # a read and its write are one atomic step

    def test_keys_expire_after_the_retention_and_prefixes_isolate(
        self, store: RedisFeatureStore
    ) -> None:
        store.record(ev(0))
        ttl = store.client.pttl(f"{store.prefix}e:wallet:w1")
        assert (
            timedelta(days=31) - timedelta(minutes=1)
            < timedelta(milliseconds=ttl)
            <= (timedelta(days=31))
        )
        assert store.client.pttl(f"{store.prefix}f:wallet:w1") == pytest.approx(ttl, abs=1000)
        other = RedisFeatureStore(store.client, prefix=unique_prefix())
        assert list(other.window("wallet:w1", T0)) == []
        assert other.first_seen("wallet:w1") is None

    def test_survives_a_lost_script_cache(self, store: RedisFeatureStore) -> None:
        store.record(ev(0))
        store.client.script_flush()
        store.snapshot(ev(1), {"wallet": None}, record=True)
        store.client.script_flush()
        store.record(ev(2))
        assert [e.at.minute for e in store.window("wallet:w1", T0)] == [2, 1, 0]

    def test_encoding_round_trips(self) -> None:
        event = ev(
            0,
            E.TOPUP,
            amount=30_000,
            bank="0005",
            account="fp",
            holder_name="ﾔﾏﾀﾞ ﾀﾛｳ",
            attributes={"name_match": "review"},
        )
        assert decode(b"0" * 13 + encode(event).encode()) == event
        assert len(encode(event)) < len(str(event.to_json()))


class TestOpenFeatureStore:
    def test_memory_redis_or_refused(self) -> None:
        assert isinstance(open_feature_store("memory"), InMemoryFeatureStore)
        shared = open_feature_store("redis://127.0.0.1:6379/15", prefix="x:")
        assert isinstance(shared, RedisFeatureStore) and shared.prefix == "x:"
        with pytest.raises(ValueError, match="KOUZA_RISK_FEATURE_STORE"):
            open_feature_store("memcached://127.0.0.1")

    def test_the_service_uses_the_configured_shared_store(self, rt: Runtime) -> None:
        redis_client()
        prefix = unique_prefix()
        rt.settings = rt.settings.model_copy(
            update={"risk_feature_store": REDIS_URL, "risk_feature_prefix": prefix}
        )
        rt.risk_engine = None
        store = risk.engine(rt).store
        assert isinstance(store, RedisFeatureStore) and store.prefix == prefix
        try:
            with rt.db.unit_of_work() as session:
                risk.assess(session, ev(0, E.SIGNUP))
                risk.assess(session, ev(1, account="a0"))
                decision = risk.assess(session, ev(2, account="a1"))
                preview = risk.preview(session, ev(3, account="a2"))
            assert [r.id for r in decision.fired] == ["many-accounts-from-device"]
            assert {r.id for r in preview.fired} == {"many-accounts-from-device"}
            assert [e.type for e in store.window("wallet:w1", T0)] == [
                E.LINK_ATTEMPT,
                E.LINK_ATTEMPT,
                E.SIGNUP,
            ]
        finally:
            store.clear()


class TestReadPlans:
    def test_longest_window_per_dimension_for_each_event_type(self) -> None:
        plans = plan_reads(shipped_rule_set())
        assert dict(plans[E.LINK_ATTEMPT]) == {
            "device": timedelta(days=30),
            "ip24": timedelta(hours=1),
            "wallet": timedelta(days=30),
            "bank": timedelta(minutes=10),
        }
        assert dict(plans[E.TOPUP]) == {
            "wallet": None,
            "device": timedelta(days=30),
            "account": None,
        }
        assert dict(plans[E.LOGIN]) == {}

    def test_computed_keys_and_windows(self) -> None:
        assert reads_of('count("wallet:w1", "1h") + count(device, event.window)') == {
            "device": None
        }
        assert reads_of('count(ip, "90s") > 1 and count(ip, "15m") < 9') == {
            "ip": timedelta(minutes=15)
        }
