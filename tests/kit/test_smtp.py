"""The SMTP e-mail sender against a real local SMTP server (aiosmtpd): plain, STARTTLS, AUTH.

The production rule is tested too: a runtime with ``KOUZA_ENV=production`` refuses the
development mailbox files, and with SMTP configured a sign-up's code reaches the server while
nothing under ``var/`` (the database included) and no log line holds it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kouza.assembly import build_runtime
from kouza.config import Settings
from kouza.identity.service import identity
from kouza.kit.db import make_engine
from kouza.kit.migrate import upgrade
from kouza.kit.notify import (
    FileMailbox,
    Message,
    SenderConfigurationError,
    SmtpEndpoint,
    SmtpSender,
    smtp_ssl_context,
)
from tests.conftest import TEST_SECRET

SENT_AT = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
USER, PASSWORD = "kouza-mailer", "pa:ss@word/1"


@dataclass
class Inbox:
    """What the test SMTP server received."""

    envelopes: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.envelopes.append(
            (str(envelope.mail_from), list(envelope.rcpt_tos), message_from_bytes(content))
        )
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        ):
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    server_context: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A test CA and a server certificate for 127.0.0.1, made with ``cryptography``."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kouza test SMTP CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return Tls(folder / "ca.pem", context)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    inbox: Inbox
    port: int


def _serve(**options: Any) -> Iterator[Server]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, **options
    )
    controller.start()
    try:
        yield Server(inbox, port)
    finally:
        controller.stop()


@pytest.fixture
def plain_server() -> Iterator[Server]:
    yield from _serve(auth_require_tls=True)


@pytest.fixture
def starttls_server(tls: Tls) -> Iterator[Server]:
    yield from _serve(tls_context=tls.server_context, require_starttls=True, auth_required=True)


def text_of(mail: EmailMessage) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


def message(body: str = "Your code is 482913.") -> Message:
    return Message(
        channel="email",
        recipient="hanako@example.jp",
        subject="kouza: your code",
        body=body,
        sent_at=SENT_AT,
    )


class TestSmtpEndpoint:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("smtp://127.0.0.1:2525", SmtpEndpoint("127.0.0.1", 2525, "plain")),
            ("smtp://mail.example.jp", SmtpEndpoint("mail.example.jp", 25, "plain")),
            (
                "smtp+starttls://u%40x:p%3Aw@mail.example.jp",
                SmtpEndpoint("mail.example.jp", 587, "starttls", "u@x", "p:w"),
            ),
            ("smtps://u:p@mail.example.jp", SmtpEndpoint("mail.example.jp", 465, "tls", "u", "p")),
        ],
    )
    def test_urls(self, url: str, expected: SmtpEndpoint) -> None:
        assert SmtpEndpoint.from_url(url) == expected

    @pytest.mark.parametrize(
        ("url", "complaint"),
        [
            ("http://mail.example.jp", "must start with"),
            ("smtp://user:secret@mail.example.jp", "never sent without TLS"),
            ("smtps://user@mail.example.jp", "both user and password"),
            ("smtps://", "no host"),
            ("smtp://mail.example.jp/inbox", "no path"),
            ("smtp://mail.example.jp:99999", "not a URL"),
        ],
    )
    def test_bad_urls_are_refused(self, url: str, complaint: str) -> None:
        with pytest.raises(SenderConfigurationError, match=complaint):
            SmtpEndpoint.from_url(url)

    def test_the_password_is_not_in_the_repr(self) -> None:
        assert "p:w" not in repr(SmtpEndpoint.from_url("smtps://u:p%3Aw@mail.example.jp"))


class TestSmtpSender:
    def test_plain_delivery(self, plain_server: Server) -> None:
        sender = SmtpSender(
            SmtpEndpoint("127.0.0.1", plain_server.port, "plain"),
            from_address="no-reply@kouza.example",
        )
        sender.send(message())

        ((mail_from, rcpt, mail),) = plain_server.inbox.envelopes
        assert (mail_from, rcpt) == ("no-reply@kouza.example", ["hanako@example.jp"])
        assert (mail["Subject"], mail["To"]) == ("kouza: your code", "hanako@example.jp")
        assert text_of(mail).strip() == "Your code is 482913."

    def test_starttls_and_auth(self, starttls_server: Server, tls: Tls) -> None:
        endpoint = SmtpEndpoint.from_url(
            f"smtp+starttls://{USER}:pa%3Ass%40word%2F1@127.0.0.1:{starttls_server.port}"
        )
        sender = SmtpSender(
            endpoint,
            from_address="no-reply@kouza.example",
            ssl_context=smtp_ssl_context(tls.ca_file),
        )
        sender.send(message("こんにちは: 482913"))

        assert starttls_server.inbox.logins == [USER]
        ((_, _, mail),) = starttls_server.inbox.envelopes
        assert text_of(mail).strip() == "こんにちは: 482913"

    def test_a_wrong_password_is_refused_and_nothing_is_sent(
        self, starttls_server: Server, tls: Tls
    ) -> None:
        sender = SmtpSender(
            SmtpEndpoint("127.0.0.1", starttls_server.port, "starttls", USER, "wrong"),
            from_address="no-reply@kouza.example",
            ssl_context=smtp_ssl_context(tls.ca_file),
        )
        with pytest.raises(Exception, match="535"):
            sender.send(message())
        assert starttls_server.inbox.envelopes == []

    def test_an_untrusted_certificate_is_refused(self, starttls_server: Server) -> None:
        # the system roots do not know the test CA: no way to send, no way to skip the check
        sender = SmtpSender(
            SmtpEndpoint("127.0.0.1", starttls_server.port, "starttls"),
            from_address="no-reply@kouza.example",
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            sender.send(message())
        assert starttls_server.inbox.envelopes == []

    def test_starttls_is_required_once_asked_for(self, plain_server: Server) -> None:
        sender = SmtpSender(
            SmtpEndpoint("127.0.0.1", plain_server.port, "starttls"),
            from_address="no-reply@kouza.example",
        )
        with pytest.raises(Exception, match="STARTTLS"):
            sender.send(message())
        assert plain_server.inbox.envelopes == []


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        secret_key=TEST_SECRET,
        database_url=f"sqlite:///{tmp_path / 'kouza.db'}",
        **changes,
    )


class TestProduction:
    def test_the_mailbox_files_are_refused_in_production(self, tmp_path: Path) -> None:
        with pytest.raises(SenderConfigurationError, match="KOUZA_SMTP_URL"):
            build_runtime(_settings(tmp_path, env="production"))

    def test_the_sms_mailbox_file_is_refused_too(
        self, plain_server: Server, tmp_path: Path
    ) -> None:
        with pytest.raises(SenderConfigurationError, match="KOUZA_SMS_SENDER=http"):
            build_runtime(
                _settings(
                    tmp_path,
                    env="production",
                    smtp_url=f"smtp://127.0.0.1:{plain_server.port}",
                    smtp_from="no-reply@kouza.example",
                )
            )

    def test_development_still_uses_the_mailbox_file(self, tmp_path: Path) -> None:
        runtime = build_runtime(_settings(tmp_path))
        assert isinstance(runtime.senders["email"], FileMailbox)
        runtime.db.dispose()

    def test_no_code_is_written_in_clear_to_disk_or_logs(
        self,
        starttls_server: Server,
        tls: Tls,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        settings = _settings(
            tmp_path,
            env="production",
            smtp_url=f"smtp+starttls://{USER}:pa%3Ass%40word%2F1@127.0.0.1:{starttls_server.port}",
            smtp_from="no-reply@kouza.example",
            smtp_ca_file=tls.ca_file,
        )
        engine = make_engine(settings.database_url)
        upgrade(engine)
        engine.dispose()
        runtime = build_runtime(settings, senders={"sms": _NoSms()})
        caplog.set_level(logging.DEBUG)
        with runtime.db.unit_of_work() as session:
            identity.signup(session, email="hanako@example.jp", password="a long passphrase 42")
        runtime.db.dispose()

        ((_, _, mail),) = starttls_server.inbox.envelopes
        found = re.search(r"\b(\d{6})\b", text_of(mail))
        assert found is not None
        code = found.group(1).encode()
        on_disk = [
            path for path in tmp_path.rglob("*") if path.is_file() and code in path.read_bytes()
        ]
        assert on_disk == []
        # aiosmtpd's own "mail.log" is the receiving server's log, not the platform's
        ours = [
            record.getMessage()
            for record in caplog.records
            if not record.name.startswith("mail.log")
        ]
        assert not [line for line in ours if code.decode() in line]
        printed = capfd.readouterr()
        assert code.decode() not in printed.out + printed.err


class _NoSms:
    """Production SMS would be the HTTP gateway; this test sends no SMS."""

    def send(self, message: Message) -> None:
        raise AssertionError("no SMS expected")
