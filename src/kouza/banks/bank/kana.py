"""Holder names as the bank compares them: Zengin half-width katakana, exact equality.

The 2020 forms compared the typed kana name with the name on the account after folding the
ways people type kana (hiragana, full-width katakana, small kana, ideographic spaces). That is
all this does; it is deliberately not the wallet's richer name matcher (the bank imports nothing
from the wallet side). A name that still contains a character outside the Zengin holder-name set
is refused as invalid input.
"""

from __future__ import annotations

import re

import jaconv

from kouza.banks.bank.errors import InvalidBankData

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
