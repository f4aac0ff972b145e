"""Figures over seeds: medians, ranges and the ablation's paired differences, on hand-made trees."""

from __future__ import annotations

from typing import Any

import pytest

from kouza.sim.aggregate import Spread, ablation, layer_effect, median, pick, spread
from kouza.sim.profiles import LAYERS
from kouza.sim.results import ProfileResult


class TestMedian:
    def test_odd_count_is_the_middle_value(self) -> None:
        assert median([3, 1, 2]) == 2
        assert isinstance(median([3, 1, 2]), int)

    def test_even_count_of_ints_stays_int_when_whole(self) -> None:
        assert median([600_000, 900_000]) == 750_000
        assert isinstance(median([600_000, 900_000]), int)

    def test_even_count_of_ints_can_be_a_half(self) -> None:
        assert median([3, 4]) == 3.5

    def test_floats_stay_floats(self) -> None:
        value = median([1.0, 3.0])
        assert value == 2.0 and isinstance(value, float)


class TestSpread:
    def test_every_numeric_leaf_nested_and_non_numeric_from_the_first_seed(self) -> None:
        result = spread(
            {
                "1": {"loss_yen": 100, "name": "a", "flag": True, "nested": {"x": 1.5}},
                "2": {"loss_yen": 300, "name": "b", "flag": False, "nested": {"x": 0.5}},
                "3": {"loss_yen": 200, "name": "c", "flag": False, "nested": {"x": 1.0}},
            }
        )
        assert result["median"] == {
            "loss_yen": 200,
            "name": "a",
            "flag": True,
            "nested": {"x": 1.0},
        }
        assert result["min"] == {"loss_yen": 100, "name": "a", "flag": True, "nested": {"x": 0.5}}
        assert result["max"]["loss_yen"] == 300
        assert list(result["per_seed"]) == ["1", "2", "3"]
        assert result["per_seed"]["2"]["name"] == "b"

    def test_none_is_left_out_and_missing_map_keys_count_as_zero(self) -> None:
        result = spread(
            {
                "1": {"delay": None, "by_bank": {"0125": 100}},
                "2": {"delay": 4.0, "by_bank": {"9900": 50}},
                "3": {"delay": None, "by_bank": {"0125": 300}},
            }
        )
        assert (result["median"]["delay"], result["min"]["delay"]) == (4.0, 4.0)
        assert result["median"]["by_bank"] == {"0125": 100, "9900": 0}
        assert result["max"]["by_bank"] == {"0125": 300, "9900": 50}

    def test_none_everywhere_stays_none(self) -> None:
        assert spread({"1": {"delay": None}, "2": {"delay": None}})["median"] == {"delay": None}

    def test_key_order_first_seed_then_new_keys_sorted(self) -> None:
        result = spread({"1": {"b": 1, "a": 1}, "2": {"z": 1, "c": 1, "a": 2}})
        assert list(result["median"]) == ["b", "a", "c", "z"]

    def test_rates_in_the_median_are_median_count_over_median_denominator(self) -> None:
        result = spread(
            {
                "1": {"step_up": {"users": 1, "of": 10, "rate": 0.1}},
                "2": {"step_up": {"users": 4, "of": 20, "rate": 0.2}},
                "3": {"step_up": {"users": 9, "of": 30, "rate": 0.3}},
                "4": {"step_up": {"users": 2, "of": 40, "rate": 0.05}},
            }
        )
        assert result["median"]["step_up"] == {"users": 3, "of": 25, "rate": 0.12}
        assert (result["min"]["step_up"]["rate"], result["max"]["step_up"]["rate"]) == (0.05, 0.3)

    def test_rate_without_denominator_is_none(self) -> None:
        result = spread({"1": {"k": {"count": 0, "of": 0, "rate": None}}})
        assert result["median"]["k"]["rate"] is None

    def test_no_seeds(self) -> None:
        assert spread({}) == {"median": {}, "min": {}, "max": {}, "per_seed": {}}

    def test_one_seed_is_its_own_median_and_range(self) -> None:
        tree = ProfileResult(
            profile="p",
            description="",
            loss_yen=5,
            honest_active_users=3,
            friction_users={"step_up": 1},
        ).summary()
        result = spread({"7": tree})
        assert result["median"] == result["min"] == result["max"] == tree


class TestPick:
    def test_reads_one_figure(self) -> None:
        result = spread({"1": {"a": {"b": 1}}, "2": {"a": {"b": 5}}})
        assert pick(result, "a", "b") == Spread(3, 1, 5)
        assert pick(result, "a", "b").varies
        assert pick(result, "a", "missing") == Spread(None, None, None)
        assert not pick(spread({"1": {"a": 2}}), "a").varies


def _summary(*, loss: int, net: int, step_ups: int, users: int = 100) -> dict[str, Any]:
    return ProfileResult(
        profile="p",
        description="",
        loss_yen=loss,
        net_loss_yen=net,
        honest_active_users=users,
        honest_link_attempters=users // 2,
        honest_operations=10,
        friction_users={"step_up": step_ups, "link_refusal": 2},
        friction_events={"step_up": 3 * step_ups, "link_refusal": 2},
    ).summary()


class TestAblation:
    def test_layer_effect_signs(self) -> None:
        effect = layer_effect(
            _summary(loss=10_000, net=5_000, step_ups=7),
            _summary(loss=300_000, net=280_000, step_ups=2),
        )
        assert (effect["yen_saved"], effect["net_yen_saved"]) == (290_000, 275_000)
        assert effect["friction_caused"]["per_user"]["step_up"] == 5
        assert effect["friction_caused"]["per_event"]["step_up"] == 15
        assert effect["friction_caused"]["per_user"]["link_refusal"] == 0
        assert (effect["honest_active_users"], effect["honest_link_attempters"]) == (100, 50)

    def test_rows_in_layer_order_differences_paired_by_seed(self) -> None:
        summaries = {
            "kouza": {
                "1": _summary(loss=0, net=0, step_ups=5),
                "2": _summary(loss=100_000, net=0, step_ups=9),
            },
            "kouza-without-rolling-caps": {
                "1": _summary(loss=600_000, net=300_000, step_ups=5),
                "2": _summary(loss=100_000, net=0, step_ups=9),
            },
            "kouza-without-device-keys": {
                "1": _summary(loss=0, net=0, step_ups=1),
                "2": _summary(loss=0, net=0, step_ups=1),
            },
            "legacy-2019": {"1": _summary(loss=9, net=9, step_ups=0)},
        }
        rows = ablation(summaries)
        order = list(LAYERS)
        assert [row["layer"] for row in rows] == sorted(
            ["device-keys", "rolling-caps"], key=order.index
        )
        keys, caps = rows
        assert keys["description"] == LAYERS["device-keys"][0]
        assert [keys[s]["yen_saved"] for s in ("median", "min", "max")] == [-50_000, -100_000, 0]
        assert keys["median"]["friction_caused"]["per_user"]["step_up"] == 6
        assert [caps[s]["yen_saved"] for s in ("median", "min", "max")] == [300_000, 0, 600_000]
        assert caps["per_seed"]["1"]["net_yen_saved"] == 300_000

    @pytest.mark.parametrize("names", [[], ["kouza"], ["kouza-without-device-keys"]])
    def test_no_table_without_kouza_and_an_ablated_profile(self, names: list[str]) -> None:
        tree = {"1": _summary(loss=0, net=0, step_ups=0)}
        assert ablation({name: tree for name in names}) == []
