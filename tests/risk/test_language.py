"""The rule expression language: what it computes (over every feature store), and what it
refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import InMemoryFeatureStore
from kouza.risk.language import Context, ExpressionError, compile_expression, parse_window
from tests.risk.stores import Stores

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _event(minutes: float, **fields: object) -> RiskEvent:
    base: dict[str, object] = {
        "type": EventType.LINK_ATTEMPT,
        "wallet": "w1",
        "device": "d1",
        "ip": "203.0.113.7",
    }
    base.update(fields)
    return RiskEvent(at=T0 + timedelta(minutes=minutes), **base)  # type: ignore[arg-type]


class TestWindows:
    @pytest.fixture(autouse=True)
    def _stores(self, stores: Stores) -> None:
        self.stores = stores

    def _eval(self, expression: str, history: list[RiskEvent], current: RiskEvent) -> object:
        store = self.stores.new()
        for event in history:
            store.record(event)
        return self.stores.evaluate(expression, store, current)

    def test_count_is_exact_at_the_edge(self) -> None:
        history = [_event(0), _event(30), _event(59)]
        expression = 'count(device, "1h", type="link_attempt")'
        assert self._eval(expression, history, _event(60)) == 3  # 12:00 is exactly 1 h before
        assert self._eval(expression, history, _event(60.01)) == 2

    def test_filters(self) -> None:
        history = [
            _event(0, outcome="wrong_pin"),
            _event(1, outcome="ok"),
            _event(2, outcome="wrong_pin", type=EventType.TOPUP),
        ]
        current = _event(3)
        assert self._eval('count(device, "1h", outcome="wrong_pin")', history, current) == 2
        assert (
            self._eval(
                'count(device, "1h", type="link_attempt", outcome_not="ok")', history, current
            )
            == 1
        )

    def test_total_distinct_others(self) -> None:
        history = [
            _event(0, type=EventType.TOPUP, amount=100_000, account="a"),
            _event(1, type=EventType.TOPUP, amount=90_000, account="b"),
            _event(2, type=EventType.TOPUP, amount=20_000, account="a"),
        ]
        current = _event(3, account="a")
        assert self._eval('total(wallet, "1h", type="topup")', history, current) == 210_000
        assert self._eval('distinct(wallet, "account", "1h")', history, current) == 2
        assert self._eval('others(wallet, "account", "1h")', history, current) == 1

    def test_ip24_groups_neighbours(self) -> None:
        history = [_event(0, ip="203.0.113.9", account="x")]
        assert self._eval('distinct(ip24, "account", "1h")', history, _event(1)) == 1
        assert self._eval('distinct(ip, "account", "1h")', history, _event(1)) == 0

    def test_age_since_first(self) -> None:
        history = [
            _event(0, type=EventType.SIGNUP),
            _event(10, type=EventType.LINK_CREATED, device="d-link", account="acc"),
        ]
        current = _event(25, account="acc", device="d-other", type=EventType.TOPUP)
        assert self._eval("age(wallet)", history, current) == 25 * 60
        assert self._eval('since(wallet, "link_created")', history, current) == 15 * 60
        assert self._eval('first(account, "device", "link_created")', history, current) == "d-link"

    def test_unknown_values_compare_false(self) -> None:
        assert self._eval("age(wallet) < hours(1)", [], _event(0)) is False
        assert self._eval("age(wallet) >= hours(1)", [], _event(0)) is False
        assert self._eval('since(wallet, "link_created") < 5', [], _event(0)) is False

    def test_arithmetic_and_membership(self) -> None:
        current = _event(0, type=EventType.PAYMENT, category="tobacco", amount=40_000)
        assert self._eval('event.category in ["electronics", "tobacco"]', [], current) is True
        assert self._eval("event.amount * 2 + 1 > 80000", [], current) is True
        assert self._eval("not (event.amount > 50000)", [], current) is True
        assert self._eval("event.amount / 0 > 1", [], current) is False


class TestParseWindow:
    def test_parse_window(self) -> None:
        assert parse_window("90s") == timedelta(seconds=90)
        assert parse_window("30d") == timedelta(days=30)
        with pytest.raises(ExpressionError):
            parse_window("1 week")


class TestSafety:
    @pytest.mark.parametrize(
        "expression",
        [
            "__import__('os').system('true')",
            "event.__class__",
            "event.at.year",
            "[x for x in (1, 2)]",
            "(lambda: 1)()",
            "open('/etc/passwd')",
            "event['amount']",
            "device.upper()",
            "count(device, '1h', typo='x')",
            "secret_name > 1",
            "1 if True else 2",
            "b'bytes'",
            "event.amount ** 1000",
            "f'{event}'",
        ],
    )
    def test_refused(self, expression: str) -> None:
        with pytest.raises(ExpressionError):
            compile_expression(expression)

    def test_syntax_error_names_the_column(self) -> None:
        with pytest.raises(ExpressionError, match="column"):
            compile_expression("count(device, ")


class TestLimits:
    """Size limits: refused at compile time with a clear error, never a RecursionError."""

    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            ("not " * 900 + "true", "nested more than 40 levels deep"),
            ("-" * 100000 + "1", "longer than 4000 characters"),
            ("-" * 3000 + "1", "nested more than 40 levels deep"),
            ("1" + " + 1" * 60, "nested more than 40 levels deep"),
            (" or ".join(["event.amount > 1"] * 150), "more than 400 parts"),
            ("event.holder_name == '" + "x" * 201 + "'", "a string longer than 200 characters"),
            ("event.amount > 10000000000000000", "a number larger than 1,000,000,000,000,000"),
            ("'a' * 1000000000 == event.holder_name", "arithmetic on a string or a list"),
            ("event.amount * 'a' == 'b'", "arithmetic on a string or a list"),
            ("['a'] * 100 == event.holder_name", "arithmetic on a string or a list"),
        ],
    )
    def test_refused(self, expression: str, message: str) -> None:
        with pytest.raises(ExpressionError, match=message.replace("(", r"\(")):
            compile_expression(expression)

    def test_the_limits_leave_room(self) -> None:
        compile_expression("event.amount > 0" + " and event.amount > 1" * 30)
        compile_expression("-" * 30 + "1 < 0")

    def test_string_repetition_at_run_time_is_unknown(self) -> None:
        condition = compile_expression('event.holder_name * 1000000000 == "x"')
        event = _event(0, holder_name="ﾔﾏﾀﾞ")
        store = InMemoryFeatureStore()
        assert condition(Context.for_event(event, store)) is False
        total = compile_expression("event.holder_name + event.amount")
        assert total(Context.for_event(event, store)) is None
