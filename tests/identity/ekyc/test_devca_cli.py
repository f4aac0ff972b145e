"""`kouza dev ca` through typer's CliRunner, in a temporary directory."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner, Result

from kouza.identity.ekyc.devca import TestCard
from kouza.identity.ekyc.devca_cli import app
from kouza.identity.ekyc.devca_store import DEFAULT_PASSPHRASE
from kouza.identity.ekyc.jpki import JPKI_SIGNING_POLICY_OIDS, JpkiVerifier, read_attributes
from kouza.identity.ekyc.nonces import InMemoryNonceStore
from kouza.identity.ekyc.result import EkycFailure, Sex
from kouza.identity.ekyc.revocation import CrlRevocationChecker

PASSPHRASE = "correct horse battery staple"
CITIZEN = [
    "--name", "山田　太郎",
    "--address", "東京都千代田区霞が関二丁目１番２号",
    "--birth-date", "1985-06-15",
    "--sex", "male",
]  # fmt: skip


class Cli:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.runner = CliRunner()

    def __call__(self, *args: str, passphrase: str = PASSPHRASE) -> Result:
        env = {"KOUZA_DEVCA_PASSPHRASE": passphrase}
        return self.runner.invoke(app, [*args, "--dir", str(self.directory)], env=env)

    def card_certificates(self) -> list[x509.Certificate]:
        paths = sorted((self.directory / "cards").glob("*.cert.pem"))
        return [x509.load_pem_x509_certificate(path.read_bytes()) for path in paths]

    def card(self, certificate: x509.Certificate) -> TestCard:
        key_path = self.directory / "cards" / f"{certificate.serial_number:X}.key.pem"
        key = serialization.load_pem_private_key(key_path.read_bytes(), PASSPHRASE.encode())
        assert isinstance(key, rsa.RSAPrivateKey)
        return TestCard(certificate, key)

    def verifier(self, nonces: InMemoryNonceStore) -> JpkiVerifier:
        root = x509.load_pem_x509_certificate((self.directory / "root.cert.pem").read_bytes())

        def crl_from_disk(issuer: x509.Certificate) -> bytes | None:
            path = self.directory / "crl" / "root.der"
            return path.read_bytes() if path.exists() else None

        return JpkiVerifier(
            trust_anchors=[root],
            policy_oids=JPKI_SIGNING_POLICY_OIDS,
            revocation=CrlRevocationChecker(loader=crl_from_disk),
            nonces=nonces,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "devca")


def _verify(cli: Cli, card: TestCard) -> EkycFailure | None:
    nonces = InMemoryNonceStore()
    now = datetime.now(UTC)  # the CLI stamps with the wall clock, so verify at it too
    nonce = nonces.issue(now)
    result = cli.verifier(nonces).verify(
        certificate=card.certificate_der, signature=card.sign_nonce(nonce), nonce=nonce, now=now
    )
    return result.failure


class TestInit:
    def test_creates_root_with_encrypted_private_key(self, cli: Cli) -> None:
        result = cli("init")

        assert result.exit_code == 0, result.output
        key_file = cli.directory / "root.key.pem"
        assert key_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        root = x509.load_pem_x509_certificate((cli.directory / "root.cert.pem").read_bytes())
        assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
        assert root.issuer == root.subject
        assert PASSPHRASE not in result.output

    def test_with_intermediate(self, cli: Cli) -> None:
        assert cli("init", "--intermediate").exit_code == 0

        assert (cli.directory / "issuing.cert.pem").exists()
        assert (cli.directory / "issuing.key.pem").exists()

    def test_refuses_to_overwrite(self, cli: Cli) -> None:
        cli("init")
        before = (cli.directory / "root.cert.pem").read_bytes()

        result = cli("init")

        assert result.exit_code == 1
        assert "already exists" in result.output
        assert (cli.directory / "root.cert.pem").read_bytes() == before

    def test_default_directory_and_passphrase(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("KOUZA_DEVCA_PASSPHRASE", raising=False)

        result = CliRunner().invoke(app, ["init"])

        assert result.exit_code == 0, result.output
        key_pem = (tmp_path / "var" / "devca" / "root.key.pem").read_bytes()
        assert serialization.load_pem_private_key(key_pem, DEFAULT_PASSPHRASE.encode())


class TestIssue:
    def test_issues_a_jpki_shaped_card(self, cli: Cli) -> None:
        cli("init")

        result = cli("issue", *CITIZEN)

        assert result.exit_code == 0, result.output
        (certificate,) = cli.card_certificates()
        attributes = read_attributes(certificate)
        assert (attributes.name, attributes.address) == (
            "山田　太郎",
            "東京都千代田区霞が関二丁目１番２号",
        )
        assert (attributes.birth_date, attributes.sex) == (date(1985, 6, 15), Sex.MALE)
        assert PASSPHRASE not in result.output
        assert "PRIVATE KEY" not in result.output
        assert _verify(cli, cli.card(certificate)) is None  # init published the first CRL

    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            ("--birth-date", "15/06/1985", "YYYY-MM-DD"),
            ("--name", "  ", "name must not be empty"),
        ],
    )
    def test_bad_input(self, cli: Cli, option: str, value: str, message: str) -> None:
        cli("init")
        args = list(CITIZEN)
        args[args.index(option) + 1] = value

        result = cli("issue", *args)

        assert result.exit_code == 1
        assert message in result.output
        assert cli.card_certificates() == []

    def test_not_initialised(self, cli: Cli) -> None:
        result = cli("issue", *CITIZEN)

        assert result.exit_code == 1
        assert "kouza dev ca init" in result.output

    def test_wrong_passphrase(self, cli: Cli) -> None:
        cli("init")

        result = cli("issue", *CITIZEN, passphrase="guess")

        assert result.exit_code == 1
        assert "wrong passphrase" in result.output
        assert "guess" not in result.output


class TestRevokeAndCrl:
    def test_revocation_reaches_the_verifier_through_the_crl(self, cli: Cli) -> None:
        cli("init")
        cli("issue", *CITIZEN)
        (certificate,) = cli.card_certificates()
        card = cli.card(certificate)
        (cli.directory / "crl" / "root.der").unlink()
        assert _verify(cli, card) is EkycFailure.REVOCATION_UNKNOWN  # no CRL
        assert cli("crl").exit_code == 0
        assert _verify(cli, card) is None

        revoke = cli("revoke", f"{certificate.serial_number:x}", "--reason", "keyCompromise")
        assert revoke.exit_code == 0, revoke.output
        assert "published" in revoke.output  # revoke writes the CRLs itself

        assert _verify(cli, card) is EkycFailure.CERTIFICATE_REVOKED
        crl = x509.load_der_x509_crl((cli.directory / "crl" / "root.der").read_bytes())
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        assert entry is not None
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        assert reason is x509.ReasonFlags.key_compromise

    def test_unknown_serial(self, cli: Cli) -> None:
        cli("init")

        result = cli("revoke", "ABCDEF")

        assert result.exit_code == 1
        assert "never issued ABCDEF" in result.output

    def test_not_hex(self, cli: Cli) -> None:
        cli("init")

        assert cli("revoke", "xyz").exit_code == 1

    def test_twice(self, cli: Cli) -> None:
        cli("init")
        cli("issue", *CITIZEN)
        serial = f"{cli.card_certificates()[0].serial_number:X}"
        cli("revoke", serial)

        result = cli("revoke", serial)

        assert result.exit_code == 1
        assert "already revoked" in result.output

    def test_unknown_reason(self, cli: Cli) -> None:
        cli("init")
        cli("issue", *CITIZEN)
        serial = f"{cli.card_certificates()[0].serial_number:X}"

        result = cli("revoke", serial, "--reason", "boredom")

        assert result.exit_code == 1
        assert "unknown reason" in result.output

    def test_crl_with_intermediate_writes_both(self, cli: Cli) -> None:
        cli("init", "--intermediate")

        result = cli("crl")

        assert result.exit_code == 0
        assert sorted(path.name for path in (cli.directory / "crl").iterdir()) == [
            "issuing.der",
            "root.der",
        ]


class TestList:
    def test_lists_cards_with_status(self, cli: Cli) -> None:
        cli("init")
        cli("issue", *CITIZEN)
        serial = f"{cli.card_certificates()[0].serial_number:X}"
        listed = cli("list")
        cli("revoke", serial)

        after = cli("list")

        assert listed.exit_code == 0
        assert "山田　太郎" in listed.output
        assert "valid" in listed.output
        assert "1985-06-15" in listed.output
        assert "revoked" in after.output
