"""Outgoing messages to people: the sender interfaces, SMTP, and the development mailboxes.

Real gateways implement the same ``Protocol``: :class:`SmtpSender` for e-mail (``KOUZA_SMTP_URL``,
below), the HTTP SMS gateway in :mod:`kouza.identity.smsgateway`. The development senders write
each message to a mailbox file under ``var/`` (what a developer's MailHog would be) that ``kouza
dev outbox`` shows; tests use :class:`MemoryMailbox`. A file mailbox holds verification codes in
clear, so a runtime with ``KOUZA_ENV=production`` refuses to start with one
(:func:`require_production_senders`). The platform itself keeps no message body once it is
delivered (see :mod:`kouza.kit.outbox`).

**SMTP URL.** ``smtp://host[:25]`` (no TLS: only for a relay on the same host or network, and
never with a password), ``smtp+starttls://user:password@host[:587]`` (STARTTLS, required once
asked for), ``smtps://user:password@host[:465]`` (implicit TLS). User and password are
percent-decoded. The server certificate is verified against the system roots, or against
``KOUZA_SMTP_CA_FILE`` (a private relay's CA); there is no way to turn verification off.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Message:
    """One delivered message."""

    channel: str
    recipient: str
    subject: str
    body: str
    sent_at: datetime


class Sender(Protocol):
    """Delivers a message on one channel (e-mail or SMS)."""

    def send(self, message: Message) -> None: ...


class MemoryMailbox:
    """Keeps delivered messages in memory (tests, simulator)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        with self._lock:
            self.messages.append(message)

    def last_to(self, recipient: str) -> Message:
        """The newest message to ``recipient``."""
        for message in reversed(self.messages):
            if message.recipient == recipient:
                return message
        raise LookupError(f"no message to {recipient}")


class FileMailbox:
    """Appends delivered messages as JSON lines to a file (development)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = asdict(message) | {"sent_at": message.sent_at.isoformat()}
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.path.chmod(0o600)

    def read(self) -> list[Message]:
        """Every message delivered so far, oldest first."""
        if not self.path.exists():
            return []
        messages = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            raw = json.loads(line)
            raw["sent_at"] = datetime.fromisoformat(raw["sent_at"])
            messages.append(Message(**raw))
        return messages


SmtpSecurity = Literal["plain", "starttls", "tls"]
_SCHEMES: dict[str, tuple[SmtpSecurity, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


class SenderConfigurationError(ValueError):
    """A sender setting is missing, malformed or unsafe for the environment."""


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where and how to submit mail, parsed from ``KOUZA_SMTP_URL``."""

    host: str
    port: int
    security: SmtpSecurity
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> SmtpEndpoint:
        """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://``; refuse anything unsafe."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise SenderConfigurationError(f"KOUZA_SMTP_URL is not a URL: {error}") from None
        if parts.scheme not in _SCHEMES:
            raise SenderConfigurationError(
                "KOUZA_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://"
            )
        if not parts.hostname:
            raise SenderConfigurationError("KOUZA_SMTP_URL names no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise SenderConfigurationError("KOUZA_SMTP_URL takes no path, query or fragment")
        security, default_port = _SCHEMES[parts.scheme]
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if security == "plain" and (username or password):
            raise SenderConfigurationError(
                "KOUZA_SMTP_URL: a password is never sent without TLS; "
                "use smtp+starttls:// or smtps://"
            )
        if (username is None) != (password is None):
            raise SenderConfigurationError("KOUZA_SMTP_URL: give both user and password")
        return cls(parts.hostname, port or default_port, security, username, password)


class SmtpSender:
    """Delivers ``email`` messages through an SMTP submission server (one connection each)."""

    def __init__(
        self,
        endpoint: SmtpEndpoint,
        *,
        from_address: str,
        ssl_context: ssl.SSLContext | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        if "@" not in from_address:
            raise SenderConfigurationError("KOUZA_SMTP_FROM must be an e-mail address")
        self.endpoint = endpoint
        self.from_address = from_address
        self._context = ssl_context or ssl.create_default_context()
        self._timeout = timeout_seconds

    def send(self, message: Message) -> None:
        """Submit one message; raises (``smtplib.SMTPException``, ``OSError``) on failure."""
        if message.channel != "email":
            raise ValueError(f"the SMTP sender carries e-mail, not {message.channel!r}")
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(message.sent_at)
        mail["Message-ID"] = make_msgid(domain=self.from_address.rpartition("@")[2])
        mail.set_content(message.body)
        with self._connect() as smtp:
            if self.endpoint.security == "starttls":
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if self.endpoint.username is not None and self.endpoint.password is not None:
                smtp.login(self.endpoint.username, self.endpoint.password)
            smtp.send_message(mail)

    def _connect(self) -> smtplib.SMTP:
        endpoint = self.endpoint
        if endpoint.security == "tls":
            return smtplib.SMTP_SSL(
                endpoint.host, endpoint.port, timeout=self._timeout, context=self._context
            )
        smtp = smtplib.SMTP(endpoint.host, endpoint.port, timeout=self._timeout)
        smtp.ehlo()
        if endpoint.security == "starttls" and not smtp.has_extn("starttls"):
            smtp.close()
            raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
        return smtp


def smtp_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificate-verifying TLS: the system roots, or only ``ca_file`` when given."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as error:
        raise SenderConfigurationError(
            f"KOUZA_SMTP_CA_FILE: cannot load {ca_file}: {error}"
        ) from None


def require_production_senders(senders: dict[str, Sender]) -> None:
    """Refuse a development mailbox file in production: it would hold codes in clear."""
    for channel, sender in sorted(senders.items()):
        if isinstance(sender, FileMailbox):
            remedy = "KOUZA_SMTP_URL" if channel == "email" else "KOUZA_SMS_SENDER=http"
            raise SenderConfigurationError(
                f"KOUZA_ENV=production: {channel} would be written in clear to {sender.path}; "
                f"configure a real sender ({remedy})"
            )
