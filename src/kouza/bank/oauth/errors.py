"""OAuth errors of the bank's authorization server and resource server (RFC 6749 §5.2).

Every error is a :class:`kouza.errors.KouzaError`, so a unit of work rolls back on it (or commits
with ``keep_changes``), but it renders as OAuth does: ``{"error", "error_description"}``, with
the headers the RFCs ask for (``DPoP-Nonce`` with ``use_dpop_nonce``, RFC 9449 §8;
``WWW-Authenticate: DPoP`` on the resource server, RFC 9449 §7.1)::

    OAuthError (400)
    ├── InvalidRequest            invalid_request
    ├── InvalidRequestUri         invalid_request_uri (RFC 9126)
    ├── InvalidClientAuth (401)   invalid_client
    ├── InvalidGrant              invalid_grant
    ├── UnauthorizedClient        unauthorized_client
    ├── UnsupportedGrantType      unsupported_grant_type
    ├── InvalidDPoPProof          invalid_dpop_proof
    ├── UseDPoPNonce              use_dpop_nonce
    ├── AccessDenied (403)        access_denied
    └── InvalidToken (401)        invalid_token (resource server)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kouza.errors import KouzaError

DPOP_ALGORITHMS = ("ES256", "PS256", "Ed25519")
"""Signature algorithms accepted for DPoP proofs and client assertions."""


class OAuthError(KouzaError):
    """An OAuth error response."""

    status_code = 400
    code = "invalid_request"

    def __init__(
        self, message: str, *, keep_changes: bool = False, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, keep_changes=keep_changes)
        self.headers = dict(headers or {})
        self.oauth_code: str = type(self).code

    def to_dict(self) -> dict[str, Any]:
        """The OAuth error body."""
        return {"error": self.oauth_code, "error_description": self.message}


class InvalidRequest(OAuthError):
    code = "invalid_request"


class InvalidRequestUri(OAuthError):
    code = "invalid_request_uri"


class InvalidClientAuth(OAuthError):
    status_code = 401
    code = "invalid_client"


class InvalidGrant(OAuthError):
    code = "invalid_grant"


class UnauthorizedClient(OAuthError):
    code = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"


class InvalidDPoPProof(OAuthError):
    code = "invalid_dpop_proof"


class UseDPoPNonce(OAuthError):
    code = "use_dpop_nonce"


class AccessDenied(OAuthError):
    status_code = 403
    code = "access_denied"


class InvalidToken(OAuthError):
    status_code = 401
    code = "invalid_token"


def resource_error(error: OAuthError) -> OAuthError:
    """``error`` as a resource server answers it: 401 with a ``WWW-Authenticate: DPoP``."""
    code = error.oauth_code if error.oauth_code != InvalidClientAuth.code else InvalidToken.code
    description = error.message.replace('"', "'")
    challenge = (
        f'DPoP error="{code}", error_description="{description}", '
        f'algs="{" ".join(DPOP_ALGORITHMS)}"'
    )
    answer = InvalidToken(error.message, headers={**error.headers, "WWW-Authenticate": challenge})
    answer.oauth_code = code
    return answer


class OAuthErrorRead(BaseModel):
    """The body of an OAuth error (RFC 6749 §5.2; RFC 9449 for the DPoP codes)."""

    error: str
    error_description: str


_NONCE_HEADER = {
    "description": "the nonce to put in the next DPoP proof (with use_dpop_nonce, and on success)",
    "schema": {"type": "string"},
}
_CHALLENGE_HEADER = {
    "description": 'DPoP error="…", error_description="…", algs="…" (RFC 9449 §7.1)',
    "schema": {"type": "string"},
}


def oauth_error_responses(
    *errors: type[OAuthError],
    resource: bool = False,
    base: dict[int | str, dict[str, Any]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for OAuth errors, merged into ``base`` (kouza errors of the same route).

    On the authorization server each error has its own status; on a resource server
    (``resource``) every one is a 401 with ``WWW-Authenticate: DPoP``. Where a status is also
    used by a kouza error, the entry documents both bodies, each under its media type (OAuth's
    ``application/json``, kouza's ``application/problem+json``).
    """
    responses = dict(base or {})
    by_status: dict[int, list[str]] = {}
    for error in errors:
        by_status.setdefault(401 if resource else error.status_code, []).append(error.code)
    oauth_schema = OAuthErrorRead.model_json_schema()
    for status, codes in sorted(by_status.items()):
        description = "OAuth error: " + ", ".join(sorted(codes))
        headers = {"DPoP-Nonce": _NONCE_HEADER}
        if resource:
            headers["WWW-Authenticate"] = _CHALLENGE_HEADER
        content: dict[str, Any] = {"application/json": {"schema": oauth_schema}}
        if status in responses:
            description = f"{responses[status]['description']}; {description}"
            content = {**responses[status].get("content", {}), **content}
        responses[status] = {"description": description, "headers": headers, "content": content}
    return responses
