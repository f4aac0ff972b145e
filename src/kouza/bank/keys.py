"""Keys derived from the bank secret: TOTP seed encryption and the webhook signing key.

Every key is derived with SHA-256 over a purpose label and the secret, so one configured secret
yields independent keys and a restart yields the same ones (no key files beyond the secret).
The Ed25519 signing key's public half is published as a JWKS at ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.jwk import OKPKey


def _derive(secret: bytes, purpose: str) -> bytes:
    return hashlib.sha256(f"kouza-bank\x00{purpose}\x00".encode() + secret).digest()


def fernet(secret: bytes, purpose: str) -> Fernet:
    """A Fernet cipher keyed for ``purpose`` (e.g. ``otp:0125``, ``outbox``)."""
    return Fernet(base64.urlsafe_b64encode(_derive(secret, purpose)))


def signing_key(secret: bytes) -> OKPKey:
    """The deployment's Ed25519 webhook signing key (with ``kid`` set to its thumbprint)."""
    private = Ed25519PrivateKey.from_private_bytes(_derive(secret, "webhook-signing"))
    key = OKPKey.import_key(private)
    return OKPKey.import_key(
        key.as_dict(private=True), {"kid": key.thumbprint(), "use": "sig", "alg": "Ed25519"}
    )


def public_jwks(secret: bytes) -> dict[str, Any]:
    """The JWKS document that publishes the signing key's public half."""
    return {"keys": [signing_key(secret).as_dict(private=False)]}


def encrypt_totp_seed(secret: bytes, *, bank_code: str, seed: str) -> str:
    """Encrypt a base32 TOTP seed for storage."""
    return fernet(secret, f"otp:{bank_code}").encrypt(seed.encode()).decode()


def decrypt_totp_seed(secret: bytes, *, bank_code: str, token: str) -> str:
    """Decrypt a stored TOTP seed."""
    return fernet(secret, f"otp:{bank_code}").decrypt(token.encode()).decode()
