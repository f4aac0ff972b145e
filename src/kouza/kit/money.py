"""Money is ``int`` yen, end to end.

The yen has no minor unit, so an amount is a plain Python ``int``; there is no float anywhere and
``Decimal`` only at parsing edges. :data:`PositiveYen` is the pydantic type for amounts that
callers send: strictly an integer (``1.0``, ``"100"`` and ``true`` are refused), at least ¥1, at
most :data:`MAX_AMOUNT_YEN`, which is far above any limit so that absurd values fail validation
rather than overflow a BIGINT.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import Field, StrictInt

MAX_AMOUNT_YEN = 1_000_000_000_000
"""¥1 trillion: the largest amount any input may carry (well inside a signed 64-bit integer)."""

PositiveYen = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_YEN, description="Amount in yen")]


def parse_yen(text: str) -> int:
    """Parse a human-typed amount such as ``"12,000"``, ``"¥300000"`` or ``"300000"``."""
    cleaned = text.strip().replace(",", "").replace("¥", "").replace("円", "").replace("_", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount in yen: {text!r}") from None
    if value != value.to_integral_value():
        raise ValueError(f"yen has no fractions: {text!r}")
    amount = int(value)
    if not 0 < amount <= MAX_AMOUNT_YEN:
        raise ValueError(f"amount must be between ¥1 and ¥{MAX_AMOUNT_YEN:,}: {text!r}")
    return amount


def format_yen(amount: int) -> str:
    """``-1234`` → ``"-¥1,234"``."""
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,}"
