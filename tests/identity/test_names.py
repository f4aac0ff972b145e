"""Zengin holder-name normalisation and the declared-name / holder-name match."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kouza.errors import BadRequest
from kouza.identity.names import (
    ZENGIN_CHARACTERS,
    MatchDecision,
    NameMatch,
    NameNormalizationError,
    match_names,
    normalize_zengin_name,
)

PERSONAL_NAMES = [
    # Scripts
    ("やまだ たろう", "ﾔﾏﾀﾞ ﾀﾛｳ"),
    ("ヤマダ タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
    ("ﾔﾏﾀﾞ ﾀﾛｳ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
    ("ヤマダ　タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
    ("すずき はなこ", "ｽｽﾞｷ ﾊﾅｺ"),
    # Small kana become large
    ("きゅうま しょうこ", "ｷﾕｳﾏ ｼﾖｳｺ"),
    ("キュウマ ショウコ", "ｷﾕｳﾏ ｼﾖｳｺ"),
    ("ｷｭｳﾏ ｼｮｳｺ", "ｷﾕｳﾏ ｼﾖｳｺ"),
    ("はっとり", "ﾊﾂﾄﾘ"),
    ("ﾊｯﾄﾘ", "ﾊﾂﾄﾘ"),
    ("ァィゥェォャュョヮ", "ｱｲｳｴｵﾔﾕﾖﾜ"),
    ("ｧｨｩｪｫｬｭｮｯ", "ｱｲｳｴｵﾔﾕﾖﾂ"),
    ("ぁぃぅぇぉゃゅょっゎ", "ｱｲｳｴｵﾔﾕﾖﾂﾜ"),
    ("ヵヶ", "ｶｹ"),
    ("ㇰㇱㇷㇼ", "ｸｼﾌﾘ"),
    ("ちょう じぇにふぁー", "ﾁﾖｳ ｼﾞｴﾆﾌｱ-"),
    # Voiced and semi-voiced marks as separate characters
    ("がぎぐげご ざじずぜぞ", "ｶﾞｷﾞｸﾞｹﾞｺﾞ ｻﾞｼﾞｽﾞｾﾞｿﾞ"),
    ("パピプペポ", "ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ"),
    ("ｶﾞｯｺｳ", "ｶﾞﾂｺｳ"),
    ("カ゛ッコウ", "ｶﾞﾂｺｳ"),
    ("ヴァイオリン", "ｳﾞｱｲｵﾘﾝ"),
    ("ゔぃんせんと", "ｳﾞｲﾝｾﾝﾄ"),
    ("ヷヸヹヺ", "ﾜﾞｲﾞｴﾞｵﾞ"),
    # Kana outside the Zengin name set, written by sound
    ("をの", "ｵﾉ"),
    ("ｦﾉ", "ｵﾉ"),
    ("ゐねゑ", "ｲﾈｴ"),
    # Long-vowel marks and dashes
    ("サトー", "ｻﾄ-"),
    ("ｻﾄｰ", "ｻﾄ-"),
    ("さとー", "ｻﾄ-"),
    ("サト—", "ｻﾄ-"),
    ("サト―", "ｻﾄ-"),
    ("サト−", "ｻﾄ-"),
    ("サト‐", "ｻﾄ-"),
    ("サト－", "ｻﾄ-"),
    ("サト～", "ｻﾄ-"),
    ("サト-", "ｻﾄ-"),
    # Middle dots in foreign names
    ("ジョン・スミス", "ｼﾞﾖﾝ ｽﾐｽ"),
    ("ｼﾞｮﾝ･ｽﾐｽ", "ｼﾞﾖﾝ ｽﾐｽ"),
    ("ｼﾞﾖﾝ･ｽﾐｽ", "ｼﾞﾖﾝ ｽﾐｽ"),
    ("ジョン · スミス", "ｼﾞﾖﾝ ｽﾐｽ"),
    ("ｼﾞﾖﾝ.ｽﾐｽ", "ｼﾞﾖﾝ.ｽﾐｽ"),
    # Romaji and digits
    ("john smith", "JOHN SMITH"),
    ("JOHN SMITH", "JOHN SMITH"),
    ("Ｊｏｈｎ　Ｓｍｉｔｈ", "JOHN SMITH"),
    ("mary-jane o.neil", "MARY-JANE O.NEIL"),
    ("ヤマダ１２３", "ﾔﾏﾀﾞ123"),
    ("ヤマダ/タロウ", "ﾔﾏﾀﾞ/ﾀﾛｳ"),
    # Spaces of every kind
    ("  やまだ\t\tたろう  ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
    ("ヤマダ　 　タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
    ("\u3000ヤマダ\nタロウ\u3000", "ﾔﾏﾀﾞ ﾀﾛｳ"),
    ("ﾔﾏﾀﾞ\u00a0ﾀﾛｳ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
]

COMPANY_NAMES = [
    # 株式会社 at the start, in every spelling
    ("株式会社やまだしょうじ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("株式会社 ヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("カブシキガイシャヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("かぶしきがいしゃ やまだしょうじ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("ｶﾌﾞｼｷｶﾞｲｼﾔ ﾔﾏﾀﾞｼﾖｳｼﾞ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("ｶﾌﾞｼｷｶﾞｲｼｬ ﾔﾏﾀﾞｼｮｳｼﾞ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("カブシキカイシャ ヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("(株)ヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("（株）ヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("㈱ヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("㍿ヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("(ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("（カ）ヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("ｶ) ﾔﾏﾀﾞｼﾖｳｼﾞ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("(カブシキガイシャ)ヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    # In the middle
    ("やまだ株式会社とうきょう", "ﾔﾏﾀﾞ(ｶ)ﾄｳｷﾖｳ"),
    ("ヤマダ カブシキガイシャ トウキョウ", "ﾔﾏﾀﾞ(ｶ)ﾄｳｷﾖｳ"),
    ("ﾔﾏﾀﾞ (ｶ) ﾄｳｷﾖｳ", "ﾔﾏﾀﾞ(ｶ)ﾄｳｷﾖｳ"),
    ("ヤマダ㈱トウキョウ", "ﾔﾏﾀﾞ(ｶ)ﾄｳｷﾖｳ"),
    # At the end
    ("やまだしょうじ株式会社", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ"),
    ("ヤマダショウジ カブシキガイシャ", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ"),
    ("ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ)", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ"),
    ("ﾔﾏﾀﾞｼﾖｳｼﾞ (ｶ", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ"),
    ("ヤマダショウジ（株）", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ"),
    # Several designations; the Joyo Bank example ○×(カ)△□(エイ
    ("ヤマダ株式会社チバ営業所", "ﾔﾏﾀﾞ(ｶ)ﾁﾊﾞ(ｴｲ"),
    ("ﾔﾏﾀﾞ(ｶ)ﾁﾊﾞ ｼｭｯﾁｮｳｼﾞｮ", "ﾔﾏﾀﾞ(ｶ)ﾁﾊﾞ(ｼﾕﾂ"),
    # Business terms are substituted in place
    ("さくら協同組合", "ｻｸﾗｷﾖｳｸﾐ"),
    ("サクラキョウドウクミアイ", "ｻｸﾗｷﾖｳｸﾐ"),
    ("(株)さくら 労働組合", "ｶ)ｻｸﾗ ﾛｳｸﾐ"),
    # Other entries of the table
    ("NPO法人さくら", "ﾄｸﾋ)ｻｸﾗ"),
    ("さくら相互会社", "ｻｸﾗ(ｿ"),
    ("弁護士法人さくら", "ﾍﾞﾝ)ｻｸﾗ"),
    ("さくら税理士法人", "ｻｸﾗ(ｾﾞｲ"),
    ("社会医療法人さくら", "ｲ)ｻｸﾗ"),
    ("国立大学法人さくら", "ﾀﾞｲ)ｻｸﾗ"),
    ("さくら (ﾀﾞｲﾋﾖｳ)", "ｻｸﾗ (ﾀﾞｲﾋﾖｳ)"),
]

# (kanji, a kana spelling people type, canonical abbreviation)
LEGAL_ENTITIES = [
    ("株式会社", "かぶしきがいしゃ", "ｶ"),
    ("有限会社", "ユウゲンガイシャ", "ﾕ"),
    ("合同会社", "ｺﾞｳﾄﾞｳｶﾞｲｼｬ", "ﾄﾞ"),
    ("合名会社", "ごうめいがいしゃ", "ﾒ"),
    ("合資会社", "ゴウシガイシャ", "ｼ"),
    ("医療法人", "イリョウホウジン", "ｲ"),
    ("医療法人社団", "いりょうほうじんしゃだん", "ｲ"),
    ("医療法人財団", "ｲﾘｮｳﾎｳｼﾞﾝｻﾞｲﾀﾞﾝ", "ｲ"),
    ("財団法人", "ザイダンホウジン", "ｻﾞｲ"),
    ("社団法人", "しゃだんほうじん", "ｼﾔ"),
    ("一般社団法人", "イッパンシャダンホウジン", "ｼﾔ"),
    ("一般財団法人", "いっぱんざいだんほうじん", "ｻﾞｲ"),
    ("公益社団法人", "ｺｳｴｷｼｬﾀﾞﾝﾎｳｼﾞﾝ", "ｼﾔ"),
    ("公益財団法人", "コウエキザイダンホウジン", "ｻﾞｲ"),
    ("学校法人", "がっこうほうじん", "ｶﾞｸ"),
    ("社会福祉法人", "シャカイフクシホウジン", "ﾌｸ"),
    ("特定非営利活動法人", "トクテイヒエイリカツドウホウジン", "ﾄｸﾋ"),
    ("宗教法人", "しゅうきょうほうじん", "ｼﾕｳ"),
    ("更生保護法人", "コウセイホゴホウジン", "ﾎｺﾞ"),
    ("独立行政法人", "どくりつぎょうせいほうじん", "ﾄﾞｸ"),
    ("司法書士法人", "シホウショシホウジン", "ｼﾎｳ"),
]


def _entity_cases() -> list[tuple[str, str]]:
    cases = []
    for kanji, kana, abbreviation in LEGAL_ENTITIES:
        for form in (kanji, kana, f"({abbreviation})"):
            cases += [
                (f"{form}さくら", f"{abbreviation})ｻｸﾗ"),
                (f"サクラ {form} トウキョウ", f"ｻｸﾗ({abbreviation})ﾄｳｷﾖｳ"),
                (f"ｻｸﾗ{form}", f"ｻｸﾗ({abbreviation}"),
            ]
        cases += [
            (f"{abbreviation}) ｻｸﾗ", f"{abbreviation})ｻｸﾗ"),
            (f"ｻｸﾗ ({abbreviation}", f"ｻｸﾗ({abbreviation}"),
        ]
    return cases


KANJI_SHORT_FORMS = [
    ("(株)", "ｶ"),
    ("(有)", "ﾕ"),
    ("(名)", "ﾒ"),
    ("(資)", "ｼ"),
    ("(同)", "ﾄﾞ"),
    ("(医)", "ｲ"),
    ("(財)", "ｻﾞｲ"),
    ("(一財)", "ｻﾞｲ"),
    ("(公財)", "ｻﾞｲ"),
    ("(社)", "ｼﾔ"),
    ("(一社)", "ｼﾔ"),
    ("(公社)", "ｼﾔ"),
    ("(学)", "ｶﾞｸ"),
    ("(福)", "ﾌｸ"),
    ("(宗)", "ｼﾕｳ"),
    ("(特非)", "ﾄｸﾋ"),
    ("㈲", "ﾕ"),
    ("㈴", "ﾒ"),
    ("㈾", "ｼ"),
    ("㈶", "ｻﾞｲ"),
    ("㈳", "ｼﾔ"),
    ("㈻", "ｶﾞｸ"),
]

INVALID_NAMES = [
    ("山田太郎", "'山' (U+5C71"),
    ("やまだ太郎", "'太' (U+592A"),
    ("株式会社山田商事", "'山' (U+5C71"),
    ("ヤマダ&タロウ", "'&' (U+0026"),
    ("ヤマダ,タロウ", "',' (U+002C"),
    ("ヤマダ\\タロウ", "'\\\\' (U+005C"),
    ("「ヤマダ」", "'｢' (U+FF62"),
    ("ヤマダ😀", "(U+1F600"),
    ("ヤマダ\u200bタロウ", "(U+200B ZERO WIDTH SPACE)"),
    ("さゝき", "'ヽ' (U+30FD"),
    ("", "the name is empty"),
    ("   ", "the name is empty"),
    ("\u3000\t", "the name is empty"),
    ("ー", "has no kana, letter or digit"),
    ("()", "has no kana, letter or digit"),
    ("\ud800", "lone surrogate U+D800"),
    ("ヤマダ\udc00タロウ", "lone surrogate U+DC00"),
    ("株式会社", "more than its legal-entity designation"),
    ("ｶ)", "more than its legal-entity designation"),
    ("(株)(有)", "more than its legal-entity designation"),
    ("ヤ" * 257, "longer than 256 characters"),
]


class TestNormalizeZenginName:
    @pytest.mark.parametrize(("name", "expected"), PERSONAL_NAMES + COMPANY_NAMES)
    def test_real_world_names(self, name: str, expected: str) -> None:
        assert normalize_zengin_name(name) == expected

    @pytest.mark.parametrize(("name", "expected"), _entity_cases())
    def test_legal_entity_in_every_position_and_spelling(self, name: str, expected: str) -> None:
        assert normalize_zengin_name(name) == expected

    @pytest.mark.parametrize(("short_form", "abbreviation"), KANJI_SHORT_FORMS)
    def test_kanji_short_forms(self, short_form: str, abbreviation: str) -> None:
        assert normalize_zengin_name(f"{short_form}ｻｸﾗ") == f"{abbreviation})ｻｸﾗ"

    @pytest.mark.parametrize(("name", "message_part"), INVALID_NAMES)
    def test_refuses_what_zengin_cannot_hold(self, name: str, message_part: str) -> None:
        with pytest.raises(NameNormalizationError) as caught:
            normalize_zengin_name(name)

        assert message_part in caught.value.message

    def test_error_is_a_bad_request_naming_the_character(self) -> None:
        with pytest.raises(BadRequest) as caught:
            normalize_zengin_name("やまだ太郎")

        assert caught.value.status_code == 400
        assert caught.value.to_dict() == {
            "error": "invalid_name",
            "message": "'太' (U+592A CJK UNIFIED IDEOGRAPH-592A) cannot be written in a bank "
            "account holder name; give the reading in kana",
            "details": {"character": "太", "codepoint": "U+592A"},
        }

    def test_character_set_is_the_zengin_name_set(self) -> None:
        kana = "".join(chr(code) for code in range(0xFF71, 0xFF9E))

        assert kana[0] + kana[-1] == "ｱﾝ"
        assert frozenset(kana + "ﾞﾟ" + string.ascii_uppercase + string.digits + " ()-./") == (
            ZENGIN_CHARACTERS
        )

    def test_kanji_company_and_kana_abbreviation_are_equal(self) -> None:
        assert normalize_zengin_name("株式会社やまだしょうじ") == normalize_zengin_name("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")


def _match(declared: str, holder: str) -> NameMatch:
    result = match_names(declared, holder)
    assert match_names(holder, declared).decision == result.decision
    return result


class TestMatchNames:
    def test_identical_after_normalisation_is_a_match(self) -> None:
        result = _match("株式会社やまだしょうじ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")

        assert result == NameMatch(
            MatchDecision.MATCH,
            "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ",
            "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ",
            "the names are identical in Zengin form",
        )

    @pytest.mark.parametrize(
        ("declared", "holder"),
        [
            ("きゅうま しょうこ", "ｷﾕｳﾏ ｼﾖｳｺ"),
            ("ジョン・スミス", "ｼﾞﾖﾝ ｽﾐｽ"),
            ("john smith", "JOHN SMITH"),
            ("サトー", "ｻﾄｰ"),
            ("ヤマダショウジ（株）", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ"),
        ],
    )
    def test_spelling_variants_match(self, declared: str, holder: str) -> None:
        assert _match(declared, holder).decision == MatchDecision.MATCH

    @pytest.mark.parametrize(
        ("declared", "holder", "reason"),
        [
            ("やまだたろう", "ﾔﾏﾀﾞ ﾀﾛｳ", "the names differ only in spaces or periods"),
            ("ｼﾞﾖﾝ.ｽﾐｽ", "ジョン・スミス", "the names differ only in spaces or periods"),
            ("たろう やまだ", "ﾔﾏﾀﾞ ﾀﾛｳ", "the names have the same words in a different order"),
            ("SMITH JOHN", "john smith", "the names have the same words in a different order"),
            ("さとー", "ｻﾄｳ", "the names differ only in vowel length (long-vowel marks)"),
            ("おおの", "ｵﾉ", "the names differ only in vowel length (long-vowel marks)"),
            ("ｻｲﾄｳ ｺｳｲﾁ", "ｻｲﾄ- ｺ-ｲﾁ", "the names differ only in vowel length (long-vowel marks)"),
            ("やまざき", "ﾔﾏｻｷ", "the names differ only in voiced marks (ﾞ ﾟ)"),
            ("ばば", "ﾊﾊ", "the names differ only in voiced marks (ﾞ ﾟ)"),
            ("たなか はなこ", "ﾀﾅｶ ﾊﾅｴ", "the names differ in one character"),
            ("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "ﾕ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "the names differ in one character"),
        ],
    )
    def test_near_misses_go_to_review(self, declared: str, holder: str, reason: str) -> None:
        result = _match(declared, holder)

        assert result.decision == MatchDecision.REVIEW
        assert result.reason == reason

    def test_long_vowel_is_review_not_match(self) -> None:
        result = _match("ｻﾄｰ", "ｻﾄｳ")

        assert (result.decision, result.declared_normalized, result.holder_normalized) == (
            MatchDecision.REVIEW,
            "ｻﾄ-",
            "ｻﾄｳ",
        )

    @pytest.mark.parametrize(
        ("declared", "holder"),
        [
            ("やまだ たろう", "ｽｽﾞｷ ﾊﾅｺ"),
            ("ｱｲ", "ｱｷ"),
            ("ﾀﾅｶ ﾀﾛｳ", "ﾀﾅｶ ｼﾞﾛｳ"),
            ("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "ｶ)ｽｽﾞｷｼﾖｳｼﾞ"),
        ],
    )
    def test_different_people_are_a_mismatch(self, declared: str, holder: str) -> None:
        result = _match(declared, holder)

        assert (result.decision, result.reason) == (MatchDecision.MISMATCH, "the names differ")

    def test_unnormalisable_name_is_a_mismatch_not_an_error(self) -> None:
        result = _match("山田太郎", "ﾔﾏﾀﾞ ﾀﾛｳ")

        assert result == NameMatch(
            MatchDecision.MISMATCH,
            None,
            "ﾔﾏﾀﾞ ﾀﾛｳ",
            "declared name: '山' (U+5C71 CJK UNIFIED IDEOGRAPH-5C71) cannot be written in a "
            "bank account holder name; give the reading in kana",
        )

    def test_both_unnormalisable_names_are_reported(self) -> None:
        result = _match("", "\ud800")

        assert result.decision == MatchDecision.MISMATCH
        assert result.reason == (
            "declared name: the name is empty; "
            "holder name: the name is not valid text (lone surrogate U+D800)"
        )


# --- Properties -------------------------------------------------------------------------------

_NAME_ALPHABET = (
    "".join(chr(code) for code in range(0x3041, 0x3097))  # hiragana, small ones included
    + "".join(chr(code) for code in range(0x30A1, 0x30FB))  # katakana, small and ヷ-ヺ
    + "".join(chr(code) for code in range(0xFF66, 0xFFA0))  # half-width kana, ｰ ﾞ ﾟ
    + " \u3000\t"
    + "ーｰ-‐—−～"
    + "・･"
    + string.ascii_letters
)
_DESIGNATION_PIECES = ["株式会社", "(株)", "㈱", "カブシキガイシャ", "(ｶ)", "ｶ)", "(ｶ", "協同組合"]

plain_names = st.text(alphabet=_NAME_ALPHABET, max_size=24)
company_names = st.tuples(plain_names, st.sampled_from(_DESIGNATION_PIECES), plain_names).map(
    "".join
)
names = st.one_of(plain_names, company_names)
near_pairs = st.one_of(
    st.tuples(names, names),
    names.map(lambda name: (name, name.replace(" ", ""))),
    names.map(lambda name: (name, name + "ー")),
    names.map(lambda name: (name, name.replace("ﾞ", ""))),
    names.map(lambda name: (name, " ".join(reversed(name.split())))),
    names.map(lambda name: (name, name[1:])),
)


def _normalized_or_none(name: str) -> str | None:
    try:
        return normalize_zengin_name(name)
    except NameNormalizationError:
        return None


class TestProperties:
    @given(names)
    def test_normalisation_is_idempotent(self, name: str) -> None:
        normalized = _normalized_or_none(name)
        assume(normalized is not None)
        assert normalized is not None

        assert normalize_zengin_name(normalized) == normalized

    @given(names)
    def test_output_holds_only_zengin_characters(self, name: str) -> None:
        normalized = _normalized_or_none(name)
        assume(normalized is not None)
        assert normalized is not None

        assert set(normalized) <= ZENGIN_CHARACTERS
        assert normalized == normalized.strip()
        assert "  " not in normalized

    @given(near_pairs)
    def test_match_is_symmetric(self, pair: tuple[str, str]) -> None:
        first, second = pair

        assert match_names(first, second).decision == match_names(second, first).decision

    @given(names)
    def test_every_normalisable_name_matches_itself(self, name: str) -> None:
        assume(_normalized_or_none(name) is not None)

        assert match_names(name, name).decision == MatchDecision.MATCH
