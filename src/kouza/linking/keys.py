"""The wallet operator's keys as an OAuth client of the banks, and sealing of what it keeps.

* **Client signing key** (``private_key_jwt``, RFC 7523): an EC P-256 private JWK. Production
  sets ``KOUZA_BANK_OAUTH_KEY_FILE`` to a provisioned file, which must exist and is never
  generated; development leaves it empty and gets ``var/bank-oauth-key.jwk``, created once with
  mode 0600 (like ``var/secret.key``). The bank is given only the public half
  (:func:`client_jwks`: ``kouza banks oauth-jwks``, or the wallet's ``jwks.json`` route).
* **DPoP keys** (RFC 9449) are separate: one fresh P-256 key per link, made when the link is
  started, so a token and its key are useless for any other link.
* **Sealing**: PKCE verifiers, DPoP private keys and access tokens are stored only inside a
  Fernet token under a key derived from the server secret (purpose-separated from the outbox's),
  never in plain text.
* :class:`Signer` builds the client assertions and DPoP proofs with joserfc, on the runtime's
  clock, so tests with a manual clock and the bank's time checks agree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from cryptography.fernet import Fernet, InvalidToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from kouza.linking.errors import OAuthMaterialUnavailable as ClientKeyUnavailable
from kouza.runtime import Runtime

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHM = "ES256"
DEV_KEY_FILE = "bank-oauth-key.jwk"


def _load(path: Path) -> ECKey:
    try:
        data = json.loads(path.read_text())
        key = ECKey.import_key(data)
    except (OSError, ValueError, JoseError, TypeError) as exc:
        raise ClientKeyUnavailable(
            f"the bank OAuth client key {path} cannot be read ({type(exc).__name__})"
        ) from None
    if not key.is_private or data.get("crv") != "P-256":
        raise ClientKeyUnavailable(f"the bank OAuth client key {path} is not a private P-256 JWK")
    return key


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ECKey.generate_key("P-256", auto_kid=True)
    text = json.dumps(key.as_dict(private=True))
    try:
        # O_EXCL: two processes starting at once keep the first key, never a mix of both
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(handle, "w") as file:
        file.write(text)


class ClientKeyPort(Protocol):
    """Where the runtime keeps the loaded key (``kouza.assembly.KouzaRuntime``)."""

    bank_client_key: ECKey | None
    """None until first used: then loaded (or, in development, generated) from its file."""


def client_key(runtime: Runtime) -> ECKey:
    """The operator's private signing key (loaded once per runtime)."""
    port = cast(ClientKeyPort, runtime)
    if port.bank_client_key is not None:
        return port.bank_client_key
    configured = runtime.settings.bank_oauth_key_file
    if configured:
        path = Path(configured)
    else:
        path = runtime.settings.var_dir / DEV_KEY_FILE
        if not path.exists():
            _generate(path)
    key = port.bank_client_key = _load(path)
    return key


def client_jwks(runtime: Runtime) -> dict[str, Any]:
    """The public JWKS to register at the banks (no private member)."""
    public = client_key(runtime).as_dict(private=False)
    return {"keys": [public | {"use": "sig", "alg": ALGORITHM}]}


def new_dpop_key() -> ECKey:
    """A fresh DPoP key (one per link)."""
    return ECKey.generate_key("P-256", auto_kid=True)


def _fernet(runtime: Runtime) -> Fernet:
    key = hashlib.sha256(b"kouza-bank-oauth\x00" + runtime.secret).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(runtime: Runtime, values: dict[str, Any]) -> str:
    """``values`` as a Fernet token (what the database stores)."""
    return _fernet(runtime).encrypt(json.dumps(values).encode()).decode()


def unseal(runtime: Runtime, sealed: str) -> dict[str, Any]:
    """What :func:`seal` sealed; a token from another secret is an error, not data."""
    try:
        values = json.loads(_fernet(runtime).decrypt(sealed.encode()))
    except InvalidToken:
        raise ClientKeyUnavailable(
            "sealed OAuth material cannot be opened with this secret"
        ) from None
    assert isinstance(values, dict)
    return values


def b64url_sha256(value: str) -> str:
    """base64url (no padding) of SHA-256 of ``value`` (PKCE S256, DPoP ``ath``)."""
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class Signer:
    """Client assertions and DPoP proofs, signed with joserfc on the runtime's clock."""

    runtime: Runtime

    @property
    def client_id(self) -> str:
        return self.runtime.settings.bank_client_id

    def _now(self) -> int:
        return int(self.runtime.now().timestamp())

    def assertion(self, audience: str) -> str:
        """A ``private_key_jwt`` client assertion for ``audience`` (the bank's issuer)."""
        key = client_key(self.runtime)
        now = self._now()
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid}, claims, key)

    def proof(
        self,
        key: ECKey,
        *,
        method: str,
        url: str,
        nonce: str | None,
        access_token: str | None = None,
    ) -> str:
        """A DPoP proof for one request (RFC 9449 §4.2)."""
        claims: dict[str, Any] = {
            "htm": method,
            "htu": url,
            "iat": self._now(),
            "jti": uuid.uuid4().hex,
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["ath"] = b64url_sha256(access_token)
        header = {"alg": ALGORITHM, "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}
        return jwt.encode(header, claims, key)
