"""What the OpenAPI promises is what the service checks (each found by schemathesis): a
request the schema admits passes validation, one it refuses is refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from kouza.identity.schemas import IcChipSubmit, JpkiSubmit
from kouza.kit.openapi import IDEMPOTENCY_KEY_PATTERN, document_problems
from kouza.kit.text import BASE64_PATTERN, SINGLE_LINE_PATTERN, JsonObject
from kouza.risk.endpoints import EventCreate

IC_CHIP = {
    "sod": "AAAA",
    "selfie": "AAA=",
    "nonce": "n",
    "kana_name": "ヤマダ タロウ",
    "data_groups": {"1": "AAAA", "15": "QQ=="},
}


class Free(BaseModel):
    value: JsonObject


class TestJsonObject:
    def test_the_openapi_checks_nested_keys_and_strings(self) -> None:
        app = FastAPI()

        @app.post("/free")
        def free(body: Free) -> None:
            """A free-form object."""

        document_problems(app)
        schemas = app.openapi()["components"]["schemas"]
        value = schemas["Free"]["properties"]["value"]
        assert value["propertyNames"] == {"type": "string", "pattern": SINGLE_LINE_PATTERN}
        assert value["additionalProperties"] == {"$ref": "#/components/schemas/JsonValue"}
        nested = schemas["JsonValue"]["anyOf"]
        assert {"type": "string", "pattern": SINGLE_LINE_PATTERN} in nested
        assert {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}} in nested

    @pytest.mark.parametrize("value", [{"a\x0b": 1}, {"a": {"b\x91": []}}, {"a": ["\u202e"]}])
    def test_what_the_schema_refuses_is_refused(self, value: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            Free(value=value)


class TestBase64:
    @pytest.mark.parametrize("text", ["", "AAAA", "AA==", "AAA=", "+/+/"])
    def test_valid(self, text: str) -> None:
        assert re.fullmatch(BASE64_PATTERN, text)
        assert JpkiSubmit(certificate=text, signature="AAAA", nonce="n", kana_name="k")

    @pytest.mark.parametrize("text", ["A", "AAA", "AA-A", "AA_A", "AA\nAA", "AA=A", "°\rL"])
    def test_invalid_matches_neither_pattern_nor_service(self, text: str) -> None:
        """pydantic's Base64Bytes skipped characters outside the alphabet and answered
        'Incorrect padding' for strings its schema (any string) admitted."""
        assert not re.fullmatch(BASE64_PATTERN, text)
        with pytest.raises(ValidationError):
            JpkiSubmit(certificate=text, signature="AAAA", nonce="n", kana_name="k")


class TestIcChipDataGroups:
    def test_numbered_keys(self) -> None:
        submitted = IcChipSubmit.model_validate(IC_CHIP)
        assert submitted.data_groups == {1: b"\0\0\0", 15: b"A"}
        schema = IcChipSubmit.model_json_schema()["properties"]["data_groups"]
        assert schema["propertyNames"] == {"pattern": "^[1-9][0-9]?$"}

    @pytest.mark.parametrize("key", ["0", "01", " 1", "100", "x", ""])
    def test_other_keys_are_refused(self, key: str) -> None:
        with pytest.raises(ValidationError):
            IcChipSubmit.model_validate(IC_CHIP | {"data_groups": {key: "AAAA"}})


class TestRiskEvent:
    @pytest.mark.parametrize("at", [0, 1_700_000_000, 1.5])
    def test_a_time_is_a_string_not_a_unix_number(self, at: object) -> None:
        with pytest.raises(ValidationError):
            EventCreate.model_validate({"type": "login", "at": at})

    def test_an_rfc3339_time_passes(self) -> None:
        assert EventCreate.model_validate({"type": "login", "at": "2026-03-01T09:00:00Z"})


def test_the_idempotency_key_pattern_is_what_the_service_accepts() -> None:
    from kouza.kit.idempotency import validate_key

    for key in ("k", " ~", "x" * 255):
        assert re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key) and validate_key(key) == key
    for key in ("", "x" * 256, "é", "a\tb", "a\x7f"):
        assert not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key)
        with pytest.raises(Exception, match="Idempotency-Key"):
            validate_key(key)
