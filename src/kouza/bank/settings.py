"""Settings of the bank system, read from ``KOUZA_BANK_*`` (separate from the wallet's).

Defaults give the embedded setup: a SQLite file ``var/bank.db`` and a random bank secret created
once in ``var/bank-secret.key``. The secret keys the HMAC of client secrets, the encryption of
TOTP seeds and outbox payloads, and the Ed25519 webhook signing key.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BankSettings(BaseSettings):
    """Runtime configuration of a bank deployment."""

    model_config = SettingsConfigDict(env_prefix="KOUZA_BANK_", env_file=".env", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str = ""
    secret_key: str = ""
    issuer: str = "https://bank.kouza.test"
    """Identifier of this deployment in signed webhooks (``iss``)."""
    staff_token: str = ""
    """Bearer token of branch-counter staff on ``/v1/counter``; empty disables those routes."""
    pin_max_failures: int = Field(default=3, gt=0)
    max_request_body_bytes: int = Field(default=64 * 1024, gt=0)
    """Larger request bodies are refused with 413 before they are read."""
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``var_dir/bank.db``."""
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.var_dir / 'bank.db').as_posix()}"

    def resolved_secret_key(self) -> bytes:
        """The bank secret, created once under ``var_dir`` if not configured."""
        if self.secret_key:
            return self.secret_key.encode()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        path = self.var_dir / "bank-secret.key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()
