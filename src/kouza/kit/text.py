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

import base64
import binascii
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from pydantic.config import JsonDict

_BIDI = r"\u202A-\u202E\u2066-\u2069"
SINGLE_LINE_PATTERN = r"^[^\x00-\x1F\x7F-\x9F" + _BIDI + r"]*$"
MULTI_LINE_PATTERN = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F" + _BIDI + r"]*$"

Text = Annotated[str, Field(pattern=SINGLE_LINE_PATTERN)]
"""A single line of text from a caller (see the module docstring)."""

Note = Annotated[str, Field(pattern=MULTI_LINE_PATTERN)]
"""Multi-line free text from a caller: line feeds and tabs allowed."""

Email = Annotated[
    str, Field(pattern=SINGLE_LINE_PATTERN, max_length=320, json_schema_extra={"format": "email"})
]
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


JSON_VALUE = "JsonValue"
"""The OpenAPI component (added by ``kouza.kit.openapi.document_problems``) of a value inside a
:data:`JsonObject`: recursive, so the document states the check on every nested key and string."""
_SAFE_STRING = {"type": "string", "pattern": SINGLE_LINE_PATTERN}
_VALUE_REF = {"$ref": f"#/components/schemas/{JSON_VALUE}"}


def _object_schema(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "propertyNames": _SAFE_STRING, "additionalProperties": values}


JSON_VALUE_SCHEMA = {
    "anyOf": [
        _SAFE_STRING,
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": _VALUE_REF},
        _object_schema(_VALUE_REF),
    ]
}

JsonObject = Annotated[
    dict[str, Any], AfterValidator(_safe_object), WithJsonSchema(_object_schema(_VALUE_REF))
]
"""A free-form JSON object from a caller whose every key and string is :data:`Text`-safe.
Its schema refers to the ``JsonValue`` component that ``document_problems`` adds to an app's
OpenAPI; a bare ``model_json_schema()`` (outside an app) cannot resolve that reference."""


BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
"""Base64 as RFC 4648 §4 spells it: standard alphabet, padded, nothing else."""


def _from_base64(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64 (RFC 4648 §4: A–Z a–z 0–9 + /, padded with =)") from None


Base64 = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    WithJsonSchema({"type": "string", "pattern": BASE64_PATTERN, "contentEncoding": "base64"}),
]
"""Bytes sent as base64 text. pydantic's ``Base64Bytes`` is documented as any string and
decodes leniently (characters outside the alphabet skipped): its refusals matched no schema."""


def _number_key(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"[1-9][0-9]?", value):
        raise ValueError("a key must be a number from 1 to 99")
    return value


NumberKey = Annotated[int, BeforeValidator(_number_key)]
"""An object key that is a number (1–99), e.g. an IC chip's data group; with
:data:`NUMBER_KEYS` on the field, the OpenAPI says so."""
NUMBER_KEYS: JsonDict = {"propertyNames": {"pattern": r"^[1-9][0-9]?$"}}
