"""The bank's OpenAPI documents the DPoP errors of its token and transfer endpoints."""

from __future__ import annotations

from typing import Any

from tests.linking.conftest import World


def _responses(world: World, path: str) -> dict[str, Any]:
    spec = world.bank.get("/openapi.json").json()
    responses: dict[str, Any] = spec["paths"][path]["post"]["responses"]
    return responses


def test_debits_and_credits_document_dpop_errors(world: World) -> None:
    for route in ("debits", "credits"):
        unauthorized = _responses(world, f"/v1/links/{{link_id}}/{route}")["401"]
        for code in ("invalid_client", "invalid_token", "invalid_dpop_proof", "use_dpop_nonce"):
            assert code in unauthorized["description"], (route, unauthorized["description"])
        assert {"WWW-Authenticate", "DPoP-Nonce"} <= set(unauthorized["headers"])
        # kouza's problem for a bad secret, OAuth's body for DPoP, each under its media type
        assert set(unauthorized["content"]["application/json"]["schema"]["properties"]) == {
            "error",
            "error_description",
        }
        assert unauthorized["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }


def test_token_and_par_document_dpop_errors(world: World) -> None:
    for route in ("token", "par"):
        bad = _responses(world, f"/v1/banks/{{bank_code}}/oauth/{route}")["400"]
        assert "use_dpop_nonce" in bad["description"] and "invalid_dpop_proof" in bad["description"]
        assert "DPoP-Nonce" in bad["headers"]
        assert set(bad["content"]["application/json"]["schema"]["properties"]) == {
            "error",
            "error_description",
        }
    token = _responses(world, "/v1/banks/{bank_code}/oauth/token")
    assert "invalid_grant" in token["400"]["description"]
    assert "invalid_client" in token["401"]["description"]
