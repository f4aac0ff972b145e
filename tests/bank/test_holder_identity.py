"""The bank's comparison of a presented identity with its holder record (ADR 0023)."""

from __future__ import annotations

from datetime import date

import pytest

from kouza.bank.kana import comparable_kanji_name, compare_holder, same_kanji_name
from kouza.bank.models import AttemptOutcome, Customer

BORN = date(1960, 4, 1)


def taro(name_kanji: str = "髙橋 太郎") -> Customer:
    return Customer(name_kanji=name_kanji, name_kana="ﾀｶﾊｼ ﾀﾛｳ", birth_date=BORN)


class TestComparableKanjiName:
    @pytest.mark.parametrize(
        ("card", "record"),
        [
            ("高橋　太郎", "高橋 太郎"),  # U+3000 vs space
            ("髙橋 太郎", "高橋太郎"),  # old form 髙
            ("山﨑 花子", "山崎 花子"),  # 﨑 (a compatibility ideograph NFKC keeps)
            ("渡邉 一", "渡辺 一"),
            ("葛\U000e0100西 実", "葛西 實"),  # an ideographic variation selector; 實
            ("ｻﾄｳ 花子", "サトウ花子"),  # NFKC: half-width kana
        ],
    )
    def test_the_same_name_written_differently_compares_equal(self, card: str, record: str) -> None:
        assert same_kanji_name(card, record)

    @pytest.mark.parametrize(
        ("card", "record"),
        [
            ("山田 太郎", "佐藤 花子"),
            ("斉藤 一", "斎藤 一"),  # different characters, different registered names
            ("埼田 一", "崎田 一"),
            ("濱田 一", "頻田 一"),  # a dictionary that pairs these was rejected (ADR 0023)
            ("", ""),
            ("　", " "),
        ],
    )
    def test_different_or_empty_names_do_not(self, card: str, record: str) -> None:
        assert not same_kanji_name(card, record)

    def test_the_comparable_form(self) -> None:
        assert comparable_kanji_name("髙橋\u3000﨑子 ") == "高橋崎子"


class TestCompareHolder:
    def test_the_cards_name_and_birth_date_match(self) -> None:
        assert (
            compare_holder(
                taro(), name="高橋　太郎", kana=None, birth_date=BORN, birth_date_required=False
            )
            is None
        )

    def test_the_right_kana_does_not_save_a_wrong_name(self) -> None:
        assert (
            compare_holder(
                taro(),
                name="山田 太郎",
                kana="タカハシ タロウ",
                birth_date=BORN,
                birth_date_required=False,
            )
            is AttemptOutcome.NAME_MISMATCH
        )

    def test_a_wrong_kana_is_a_mismatch_even_with_the_right_name(self) -> None:
        assert (
            compare_holder(
                taro(),
                name="高橋 太郎",
                kana="ヤマダ タロウ",
                birth_date=BORN,
                birth_date_required=False,
            )
            is AttemptOutcome.NAME_MISMATCH
        )

    def test_a_presented_name_always_brings_the_birth_date_into_the_check(self) -> None:
        assert (
            compare_holder(
                taro(),
                name="高橋 太郎",
                kana=None,
                birth_date=date(1960, 4, 2),
                birth_date_required=False,
            )
            is AttemptOutcome.BIRTH_DATE_MISMATCH
        )
        assert (
            compare_holder(
                taro(), name="高橋 太郎", kana=None, birth_date=None, birth_date_required=False
            )
            is AttemptOutcome.BIRTH_DATE_MISMATCH
        )

    def test_the_2020_form_compares_the_kana_only(self) -> None:
        assert (
            compare_holder(
                taro(), name=None, kana="ﾀｶﾊｼ ﾀﾛｳ", birth_date=None, birth_date_required=False
            )
            is None
        )
