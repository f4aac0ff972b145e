"""Secrets handling: password hashes, keyed hashes for codes and tokens, random secrets.

Passwords are hashed with argon2id (argon2-cffi). Short codes (e-mail codes) and bearer tokens
are high-entropy or attempt-limited, so they are stored as HMAC-SHA256 under the server secret:
a database dump alone reveals nothing usable, and lookups stay O(1). Plain secrets live only in
memory on their way to the user.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_password_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _password_hasher.hash(password)


@contextmanager
def password_cost(*, time_cost: int, memory_cost: int) -> Iterator[None]:
    """Hash new passwords with other argon2id parameters inside the block (the simulator's
    thousands of seeded PINs). Verification reads the parameters from each hash, so hashes made
    either way verify everywhere; production code never enters this block."""
    global _password_hasher
    previous = _password_hasher
    _password_hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)
    try:
        yield
    finally:
        _password_hasher = previous


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; never raises on a mismatch."""
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def keyed_hash(key: bytes, value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, separated by ``purpose``; hex."""
    return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()


def constant_time_equal(left: str, right: str) -> bool:
    """String comparison that does not leak where the strings differ."""
    return hmac.compare_digest(left.encode(), right.encode())


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


def random_digits(length: int) -> str:
    """A code of ``length`` decimal digits from the system CSPRNG."""
    return "".join(secrets.choice("0123456789") for _ in range(length))
