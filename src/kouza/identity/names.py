"""Bank account holder names in Zengin form, and the name match between wallet and bank.

Why this exists
---------------
In the 2020 incident the wallet never compared the name of its (e-mail-only) holder with the
name on the bank account it charged from. kouza does, and the comparison has to be exact: a
bank holder name is stored by the bank in the Zengin character set (half-width katakana), while
the name a customer declares arrives in hiragana, full-width katakana, romaji, with small kana,
long-vowel marks and whatever spaces the keyboard produced. Both sides are brought to one
canonical Zengin string by :func:`normalize_zengin_name`, and :func:`match_names` accepts only
equality. Anything close but not equal goes to a person (``REVIEW``); a fuzzy score never
auto-accepts.

The pipeline (:func:`normalize_zengin_name`)
--------------------------------------------
1. **Valid text.** Lone surrogates (text that cannot be encoded) and inputs longer than
   :data:`MAX_INPUT_LENGTH` are refused. Zengin name fields hold 30 to 48 characters, so the
   limit only stops abuse, never a real name.
2. **Spacing voiced marks.** ``゛`` and ``゜`` become the combining marks before NFKC, because
   NFKC turns them into *space* + combining mark and would split ``カ゛`` into two words.
3. **NFKC** through ``jaconv.normalize``: full-width ASCII and digits become half-width,
   half-width kana become full-width (so every later step sees one form), ``㈱`` becomes
   ``(株)``, ``㍿`` becomes ``株式会社``, ideographic space becomes a space, ``①`` becomes
   ``1``. jaconv also folds the wave dashes ``〜`` ``～`` and several dashes to ``ー``/``-``.
4. **a-z to A-Z.** Only ASCII is upper-cased; ``str.upper`` would also rewrite letters that
   are not in the Zengin set (``ß`` to ``SS``) and hide them from the character check.
5. **Hiragana to katakana** (``jaconv.hira2kata``) and **small kana to large**
   (``jaconv.enlarge_smallkana`` plus a small table for what jaconv lacks: ``ヮ`` and the
   small katakana extensions ``ㇰ``-``ㇿ``). Zengin has no small kana: ``キュウ`` is ``ｷﾕｳ``,
   ``ッ`` is ``ﾂ``. Half-width small kana (``ｧ``-``ｯ``) were widened by NFKC and are covered.
6. **Long-vowel marks and dashes to ``-``.** ``ー``, ``ｰ``, ``‐``, ``‑``, ``‒``, ``–``, ``—``,
   ``―``, ``−``, ``－``, ``﹣``, ``─``, ``━``, ``〜``, ``～`` and the other dash look-alikes all
   become ASCII ``-``. Zengin has no long-vowel character (``ｰ`` is outside ``ｱ``-``ﾝ``); banks
   accept ``-`` and many print the long vowel as ``-``. One canonical character means
   ``サトー``, ``ｻﾄｰ`` and ``サト−`` are equal; a hyphen typed between two romaji words is the
   same character, so nothing has to guess which one was meant.
7. **Middle dot to space.** ``・``, ``･``, ``·`` and ``‧`` separate the parts of foreign names
   (``ジョン・スミス``). Zengin has no middle dot; banks tell customers to type a space instead
   (Keiyo Bank), and the space is also what separates family and given name in a holder name,
   so ``ｼﾞﾖﾝ ｽﾐｽ`` is the form most likely to be on the account. Some banks register ``.``
   instead; that difference is a ``REVIEW`` (separators), never a silent ``MATCH``.
8. **Full-width to half-width kana** (``jaconv.z2h``): ``ガ`` becomes ``ｶﾞ`` with the voiced
   mark as its own character, as Zengin stores it. Then the kana outside ``ｱ``-``ﾝ`` that have
   no half-width form are mapped by sound: ``ヰ`` to ``ｲ``, ``ヱ`` to ``ｴ``, ``ヲ``/``ｦ`` to
   ``ｵ`` (the Zengin name fields exclude ``ｦ``; PCA's table says "カナ(ヲと小文字を除く)"),
   ``ヷ``-``ヺ`` to ``ﾜﾞ ｲﾞ ｴﾞ ｵﾞ``; a combining mark NFKC could not compose is kept as
   ``ﾞ``/``ﾟ``.
9. **Spaces.** Every run of whitespace (ASCII, ideographic, tabs, newlines) becomes one ASCII
   space; the name is trimmed.
10. **Legal-entity designations** (below), repeated until nothing changes so that the result is
    idempotent.
11. **Character check.** Only :data:`ZENGIN_CHARACTERS` may remain: ``ｱ``-``ﾝ``, ``ﾞ``,
    ``ﾟ``, ``A``-``Z``, ``0``-``9``, space and ``( ) - . /``. Nothing is dropped silently: the
    first other character is named in a :class:`NameNormalizationError` (a kanji gets a hint to
    give the reading in kana). ``\\`` (yen sign in JIS X 0201), ``,`` and ``｢ ｣`` belong to the
    Zengin *data* character set but not to holder names: PCA's Zengin table lists only ``( ) -
    .`` for 受取人名 and reserves ``\\ ｢ ｣`` for EDI fields, and payroll systems reject ``,``
    (jinjer). ``/`` is kept because the project's specification (INCIDENT.md) and banks'
    holder-name rules (e.g. the Zengin basic protocol summary, MUFG) include it.
12. A name left empty, or with no kana, letter or digit at all (``-``, ``()``), is refused.

Legal-entity designations
-------------------------
Company names carry the kana abbreviation of their legal form in a position-dependent shape:
``ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ`` (start), ``ﾔﾏﾀﾞ(ｶ)ﾄｳｷﾖｳ`` (middle), ``ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ`` (end). A designation
is recognised when written as the kanji word (``株式会社``), its kana reading in any script
(``かぶしきがいしゃ``, ``カブシキガイシャ``, ``ｶﾌﾞｼｷｶﾞｲｼﾔ``), either of those in parentheses, the
kanji short form (``(株)``, ``㈱``) or the kana abbreviation with at least one parenthesis
(``(ｶ)``, ``ｶ)`` at the start, ``(ｶ`` at the end). Its position is decided by whether name
text stands before and after it, and it is rewritten in the canonical shape, with the spaces
next to it removed. A bare ``ｶ`` without parentheses is an ordinary kana, never a designation.

Table (法人略語 and 営業所略語 of the Zengin abbreviation table; ``ｼﾔ`` is ``シャ`` without small
kana): 株式会社 ｶ, 有限会社 ﾕ, 合名会社 ﾒ, 合資会社 ｼ, 合同会社 ﾄﾞ, 医療法人 / 医療法人社団 /
医療法人財団 / 社会医療法人 ｲ, 財団法人 / 一般財団法人 / 公益財団法人 ｻﾞｲ, 社団法人 / 一般社団法人
/ 公益社団法人 ｼﾔ, 宗教法人 ｼﾕｳ, 学校法人 ｶﾞｸ, 社会福祉法人 ﾌｸ, 相互会社 ｿ, 更生保護法人 ﾎｺﾞ,
特定非営利活動法人 (and NPO法人) ﾄｸﾋ, 独立行政法人 ﾄﾞｸ, 地方独立行政法人 ﾁﾄﾞｸ, 弁護士法人 ﾍﾞﾝ,
有限責任中間法人 / 無限責任中間法人 ﾁﾕｳ, 行政書士法人 ｷﾞﾖ, 司法書士法人 ｼﾎｳ, 税理士法人 ｾﾞｲ,
国立大学法人 / 公立大学法人 ﾀﾞｲ, 農事組合法人 ﾉｳ, 管理組合法人 ｶﾝﾘ, 社会保険労務士法人 ﾛｳﾑ,
営業所 ｴｲ, 出張所 ｼﾕﾂ.

The 事業略語 (business-term abbreviations) of the same table are substituted where they
stand, without parentheses: 協同組合 ｷﾖｳｸﾐ, 連合会 ﾚﾝ, 労働組合 ﾛｳｸﾐ, 共済組合 ｷﾖｳｻｲ, 生活協同組合
ｾｲｷﾖｳ, 漁業協同組合 ｷﾞﾖｷﾖｳ, 健康保険組合 ｹﾝﾎﾟ, 国民健康保険組合 ｺｸﾎ, and the others listed in
``_BUSINESS_TERMS``. I could not confirm that banks wrap them in parentheses, and substituting
in place is what the published converters do. 社会福祉協議会 ｼﾔｷﾖｳ is left out on purpose: a
maintained converter dropped it after it caused holder-name errors at banks.

Sources: Keiyo Bank, "入力できる文字"
https://www.keiyobank.co.jp/alpha_dbank/internet/typing.html (法人略語, 営業所略語, 事業略語,
middle dot to space, start/middle/end examples); Joyo Bank, "受取人名入力に関するご注意点"
https://www.joyobank.co.jp/j_help/1901/attention.html (``○×(カ)△□(エイ``); a municipal
payment rule's 別表 reproducing the Zengin table https://expydoc.com/doc/7181036 (医療法人社団,
社会医療法人, 一般/公益 社団/財団, ロウム, カンリ, チドク, 事業略語); PCA, "全銀協使用可能文字"
https://pca.jp/area_support/manual/kk/Z1sanko/z1_zengin.html (character set, no ``ヲ``, no small
kana); jinjer help centre https://jinjer-kyuyo.zendesk.com/hc/ja/articles/900002885563 (no
comma, no ``ー``, small kana written large); MUFG Biz FAQ
https://biz.corporate.bk.mufg.jp/faq/show/811 (``ド)`` for 合同会社).

Matching (:func:`match_names`)
------------------------------
``MATCH`` only when both normalised names are identical. ``REVIEW`` when they differ but are
equal under exactly one of these views, checked in this order (the first one found is the
reason):

* **separators**: equal after deleting every space and ``.`` (``ﾔﾏﾀﾞﾀﾛｳ`` / ``ﾔﾏﾀﾞ ﾀﾛｳ``);
* **word order**: the same words (split on space and ``.``) in another order
  (``ﾀﾛｳ ﾔﾏﾀﾞ`` / ``ﾔﾏﾀﾞ ﾀﾛｳ``, family and given name swapped);
* **vowel length**: equal after deleting separators and every length mark, that is, after a
  kana with a vowel (``ﾝ`` has none; ``ﾞ ﾟ`` keep the vowel of their kana): a ``-``, a vowel
  kana repeating that vowel, ``ｳ`` after an o-row kana and ``ｲ`` after an e-row kana
  (``ｻﾄ-`` / ``ｻﾄｳ`` / ``ｻﾄｵ``, ``ｵｵﾉ`` / ``ｵﾉ``, ``ｹｲｺ`` / ``ｹ-ｺ``);
* **voicing**: equal after deleting separators and every ``ﾞ`` and ``ﾟ``
  (``ﾔﾏｻﾞｷ`` / ``ﾔﾏｻｷ``);
* **one edit**: Levenshtein distance 1 between the normalised names (one character inserted,
  deleted or replaced; ``ﾞ`` counts as a character, as it does in Zengin) when both are at
  least 4 characters long; shorter names differ too much in proportion.

Everything else, including a name that cannot be normalised, is ``MISMATCH``; ``match_names``
never raises for bad input. Every rule applies the same transformation to both sides, so the
decision is symmetric.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import jaconv

from kouza.errors import BadRequest

MAX_INPUT_LENGTH: Final = 256
"""Longest input accepted, in code points, before any normalisation."""

LONG_VOWEL: Final = "-"
"""The one character every long-vowel mark and dash becomes."""

_HALF_WIDTH_KANA: Final = "".join(chr(code) for code in range(ord("ｱ"), ord("ﾝ") + 1))
_VOICED_MARK: Final = "ﾞ"
_SEMI_VOICED_MARK: Final = "ﾟ"

ZENGIN_CHARACTERS: Final = frozenset(
    _HALF_WIDTH_KANA
    + _VOICED_MARK
    + _SEMI_VOICED_MARK
    + string.ascii_uppercase
    + string.digits
    + " ()-./"
)
"""Characters allowed in a normalised holder name."""

_NAME_CHARACTERS: Final = frozenset(_HALF_WIDTH_KANA + string.ascii_uppercase + string.digits)


class NameNormalizationError(BadRequest):
    """The name cannot be written in the Zengin character set; the message says why."""

    code = "invalid_name"


# NFKC decomposes the spacing marks into a space plus the combining mark (``カ゛`` would become
# two words), so they are turned into the combining marks first and NFKC composes ``ガ``.
_SPACING_TO_COMBINING: Final = str.maketrans({"\u309b": "\u3099", "\u309c": "\u309a"})

_ASCII_UPPER: Final = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)

_DASHES: Final = (
    "\u30fc\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\u207b\u208b\u02d7\u058a"
    "\ufe58\ufe63\uff0d\u2500\u2501\u301c\uff5e\u2e3a\u2e3b"
)
_MIDDLE_DOTS: Final = "\u30fb\u00b7\u2027"

# jaconv.enlarge_smallkana covers ァィゥェォャュョッヵヶ (and hiragana); these it does not.
_SMALL_KANA_JACONV_LACKS: Final = dict(
    zip("ヮㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ", "ワクシストヌハヒフヘホムラリルレロ", strict=True)
)

_FULL_WIDTH_FIXES: Final = str.maketrans(
    {
        **dict.fromkeys(_DASHES, LONG_VOWEL),
        **dict.fromkeys(_MIDDLE_DOTS, " "),
        **_SMALL_KANA_JACONV_LACKS,
    }
)

# Kana with no half-width form, written by sound as banks do; ｦ is outside the name set.
_HALF_WIDTH_FIXES: Final = str.maketrans(
    {
        "ヰ": "ｲ",
        "ヱ": "ｴ",
        "ｦ": "ｵ",
        "ヷ": "ﾜﾞ",
        "ヸ": "ｲﾞ",
        "ヹ": "ｴﾞ",
        "ヺ": "ｵﾞ",
        "\u3099": _VOICED_MARK,
        "\u309a": _SEMI_VOICED_MARK,
    }
)


def _convert_characters(text: str) -> str:
    """Steps 2-8 of the pipeline: one character form, before spaces and designations."""
    text = jaconv.normalize(text.translate(_SPACING_TO_COMBINING), "NFKC")
    text = jaconv.enlarge_smallkana(jaconv.hira2kata(text.translate(_ASCII_UPPER)))
    text = jaconv.z2h(text.translate(_FULL_WIDTH_FIXES), kana=True, ascii=False, digit=False)
    return text.translate(_HALF_WIDTH_FIXES)


def _collapse_spaces(text: str) -> str:
    return " ".join(text.split())


# --- Legal-entity designations ----------------------------------------------------------------

# (abbreviation, kanji spellings, kana readings); readings go through the same conversion as
# names, so ``シャ`` here is ``ｼﾔ`` at run time and the table stays readable.
_DESIGNATIONS: Final[tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] = (
    ("カ", ("株式会社", "(株)"), ("カブシキガイシャ", "カブシキカイシャ")),
    ("ユ", ("有限会社", "(有)"), ("ユウゲンガイシャ", "ユウゲンカイシャ")),
    ("メ", ("合名会社", "(名)"), ("ゴウメイガイシャ", "ゴウメイカイシャ")),
    ("シ", ("合資会社", "(資)"), ("ゴウシガイシャ", "ゴウシカイシャ")),
    ("ド", ("合同会社", "(同)"), ("ゴウドウガイシャ", "ゴウドウカイシャ")),
    ("イ", ("医療法人", "(医)"), ("イリョウホウジン",)),
    ("イ", ("医療法人社団",), ("イリョウホウジンシャダン",)),
    ("イ", ("医療法人財団",), ("イリョウホウジンザイダン",)),
    ("イ", ("社会医療法人",), ("シャカイイリョウホウジン",)),
    ("ザイ", ("財団法人", "(財)"), ("ザイダンホウジン",)),
    ("ザイ", ("一般財団法人", "(一財)"), ("イッパンザイダンホウジン",)),
    ("ザイ", ("公益財団法人", "(公財)"), ("コウエキザイダンホウジン",)),
    ("シャ", ("社団法人", "(社)"), ("シャダンホウジン",)),
    ("シャ", ("一般社団法人", "(一社)"), ("イッパンシャダンホウジン",)),
    ("シャ", ("公益社団法人", "(公社)"), ("コウエキシャダンホウジン",)),
    ("シュウ", ("宗教法人", "(宗)"), ("シュウキョウホウジン",)),
    ("ガク", ("学校法人", "(学)"), ("ガッコウホウジン",)),
    ("フク", ("社会福祉法人", "(福)"), ("シャカイフクシホウジン",)),
    ("ソ", ("相互会社", "(相)"), ("ソウゴガイシャ", "ソウゴカイシャ")),
    ("ホゴ", ("更生保護法人",), ("コウセイホゴホウジン",)),
    ("トクヒ", ("特定非営利活動法人", "(特非)", "NPO法人"), ("トクテイヒエイリカツドウホウジン",)),
    ("ドク", ("独立行政法人", "(独)"), ("ドクリツギョウセイホウジン",)),
    ("チドク", ("地方独立行政法人",), ("チホウドクリツギョウセイホウジン",)),
    ("ベン", ("弁護士法人", "(弁)"), ("ベンゴシホウジン",)),
    ("チュウ", ("有限責任中間法人",), ("ユウゲンセキニンチュウカンホウジン",)),
    ("チュウ", ("無限責任中間法人",), ("ムゲンセキニンチュウカンホウジン",)),
    ("ギョ", ("行政書士法人",), ("ギョウセイショシホウジン",)),
    ("シホウ", ("司法書士法人",), ("シホウショシホウジン",)),
    ("ゼイ", ("税理士法人", "(税)"), ("ゼイリシホウジン",)),
    ("ダイ", ("国立大学法人",), ("コクリツダイガクホウジン",)),
    ("ダイ", ("公立大学法人",), ("コウリツダイガクホウジン",)),
    ("ノウ", ("農事組合法人",), ("ノウジクミアイホウジン",)),
    ("カンリ", ("管理組合法人",), ("カンリクミアイホウジン",)),
    ("ロウム", ("社会保険労務士法人",), ("シャカイホケンロウムシホウジン",)),
    ("エイ", ("営業所",), ("エイギョウショ", "エイギョウジョ")),
    ("シュツ", ("出張所",), ("シュッチョウショ", "シュッチョウジョ")),
)

_BUSINESS_TERMS: Final[tuple[tuple[str, str, str], ...]] = (
    ("キョウクミ", "協同組合", "キョウドウクミアイ"),
    ("レン", "連合会", "レンゴウカイ"),
    ("カイジョウ", "海上火災保険", "カイジョウカサイホケン"),
    ("カサイ", "火災海上保険", "カサイカイジョウホケン"),
    ("ケンポ", "健康保険組合", "ケンコウホケンクミアイ"),
    ("コクホ", "国民健康保険組合", "コクミンケンコウホケンクミアイ"),
    ("コクホレン", "国民健康保険団体連合会", "コクミンケンコウホケンダンタイレンゴウカイ"),
    ("コウネン", "厚生年金基金", "コウセイネンキンキキン"),
    ("ロウクミ", "労働組合", "ロウドウクミアイ"),
    ("ショクハンキョウ", "食糧販売協同組合", "ショクリョウハンバイキョウドウクミアイ"),
    ("ノウキョウレン", "農業協同組合連合会", "ノウギョウキョウドウクミアイレンゴウカイ"),
    (
        "キョウサイレン",
        "共済農業協同組合連合会",
        "キョウサイノウギョウキョウドウクミアイレンゴウカイ",
    ),
    ("ケイザイレン", "経済農業協同組合連合会", "ケイザイノウギョウキョウドウクミアイレンゴウカイ"),
    ("ギョレン", "漁業協同組合連合会", "ギョギョウキョウドウクミアイレンゴウカイ"),
    ("ギョキョウ", "漁業協同組合", "ギョギョウキョウドウクミアイ"),
    ("キョウサイ", "共済組合", "キョウサイクミアイ"),
    (
        "コクキョウレン",
        "国家公務員共済組合連合会",
        "コッカコウムインキョウサイクミアイレンゴウカイ",
    ),
    ("セイメイ", "生命保険", "セイメイホケン"),
    ("シャホ", "社会保険診療報酬支払基金", "シャカイホケンシンリョウホウシュウシハライキキン"),
    ("ジュウクミ", "従業員組合", "ジュウギョウインクミアイ"),
    ("セイキョウ", "生活協同組合", "セイカツキョウドウクミアイ"),
)


def _spellings(kanji: Iterable[str], readings: Iterable[str]) -> list[str]:
    return [*kanji, *(_convert_characters(reading) for reading in readings)]


def _alternation(words: Iterable[str]) -> str:
    # Longest first, so that 一般社団法人 wins over 社団法人 and ｼﾔ over ｼ at the same position.
    return "|".join(re.escape(word) for word in sorted(set(words), key=len, reverse=True))


def _designation_words() -> dict[str, str]:
    words: dict[str, str] = {}
    for abbreviation, kanji, readings in _DESIGNATIONS:
        for spelling in _spellings(kanji, readings):
            words[spelling] = _convert_characters(abbreviation)
            if not spelling.startswith("("):
                words[f"({spelling})"] = _convert_characters(abbreviation)
    return words


_DESIGNATION_WORDS: Final = _designation_words()
_ABBREVIATIONS: Final = _alternation(_DESIGNATION_WORDS.values())

# A kana abbreviation needs a parenthesis to be one: ``(ｶ)`` anywhere, ``ｶ)`` only at the start,
# ``(ｶ`` only at the end. The spaces around a designation are part of the match and disappear.
_DESIGNATION_PATTERN: Final = re.compile(
    rf" ?(?:(?P<word>{_alternation(_DESIGNATION_WORDS)})"
    rf"|\((?P<middle>{_ABBREVIATIONS})\)"
    rf"|^(?P<head>{_ABBREVIATIONS})\)"
    rf"|\((?P<tail>{_ABBREVIATIONS})\Z) ?"
)

_BUSINESS_WORDS: Final = {
    spelling: _convert_characters(abbreviation)
    for abbreviation, kanji, reading in _BUSINESS_TERMS
    for spelling in _spellings((kanji,), (reading,))
}
_BUSINESS_PATTERN: Final = re.compile(_alternation(_BUSINESS_WORDS))


def _abbreviation(match: re.Match[str]) -> str:
    word = match.group("word")
    if word is not None:
        return _DESIGNATION_WORDS[word]
    return match.group("middle") or match.group("head") or match.group("tail")


def _shaped(abbreviation: str, *, text_before: bool, text_after: bool) -> str:
    if not text_before:
        return f"{abbreviation})"
    if not text_after:
        return f"({abbreviation}"
    return f"({abbreviation})"


def _shape_designations(text: str) -> str:
    """Rewrite every designation in its canonical start/middle/end shape."""
    matches = list(_DESIGNATION_PATTERN.finditer(text))
    if not matches:
        return text
    bounds = [0, *(edge for match in matches for edge in match.span()), len(text)]
    gaps = [text[start:end] for start, end in zip(bounds[::2], bounds[1::2], strict=True)]
    if not any(gap.strip() for gap in gaps):
        raise NameNormalizationError("a name needs more than its legal-entity designation")
    shaped = [gaps[0]]
    for index, match in enumerate(matches):
        before = any(gap.strip() for gap in gaps[: index + 1])
        after = any(gap.strip() for gap in gaps[index + 1 :])
        shaped += [_shaped(_abbreviation(match), text_before=before, text_after=after)]
        shaped += [gaps[index + 1]]
    return "".join(shaped)


def _abbreviate_business_terms(text: str) -> str:
    return _BUSINESS_PATTERN.sub(lambda match: _BUSINESS_WORDS[match.group()], text)


def _abbreviate(text: str) -> str:
    """Apply both abbreviation tables until the text stops changing."""
    # Every change shortens the text (a word becomes its abbreviation, a parenthesis or space
    # goes), so the loop ends; bounding it by the length makes that obvious. Repeating is needed
    # because an abbreviation can join its neighbours into a new match, and one pass would then
    # not be idempotent.
    for _ in range(len(text) + 1):
        shorter = _abbreviate_business_terms(_shape_designations(text))
        if shorter == text:
            break
        text = shorter
    return text


# --- Checks -------------------------------------------------------------------------------------


def _require_valid_text(name: str) -> None:
    if len(name) > MAX_INPUT_LENGTH:
        raise NameNormalizationError(
            f"the name is longer than {MAX_INPUT_LENGTH} characters", length=len(name)
        )
    for char in name:
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise NameNormalizationError(
                f"the name is not valid text (lone surrogate U+{ord(char):04X})",
                character=f"U+{ord(char):04X}",
            )


def _describe(char: str) -> str:
    description = unicodedata.name(char, "unnamed character")
    return f"{char!r} (U+{ord(char):04X} {description})"


def _require_zengin_characters(name: str) -> None:
    for char in name:
        if char in ZENGIN_CHARACTERS:
            continue
        hint = "give the reading in kana" if _is_kanji(char) else "use kana, A-Z, 0-9"
        raise NameNormalizationError(
            f"{_describe(char)} cannot be written in a bank account holder name; {hint}",
            character=char,
            codepoint=f"U+{ord(char):04X}",
        )


def _is_kanji(char: str) -> bool:
    return unicodedata.name(char, "").startswith("CJK")


def _require_name_characters(name: str) -> None:
    if not name:
        raise NameNormalizationError("the name is empty")
    if not any(char in _NAME_CHARACTERS for char in name):
        raise NameNormalizationError(f"the name {name!r} has no kana, letter or digit")


def normalize_zengin_name(name: str) -> str:
    """Return ``name`` in canonical Zengin form or raise :class:`NameNormalizationError`."""
    _require_valid_text(name)
    normalized = _collapse_spaces(_abbreviate(_collapse_spaces(_convert_characters(name))))
    # Characters first, so that a kanji name is reported as kanji rather than as "no kana".
    _require_zengin_characters(normalized)
    _require_name_characters(normalized)
    return normalized


# --- Matching -----------------------------------------------------------------------------------


class MatchDecision(StrEnum):
    """Outcome of comparing a declared name with a bank account holder name."""

    MATCH = "match"
    """Identical after normalisation; the only outcome that may proceed without a person."""

    REVIEW = "review"
    """A near miss (see the module docstring); a person decides, it is never auto-accepted."""

    MISMATCH = "mismatch"
    """Different names, or a name that cannot be normalised; refused."""


@dataclass(frozen=True)
class NameMatch:
    """The decision, both normalised names (``None`` if not normalisable) and why."""

    decision: MatchDecision
    declared_normalized: str | None
    holder_normalized: str | None
    reason: str


_SEPARATORS: Final = re.compile(r"[ .]+")
_VOWEL_ROWS: Final = {
    "a": "ｱｶｻﾀﾅﾊﾏﾔﾗﾜ",
    "i": "ｲｷｼﾁﾆﾋﾐﾘ",
    "u": "ｳｸｽﾂﾇﾌﾑﾕﾙ",
    "e": "ｴｹｾﾃﾈﾍﾒﾚ",
    "o": "ｵｺｿﾄﾉﾎﾓﾖﾛ",
}
_VOWEL_OF: Final = {kana: vowel for vowel, row in _VOWEL_ROWS.items() for kana in row}
_LENGTHENERS: Final = {"a": "ｱ-", "i": "ｲ-", "u": "ｳ-", "e": "ｴｲ-", "o": "ｵｳ-"}


def _without_separators(name: str) -> str:
    return _SEPARATORS.sub("", name)


def _sorted_words(name: str) -> str:
    return " ".join(sorted(_SEPARATORS.split(name)))


def _without_vowel_length(name: str) -> str:
    kept: list[str] = []
    vowel: str | None = None
    for char in _without_separators(name):
        if vowel is not None and char in _LENGTHENERS[vowel]:
            continue
        kept.append(char)
        if char not in (_VOICED_MARK, _SEMI_VOICED_MARK):
            vowel = _VOWEL_OF.get(char)
    return "".join(kept)


def _without_voicing(name: str) -> str:
    return _without_separators(name).replace(_VOICED_MARK, "").replace(_SEMI_VOICED_MARK, "")


_REVIEW_FOLDS: Final[tuple[tuple[Callable[[str], str], str], ...]] = (
    (_without_separators, "the names differ only in spaces or periods"),
    (_sorted_words, "the names have the same words in a different order"),
    (_without_vowel_length, "the names differ only in vowel length (long-vowel marks)"),
    (_without_voicing, "the names differ only in voiced marks (ﾞ ﾟ)"),
)
_MIN_LENGTH_FOR_ONE_EDIT: Final = 4


def _one_edit_apart(first: str, second: str) -> bool:
    shorter, longer = sorted((first, second), key=len)
    if len(longer) - len(shorter) > 1:
        return False
    prefix = 0
    while prefix < len(shorter) and shorter[prefix] == longer[prefix]:
        prefix += 1
    skip = 1 if len(shorter) == len(longer) else 0
    return shorter[prefix + skip :] == longer[prefix + 1 :]


def _review_reason(declared: str, holder: str) -> str | None:
    for fold, reason in _REVIEW_FOLDS:
        if fold(declared) == fold(holder):
            return reason
    long_enough = min(len(declared), len(holder)) >= _MIN_LENGTH_FOR_ONE_EDIT
    if long_enough and _one_edit_apart(declared, holder):
        return "the names differ in one character"
    return None


def _try_normalize(name: str) -> tuple[str | None, str | None]:
    try:
        return normalize_zengin_name(name), None
    except NameNormalizationError as error:
        return None, error.message


def match_names(declared: str, holder: str) -> NameMatch:
    """Compare a declared name with a bank holder name; only exact equality is a MATCH."""
    declared_normalized, declared_error = _try_normalize(declared)
    holder_normalized, holder_error = _try_normalize(holder)
    if declared_normalized is None or holder_normalized is None:
        errors = (("declared", declared_error), ("holder", holder_error))
        reason = "; ".join(f"{side} name: {error}" for side, error in errors if error)
        return NameMatch(MatchDecision.MISMATCH, declared_normalized, holder_normalized, reason)
    if declared_normalized == holder_normalized:
        reason = "the names are identical in Zengin form"
        return NameMatch(MatchDecision.MATCH, declared_normalized, holder_normalized, reason)
    review_reason = _review_reason(declared_normalized, holder_normalized)
    if review_reason is not None:
        return NameMatch(
            MatchDecision.REVIEW, declared_normalized, holder_normalized, review_reason
        )
    reason = "the names differ"
    return NameMatch(MatchDecision.MISMATCH, declared_normalized, holder_normalized, reason)
