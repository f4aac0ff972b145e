"""Real Japanese bank and branch codes (全銀コード), from the ``zengin-code`` package.

The package ships the current list of every bank (4 digits) and its branches (3 digits) with
names and kana; its version is the list's date (``1.1.0.YYYYMMDD``, pinned in pyproject.toml).
A code is valid when it is in that list: a four-digit string that names no bank is refused with
:class:`UnknownBankCode` (422) wherever a code is entered — the wallet API, the call centre, the
CLI, the bank system's own records and the simulator's scenarios — and names shown next to a
code come from here. The list is loaded on first use (about 80 ms, 8 MB of JSON).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

from kouza.errors import Unprocessable


class UnknownBankCode(Unprocessable):
    """A bank or branch code that is not in the Zengin list."""

    code = "unknown_bank_code"


@dataclass(frozen=True)
class ZenginBank:
    """One bank of the list."""

    code: str
    name: str
    kana: str


@dataclass(frozen=True)
class ZenginBranch:
    """One branch of a bank."""

    bank_code: str
    code: str
    name: str
    kana: str


@cache
def _banks() -> dict[str, Any]:
    import zengin_code  # type: ignore[import-untyped]  # loads the whole list at import

    return dict(zengin_code.Bank.all)


def list_date() -> str:
    """The date of the list in use (``YYYYMMDD``)."""
    import zengin_code

    return str(zengin_code.__version__).rsplit(".", 1)[-1]


def find_bank(code: str) -> ZenginBank | None:
    """The bank with ``code``, or ``None``."""
    found = _banks().get(code)
    return None if found is None else ZenginBank(found.code, found.name, found.kana)


def bank(code: str, *, field: str = "bank_code") -> ZenginBank:
    """The bank with ``code``; :class:`UnknownBankCode` if the list has none."""
    found = find_bank(code)
    if found is None:
        raise UnknownBankCode(f"{code!r} is not a bank code in the Zengin list", field=field)
    return found


def branch(bank_code: str, code: str, *, field: str = "branch") -> ZenginBranch:
    """Branch ``code`` of bank ``bank_code``; :class:`UnknownBankCode` if either is unknown."""
    bank(bank_code)
    found = _banks()[bank_code].branches.get(code)
    if found is None:
        raise UnknownBankCode(
            f"{code!r} is not a branch code of bank {bank_code} in the Zengin list", field=field
        )
    return ZenginBranch(bank_code, found.code, found.name, found.kana)


def branches(bank_code: str) -> list[ZenginBranch]:
    """Every branch of bank ``bank_code``, by code."""
    bank(bank_code)
    return [
        ZenginBranch(bank_code, b.code, b.name, b.kana)
        for b in _banks()[bank_code].branches.values()
    ]


def home_branch(bank_code: str) -> str:
    """A real branch to open accounts at in development and the simulator: 100 where the bank
    has one (本店 at many regional banks), 018 at ゆうちょ, else the bank's first listed one."""
    codes = [branch.code for branch in branches(bank_code)]
    return next((code for code in ("100", "018") if code in codes), codes[0])


def bank_name(code: str) -> str:
    """The bank's name for display (``""`` for a code the list does not have)."""
    found = find_bank(code)
    return "" if found is None else found.name


def same_name(listed: str, given: str) -> bool:
    """Whether ``given`` names the listed bank (width-insensitive; ``銀行`` may be added)."""

    def fold(text: str) -> str:
        return unicodedata.normalize("NFKC", text).strip()

    return fold(given) in (fold(listed), fold(listed) + "銀行")
