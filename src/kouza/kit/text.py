"""Text that callers send: no control characters, no bidirectional overrides.

A NUL in a text field used to reach the database (PostgreSQL refuses it: a 500; SQLite stores
it), and a U+202E RIGHT-TO-LEFT OVERRIDE in a payee name or a transfer message can make "evil"
display as "live" to an operator or a victim. Every string a caller sends is therefore one of:

* :data:`Text` — single line: no C0 or C1 control character (U+0000–U+001F, U+007F–U+009F,
  so no tab or newline either) and no bidi embedding, override or isolate (U+202A–U+202E,
  U+2066–U+2069);
* :data:`Note` — multi-line free text (case notes): the same, except that line feed and tab
  are allowed (carriage return is not: a newline is ``\\n``).

Both are plain ``pattern`` constraints, so the OpenAPI documents them exactly and a refusal is an
ordinary 422 ``validation_error``. :func:`unsafe_character` is the same check for the query and
path strings that no schema covers (``kouza.kit.web.SafeText`` middleware).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

_BIDI = r"\u202A-\u202E\u2066-\u2069"
SINGLE_LINE_PATTERN = r"^[^\x00-\x1F\x7F-\x9F" + _BIDI + r"]*$"
MULTI_LINE_PATTERN = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F" + _BIDI + r"]*$"

Text = Annotated[str, Field(pattern=SINGLE_LINE_PATTERN)]
"""A single line of text from a caller (see the module docstring)."""

Note = Annotated[str, Field(pattern=MULTI_LINE_PATTERN)]
"""Multi-line free text from a caller: line feeds and tabs allowed."""

Email = Annotated[str, Field(pattern=SINGLE_LINE_PATTERN, max_length=320,
                             json_schema_extra={"format": "email"})]
"""An e-mail address as :data:`Text`; documented as ``format: email`` so that clients (and
the fuzzer) know what the service's e-mail check will accept."""

_UNSAFE = re.compile(r"[\x00-\x1F\x7F-\x9F" + _BIDI + "]")

PROBLEM = "control characters and bidirectional overrides are not allowed"
"""What a refusal says (instead of quoting the pattern)."""


def unsafe_character(value: str) -> str | None:
    """The first forbidden character of ``value`` as ``U+XXXX``, or ``None``."""
    found = _UNSAFE.search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def printable(value: str) -> str:
    """``value`` with every forbidden character replaced by ``?`` (safe to echo in an error)."""
    return _UNSAFE.sub("?", value)


def _check_nested(value: Any, path: str = "") -> None:
    if isinstance(value, str):
        if (found := unsafe_character(value)) is not None:
            raise ValueError(f"{path or 'value'}: {PROBLEM} ({found})")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_nested(key, f"{path}.{key}" if path else "key")
            _check_nested(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_nested(item, f"{path}[{index}]")


def _safe_object(value: dict[str, Any]) -> dict[str, Any]:
    _check_nested(value)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_safe_object)]
"""A free-form JSON object from a caller whose every key and string is :data:`Text`-safe."""
