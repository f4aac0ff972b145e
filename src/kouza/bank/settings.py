"""Settings of the bank system, read from ``KOUZA_BANK_*`` (separate from the wallet's).

Defaults give the embedded setup: a SQLite file ``var/bank.db`` and a random bank secret created
once in ``var/bank-secret.key``. The secret keys the HMAC of client secrets, the encryption of
TOTP seeds and outbox payloads, and the Ed25519 webhook signing key.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kouza.kit.settings import BaseServiceSettings


class BankSettings(BaseServiceSettings):
    """Runtime configuration of a bank deployment (``var_dir``, ``database_url``, ``secret_key``
    and ``max_request_body_bytes`` come from :class:`BaseServiceSettings`)."""

    model_config = SettingsConfigDict(env_prefix="KOUZA_BANK_")
    DATABASE_FILE: ClassVar[str] = "bank.db"
    SERVICE_NAME: ClassVar[str] = "kouza-bank"
    SECRET_FILE: ClassVar[str] = "bank-secret.key"

    issuer: str = "https://bank.kouza.test"
    """Identifier of this deployment in signed webhooks (``iss``)."""
    staff_token: str = ""
    """Bearer token of branch-counter staff on ``/v1/counter``; empty disables those routes."""
    pin_max_failures: int = Field(default=3, gt=0)
    """Wrong PINs (legacy form) or internet-banking logins before the account or login is locked."""
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    """Timeout of one signed webhook delivery to an operator."""
