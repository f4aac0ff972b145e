"""Merchant-presented QR codes, signed by kouza.

A QR payload is a compact JWS (RFC 7515, alg ``Ed25519`` per RFC 9864, made and checked with
joserfc) over ``{"v": 1, "mid": merchant, "amt": yen or null, "ref": order ref or null,
"iat": …, "exp": …}``. A *dynamic* QR (shown at the till for one purchase) carries the amount
and an order reference and can be paid once; a *static* QR (a sticker) carries neither and the
customer types the amount. Anything that does not verify — another key, an altered byte, an
expired code, an unknown version — is refused as :class:`~kouza.wallet.errors.InvalidQr`.

The signing key is derived from the server secret with HKDF, so every worker of one deployment
signs and verifies with the same key and no key file needs distributing; its ``kid`` is the JWK
thumbprint so a rotated key can be told apart.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from kouza.wallet.errors import InvalidQr

ALGORITHM = "Ed25519"
TYPE = "kouza-qr+jws"
MAX_QR_LENGTH = 2048


@dataclass(frozen=True)
class QrPayload:
    """What a verified QR code says."""

    merchant_id: uuid.UUID
    amount: int | None
    order_ref: str | None
    issued_at: datetime
    expires_at: datetime | None


def signing_key(secret: bytes) -> OKPKey:
    """The deployment's QR key, derived from the server secret."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kouza", info=b"qr-signing-key")
    private = Ed25519PrivateKey.from_private_bytes(seed.derive(secret))
    return OKPKey.import_key(private)


def sign(
    secret: bytes,
    *,
    merchant_id: uuid.UUID,
    now: datetime,
    amount: int | None = None,
    order_ref: str | None = None,
    ttl: timedelta | None = None,
) -> str:
    """A signed QR payload for ``merchant_id`` (dynamic if ``amount`` is given)."""
    if (amount is None) != (order_ref is None):
        raise ValueError("a dynamic QR has both an amount and an order reference")
    claims: dict[str, Any] = {
        "v": 1,
        "mid": str(merchant_id),
        "amt": amount,
        "ref": order_ref,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()) if ttl else None,
    }
    key = signing_key(secret)
    header = {"alg": ALGORITHM, "typ": TYPE, "kid": key.thumbprint()}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, key, algorithms=[ALGORITHM])


def verify(secret: bytes, value: str, *, now: datetime) -> QrPayload:
    """Check a QR payload's signature and freshness and return what it says."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_QR_LENGTH:
        raise InvalidQr("QR payload missing or too long")
    try:
        compact = jws.deserialize_compact(
            value.strip(), signing_key(secret), algorithms=[ALGORITHM]
        )
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidQr(f"QR code is not signed by this operator ({type(exc).__name__})") from None
    if compact.protected.get("typ") != TYPE:
        raise InvalidQr("not a kouza payment QR code")
    return _parse_claims(compact.payload, now)


def _parse_claims(raw: bytes, now: datetime) -> QrPayload:
    try:
        claims = json.loads(raw)
        merchant_id = uuid.UUID(claims["mid"])
        amount, order_ref = claims["amt"], claims["ref"]
        issued_at = datetime.fromtimestamp(int(claims["iat"]), UTC)
        expires = claims["exp"]
        expires_at = datetime.fromtimestamp(int(expires), UTC) if expires is not None else None
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidQr(f"QR payload is malformed ({type(exc).__name__})") from None
    if claims.get("v") != 1:
        raise InvalidQr("unsupported QR version")
    if amount is not None and (type(amount) is not int or amount <= 0):
        raise InvalidQr("QR amount is invalid")
    if expires_at is not None and expires_at <= now:
        raise InvalidQr("QR code has expired; ask the shop for a new one")
    return QrPayload(merchant_id, amount, order_ref, issued_at, expires_at)
