"""What every kouza system's settings share: where it keeps its files, its database and secret.

The wallet's ``kouza.config.Settings`` (``KOUZA_*``) and the bank's
``kouza.bank.settings.BankSettings`` (``KOUZA_BANK_*``) both subclass
:class:`BaseServiceSettings`, each with its own ``env_prefix`` and file names, so the two systems
read separate variables from the environment and the same optional ``.env`` file, yet resolve
their database URL and secret the same way: SQLite under ``var_dir`` by default, and a random
secret created once in ``var_dir`` so that restarts keep signed tokens valid. They also share
how a server process is observed (logs, metrics, traces: ``docs/observability.md``), so
``KOUZA_LOG_FORMAT`` and ``KOUZA_BANK_LOG_FORMAT`` mean the same thing for each system.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BaseServiceSettings(BaseSettings):
    """Settings of one system; subclasses set ``env_prefix`` and the two file names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    DATABASE_FILE: ClassVar[str]
    """The SQLite file under ``var_dir`` used when ``database_url`` is empty."""
    SECRET_FILE: ClassVar[str]
    """The file under ``var_dir`` keeping the generated secret when ``secret_key`` is empty."""
    SERVICE_NAME: ClassVar[str]
    """The system's name in traces (OpenTelemetry ``service.name``)."""

    var_dir: Path = Path("var")
    """Directory of the system's local files: the SQLite database, the generated secret and
    keys, the development mailbox."""
    database_url: str = ""
    """SQLAlchemy URL of the database (``postgresql+psycopg://user@host/db`` in production); empty
    means a SQLite file under ``var_dir``."""
    secret_key: str = ""
    """The system's master secret (keys HMACs, encryption and signing); empty means a random one
    created once under ``var_dir``. Production provides it."""
    max_request_body_bytes: int = Field(default=64 * 1024, gt=0)
    """Larger request bodies are refused with 413 before they are read."""

    # Observability of the server processes (kouza.kit.logs, .metrics, .tracing)
    log_format: Literal["json", "console"] = Field(
        default="json",
        description="How the server writes its log lines to stderr: one JSON object per line "
        "(for a log pipeline) or an aligned human line. Other commands print for a person.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="The lowest level a server logs (every logger)."
    )
    access_log: bool = Field(
        default=True,
        description="One log line per request: method, route template, status, duration, "
        "request id (never the raw path or query, which may carry ids or codes).",
    )
    metrics: bool = Field(
        default=True,
        description="Serve Prometheus metrics at /metrics (requests per route, the system's own "
        "counters). Expose it to the monitoring network only.",
    )
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Where OpenTelemetry traces go: nowhere (nothing is instrumented), to "
        "stderr as JSON, or over OTLP/HTTP to a collector at otel_endpoint.",
    )
    otel_endpoint: str = Field(
        default="",
        description="The OTLP/HTTP collector: a base URL (http://collector:4318, /v1/traces is "
        "added) or the full traces URL; empty uses OTEL_EXPORTER_OTLP_* or localhost:4318.",
    )

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under ``var_dir``."""
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.var_dir / self.DATABASE_FILE).as_posix()}"

    def resolved_secret_key(self) -> bytes:
        """The system's secret, created once under ``var_dir`` if not configured."""
        if self.secret_key:
            return self.secret_key.encode()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        path = self.var_dir / self.SECRET_FILE
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()
