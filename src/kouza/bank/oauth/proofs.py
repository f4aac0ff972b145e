"""Signed-JWT checks of the OAuth flow: client assertions, DPoP proofs, nonces, replay cache.

All JOSE work is joserfc's (signature verification, JWK import, RFC 7638 thumbprints); this
module only decides *what* must hold, with the time of the bank runtime's injected clock:

* **Client assertions** (``private_key_jwt``, RFC 7523 §3 and RFC 7521 §4.2): signed with a key
  of the client's registered JWKS, ``iss`` = ``sub`` = client id, ``aud`` the bank's issuer (or,
  as RFC 9126 §2 lets a client use, the token or PAR endpoint URL), ``exp`` in the future and at
  most :data:`ASSERTION_MAX_LIFETIME` away, ``jti`` accepted once (replay cache).
* **DPoP proofs** (RFC 9449 §4.3): ``typ`` ``dpop+jwt``, an asymmetric ``alg`` of
  :data:`DPOP_ALGORITHMS`, a public ``jwk`` in the header that verifies the signature, ``htm`` =
  the request method, ``htu`` = the request URL without query and fragment (compared against the
  bank's public base URL, not whatever Host the request carried), ``iat`` within
  :data:`PROOF_WINDOW`, ``jti`` accepted once, ``nonce`` a current server nonce (§8), and on
  resource requests ``ath`` = base64url(SHA-256(access token)) (§7.1).
* **Server nonces** are stateless: ``HMAC(bank secret, time bucket)``, the bucket being
  :data:`NONCE_PERIOD` long; the current and the previous bucket's nonce are accepted, so a nonce
  lives between one and two periods and every instance of a scaled-out bank agrees.
* **Replay cache**: ``oauth_used_jtis`` with UNIQUE (purpose, hash of issuer + jti); rows are
  kept until the JWT could no longer be accepted anyway, then purged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from sqlalchemy import delete
from sqlalchemy.orm import Session

from kouza.bank.models import OAuthUsedJti
from kouza.bank.oauth.errors import (
    DPOP_ALGORITHMS,
    InvalidClientAuth,
    InvalidDPoPProof,
    OAuthError,
    UseDPoPNonce,
)
from kouza.bank.runtime import bank_runtime_of
from kouza.kit.db import add_unique
from kouza.kit.security import constant_time_equal

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_MAX_LIFETIME = timedelta(minutes=5)
PROOF_WINDOW = timedelta(seconds=60)
NONCE_PERIOD = 120
"""Seconds per nonce bucket."""
PublicKey = ECKey | RSAKey | OKPKey


class _ProofRegistry(JWSRegistry):
    """joserfc's JWS limits, with room for an RSA public key in a DPoP proof's header."""

    max_header_length = 2048
    max_payload_length = 4096


PROOF_REGISTRY = _ProofRegistry(algorithms=DPOP_ALGORITHMS)


@dataclass(frozen=True)
class DPoPProof:
    """A verified DPoP proof: the thumbprint of its key."""

    jkt: str


def b64url_sha256(value: str) -> str:
    """base64url (no padding) of SHA-256 of ``value`` (PKCE S256, DPoP ``ath``)."""
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def current_nonce(session: Session) -> str:
    """The DPoP nonce the bank hands out now."""
    runtime = bank_runtime_of(session)
    return _nonce(runtime.secret, int(runtime.now().timestamp()) // NONCE_PERIOD)


def _nonce(secret: bytes, bucket: int) -> str:
    mac = hmac.new(secret, f"dpop-nonce\x00{bucket}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def _nonce_is_fresh(session: Session, nonce: object) -> bool:
    runtime = bank_runtime_of(session)
    bucket = int(runtime.now().timestamp()) // NONCE_PERIOD
    return isinstance(nonce, str) and any(
        constant_time_equal(nonce, _nonce(runtime.secret, b)) for b in (bucket, bucket - 1)
    )


def remember_jti(
    session: Session,
    *,
    purpose: str,
    issuer: str,
    jti: object,
    keep_until: datetime,
    error: OAuthError,
) -> None:
    """Accept ``jti`` once per (purpose, issuer); ``error`` on a replay."""
    if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
        raise error
    now = bank_runtime_of(session).now()
    session.execute(delete(OAuthUsedJti).where(OAuthUsedJti.expires_at < now))
    digest = hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()
    add_unique(
        session, OAuthUsedJti(purpose=purpose, jti_hash=digest, expires_at=keep_until), error
    )


def _timestamp(claims: dict[str, Any], name: str, error: OAuthError) -> datetime:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise error from None


def verify_client_assertion(
    session: Session, assertion: str, *, client_id: str, keys: KeySet, audiences: tuple[str, ...]
) -> None:
    """Check a ``private_key_jwt`` client assertion (RFC 7523 §3); raise ``invalid_client``."""
    try:
        token = jwt.decode(assertion, keys, algorithms=DPOP_ALGORITHMS)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidClientAuth("the client assertion is not signed by a registered key") from None
    claims = token.claims
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClientAuth("the client assertion's iss and sub must be the client id")
    audience = claims.get("aud")
    given = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(a, str) and a in audiences for a in given):
        raise InvalidClientAuth("the client assertion's aud must be the bank's issuer")
    now = bank_runtime_of(session).now()
    expires = _timestamp(claims, "exp", InvalidClientAuth("the client assertion needs exp"))
    if not now < expires <= now + ASSERTION_MAX_LIFETIME:
        raise InvalidClientAuth("the client assertion is expired or lives too long")
    remember_jti(
        session,
        purpose="client_assertion",
        issuer=client_id,
        jti=claims.get("jti"),
        keep_until=expires,
        error=InvalidClientAuth("the client assertion was already used (jti)"),
    )


def htu_of(base_url: str, path: str) -> str:
    """The URL a DPoP proof must name: the bank's public base URL and the request path."""
    return base_url.rstrip("/") + path


def _normalised_htu(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    parts = urlsplit(value)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))


def _verified_proof(proof: str) -> tuple[PublicKey, dict[str, Any]]:
    """The proof's header key and its claims, once the signature verified with that key."""
    try:
        header = jws.extract_compact(proof.encode(), registry=PROOF_REGISTRY).headers()
    except (JoseError, ValueError):
        raise InvalidDPoPProof("the DPoP proof is not a compact JWS") from None
    if header.get("typ") != "dpop+jwt" or header.get("alg") not in DPOP_ALGORITHMS:
        raise InvalidDPoPProof("the DPoP proof needs typ dpop+jwt and an asymmetric alg")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or any(k in jwk for k in ("d", "p", "q", "dp", "dq", "qi")):
        raise InvalidDPoPProof("the DPoP proof needs a public jwk in its header")
    try:
        key = _import_public(jwk)
        claims = jwt.decode(proof, key, algorithms=[header["alg"]], registry=PROOF_REGISTRY).claims
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProof("the DPoP proof's signature does not verify") from None
    return key, claims


def _import_public(jwk: dict[str, Any]) -> PublicKey:
    kinds: dict[str, type[PublicKey]] = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}
    kind = kinds.get(str(jwk.get("kty")))
    if kind is None:
        raise ValueError("unsupported key type")
    return kind.import_key(jwk)


def verify_dpop_proof(
    session: Session, proof: str | None, *, method: str, url: str, access_token: str | None = None
) -> DPoPProof:
    """Check a DPoP proof for this request (RFC 9449 §4.3); nonce errors carry a fresh nonce."""
    if not proof:
        raise InvalidDPoPProof("a DPoP proof is required (DPoP header)")
    key, claims = _verified_proof(proof)
    if claims.get("htm") != method or _normalised_htu(claims.get("htu")) != _normalised_htu(url):
        raise InvalidDPoPProof("the DPoP proof is for another method or URL")
    now = bank_runtime_of(session).now()
    issued = _timestamp(claims, "iat", InvalidDPoPProof("the DPoP proof needs iat"))
    if not now - PROOF_WINDOW <= issued <= now + PROOF_WINDOW:
        raise InvalidDPoPProof("the DPoP proof's iat is outside the accepted window")
    if access_token is not None and not constant_time_equal(
        str(claims.get("ath", "")), b64url_sha256(access_token)
    ):
        raise InvalidDPoPProof("the DPoP proof's ath does not match the access token")
    if not _nonce_is_fresh(session, claims.get("nonce")):
        raise UseDPoPNonce(
            "use the DPoP-Nonce the bank provides", headers={"DPoP-Nonce": current_nonce(session)}
        )
    jkt = key.thumbprint()
    remember_jti(
        session,
        purpose="dpop",
        issuer=jkt,
        jti=claims.get("jti"),
        keep_until=issued + 2 * PROOF_WINDOW,
        error=InvalidDPoPProof("this DPoP proof was already used (jti)"),
    )
    return DPoPProof(jkt=jkt)
