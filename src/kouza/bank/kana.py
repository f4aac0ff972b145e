"""Holder identity as the bank compares it: kanji name and birth date, kana as a second check.

**Kanji name and birth date.** An operator that proofed its customer's identity (kouza's eKYC:
the JPKI certificate or the IC chip) sends the name and birth date read from the card; the bank
compares them with the holder's record (:func:`compare_holder`): the name after NFKC, removal of
spaces and variation selectors, and folding of old character forms; the birth date exactly.

**Kana.** The 2020 forms compared the typed kana name with the name on the account after folding the
ways people type kana (hiragana, full-width katakana, small kana, ideographic spaces). That is
all this does; it is deliberately not the wallet's richer name matcher (the bank imports nothing
from the wallet side). A name that still contains a character outside the Zengin holder-name set
is refused as invalid input.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import jaconv

from kouza.bank.errors import InvalidBankData
from kouza.bank.models import AttemptOutcome, Customer

_ZENGIN = re.compile(r"[ｱ-ﾝﾞﾟA-Z0-9 ()\-./]+")
_SPACES = re.compile(r"\s+")
_LONG_VOWELS = str.maketrans({"ー": "-", "ｰ": "-", "−": "-", "－": "-", "‐": "-"})


def to_zengin_kana(name: str) -> str:
    """``name`` in Zengin half-width kana (``やまだ たろう`` → ``ﾔﾏﾀﾞ ﾀﾛｳ``); raises if not kana."""
    folded = jaconv.normalize(name).translate(_LONG_VOWELS)
    folded = jaconv.enlarge_smallkana(jaconv.hira2kata(folded))
    folded = jaconv.z2h(folded, kana=True, ascii=True, digit=True).upper()
    folded = _SPACES.sub(" ", folded).strip()
    if not folded or not _ZENGIN.fullmatch(folded):
        raise InvalidBankData("the holder name must be written in kana (Zengin characters)")
    return folded


def same_holder_name(typed: str, on_file: str) -> bool:
    """Whether a typed kana name equals the name on the account (after folding both)."""
    try:
        return to_zengin_kana(typed) == to_zengin_kana(on_file)
    except InvalidBankData:
        return False


# --- kanji names (what the wallet's eKYC read from the card) --------------------------------

_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_WHITESPACE = re.compile(r"\s+")
# Old (旧字体) and variant forms that appear in registered names, folded to the common form a
# bank's account-opening record most likely holds. Curated and deliberately small: only
# one-to-one pairs that the 常用漢字表 / 人名用漢字 tables list as the same character. The
# ja-itaiji dictionary was evaluated and rejected (ADR 0023): it pairs unrelated characters
# (濱 with 頻, 澤 with 途, 埼 with 崎), which would let a different name pass.
_OLD_FORMS = str.maketrans(
    {
        "髙": "高",
        "﨑": "崎",
        "嵜": "崎",
        "邊": "辺",
        "邉": "辺",
        "齋": "斎",
        "齊": "斉",
        "濱": "浜",
        "濵": "浜",
        "澤": "沢",
        "廣": "広",
        "櫻": "桜",
        "德": "徳",
        "國": "国",
        "𠮷": "吉",
        "壽": "寿",
        "惠": "恵",
        "榮": "栄",
        "眞": "真",
        "實": "実",
        "藏": "蔵",
        "瀨": "瀬",
        "淺": "浅",
        "會": "会",
        "學": "学",
        "龜": "亀",
        "圓": "円",
        "鐵": "鉄",
        "黑": "黒",
        "縣": "県",
        "萬": "万",
        "與": "与",
        "彌": "弥",
        "晉": "晋",
        "靜": "静",
        "淸": "清",
        "戶": "戸",
        "增": "増",
        "步": "歩",
        "從": "従",
        "傳": "伝",
        "豐": "豊",
        "禮": "礼",
        "稻": "稲",
        "峯": "峰",
        "槇": "槙",
    }
)


def comparable_kanji_name(name: str) -> str:
    """``name`` as the bank compares it: NFKC, variation selectors and spaces removed, old
    character forms folded (``髙橋　﨑子`` and ``高橋 崎子`` compare equal)."""
    folded = unicodedata.normalize("NFKC", name)
    folded = _VARIATION_SELECTORS.sub("", folded)
    return _WHITESPACE.sub("", folded).translate(_OLD_FORMS)


def same_kanji_name(presented: str, on_file: str) -> bool:
    """Whether the name the wallet's eKYC verified equals the holder's kanji name on file."""
    presented_form = comparable_kanji_name(presented)
    return bool(presented_form) and presented_form == comparable_kanji_name(on_file)


def compare_holder(
    customer: Customer,
    *,
    name: str | None,
    kana: str | None,
    birth_date: date | None,
    birth_date_required: bool,
) -> AttemptOutcome | None:
    """The first way the presented identity differs from the holder's record, or None.

    ``name`` (kanji, from the customer's card as the operator verified it) and ``birth_date``
    decide; a kana reading, when given, is one more check that must also hold and is never
    enough alone when a name is presented. Without a name (a 2020-style form), the kana and,
    where the bank asks for it, the birth date are all there is to compare.
    """
    if kana is not None and not same_holder_name(kana, customer.name_kana):
        return AttemptOutcome.NAME_MISMATCH
    if name is not None and not same_kanji_name(name, customer.name_kanji):
        return AttemptOutcome.NAME_MISMATCH
    if (birth_date_required or name is not None) and birth_date != customer.birth_date:
        return AttemptOutcome.BIRTH_DATE_MISMATCH
    return None
