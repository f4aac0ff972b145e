"""The development CA on disk, for the ``kouza dev ca`` CLI.

Layout of the directory (default ``./var/devca``)::

    root.cert.pem  root.key.pem            the root (self-signed)
    issuing.cert.pem  issuing.key.pem      the intermediate, if created with one
    cards/<SERIAL>.cert.pem  .key.pem      each test citizen's signing certificate and key
    revoked.json                           {"<SERIAL>": {"revoked_at": ISO-8601, "reason": …}}
    crl/<label>.der                        the latest CRL of each CA

Every private key is PEM, encrypted with the passphrase (``KOUZA_DEVCA_PASSPHRASE``, default
:data:`DEFAULT_PASSPHRASE`) and written with mode 0600. The dev passphrase protects against
nothing but accidental copying; these keys are not secrets and must never sign anything real.
Serials are shown and accepted as upper-case hexadecimal.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kouza.identity.ekyc.devca import CaKey, DevCa, DevCertificateAuthority, Revocation, TestCard
from kouza.identity.ekyc.errors import (
    DevCaAlreadyInitialized,
    DevCaAlreadyRevoked,
    DevCaInvalidInput,
    DevCaNotInitialized,
    DevCaPassphraseRejected,
    DevCaUnknownSerial,
)

DEFAULT_DIRECTORY = Path("var/devca")
DEFAULT_PASSPHRASE = "kouza-devca-not-a-secret"
PASSPHRASE_ENV = "KOUZA_DEVCA_PASSPHRASE"
_REVOKED_FILE = "revoked.json"


def format_serial(serial: int) -> str:
    """Upper-case hexadecimal, as the CLI shows serials."""
    return f"{serial:X}"


def parse_serial(text: str) -> int:
    """Accept ``ABCD``, ``0xabcd`` or ``ab:cd``."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        return int(cleaned, 16)
    except ValueError:
        raise DevCaInvalidInput(f"{text!r} is not a hexadecimal serial number") from None


@dataclass(frozen=True)
class StoredCard:
    """Paths of one issued card."""

    serial: int
    certificate_path: Path
    key_path: Path


class DevCaStore:
    """Reads and writes one development CA directory."""

    def __init__(self, directory: Path, passphrase: str) -> None:
        self.directory = directory
        self._passphrase = passphrase.encode("utf-8")

    def exists(self) -> bool:
        """True if a CA lives here."""
        return (self.directory / "root.cert.pem").exists()

    def create(self, ca: DevCertificateAuthority) -> None:
        """Write a new CA; refuses to overwrite one."""
        if self.exists():
            raise DevCaAlreadyInitialized(f"a development CA already exists in {self.directory}")
        (self.directory / "cards").mkdir(parents=True, exist_ok=True)
        for dev_ca in ca.cas:
            self._write_pem(f"{dev_ca.label}.cert.pem", _certificate_pem(dev_ca.certificate))
            self._write_key(self.directory / f"{dev_ca.label}.key.pem", dev_ca.key)
        self.save_revocations(ca)

    def load(self) -> DevCertificateAuthority:
        """The CA with everything it issued and revoked."""
        if not self.exists():
            raise DevCaNotInitialized(
                f"no development CA in {self.directory}; run `kouza dev ca init` first"
            )
        root = self._load_ca("root")
        issuing = self._load_ca("issuing") if self._has("issuing.cert.pem") else None
        ca = DevCertificateAuthority(root, issuing)
        if issuing is not None:
            root.issued[issuing.certificate.serial_number] = issuing.certificate
        for certificate in self.card_certificates():
            ca.issuing.issued[certificate.serial_number] = certificate
        self._load_revocations(ca)
        return ca

    def save_card(self, card: TestCard) -> StoredCard:
        """Write a card's certificate and encrypted key."""
        serial = format_serial(card.certificate.serial_number)
        certificate_path = self._write_pem(
            f"cards/{serial}.cert.pem", _certificate_pem(card.certificate)
        )
        key_path = self.directory / f"cards/{serial}.key.pem"
        self._write_key(key_path, card.private_key)
        return StoredCard(card.certificate.serial_number, certificate_path, key_path)

    def card_certificates(self) -> list[x509.Certificate]:
        """Every issued card certificate, oldest first."""
        paths = sorted((self.directory / "cards").glob("*.cert.pem"))
        certificates = [x509.load_pem_x509_certificate(path.read_bytes()) for path in paths]
        return sorted(certificates, key=lambda cert: cert.not_valid_before_utc)

    def revoke(
        self, ca: DevCertificateAuthority, serial: int, *, now: datetime, reason: x509.ReasonFlags
    ) -> None:
        """Revoke and persist; refuses unknown or already revoked serials."""
        if any(serial in dev_ca.revoked for dev_ca in ca.cas):
            raise DevCaAlreadyRevoked(f"{format_serial(serial)} is already revoked")
        try:
            ca.revoke(serial, now=now, reason=reason)
        except KeyError:
            raise DevCaUnknownSerial(f"this CA never issued {format_serial(serial)}") from None
        self.save_revocations(ca)

    def save_revocations(self, ca: DevCertificateAuthority) -> None:
        """Write ``revoked.json``."""
        entries = {
            format_serial(serial): {
                "revoked_at": revocation.revoked_at.isoformat(),
                "reason": revocation.reason.value,
            }
            for dev_ca in ca.cas
            for serial, revocation in dev_ca.revoked.items()
        }
        (self.directory / _REVOKED_FILE).write_text(json.dumps(entries, indent=2) + "\n")

    def write_crls(self, ca: DevCertificateAuthority, *, now: datetime) -> list[Path]:
        """Write a fresh CRL for every CA; return the paths."""
        (self.directory / "crl").mkdir(exist_ok=True)
        paths = []
        for dev_ca in ca.cas:
            path = self.directory / "crl" / f"{dev_ca.label}.der"
            path.write_bytes(dev_ca.crl(now=now))
            paths.append(path)
        return paths

    def _load_ca(self, label: str) -> DevCa:
        certificate = x509.load_pem_x509_certificate(
            (self.directory / f"{label}.cert.pem").read_bytes()
        )
        return DevCa(self._load_key(self.directory / f"{label}.key.pem"), certificate, label)

    def _load_key(self, path: Path) -> CaKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), self._passphrase)
        except (ValueError, TypeError):
            raise DevCaPassphraseRejected(
                f"cannot open {path.name}: wrong passphrase (set {PASSPHRASE_ENV})"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise DevCaInvalidInput(f"{path.name} holds an unsupported key type")
        return key

    def _load_revocations(self, ca: DevCertificateAuthority) -> None:
        path = self.directory / _REVOKED_FILE
        entries = json.loads(path.read_text()) if path.exists() else {}
        for serial_text, entry in entries.items():
            serial = parse_serial(serial_text)
            revocation = Revocation(
                datetime.fromisoformat(entry["revoked_at"]), x509.ReasonFlags(entry["reason"])
            )
            for dev_ca in ca.cas:
                if serial in dev_ca.issued:
                    dev_ca.revoked[serial] = revocation

    def _has(self, name: str) -> bool:
        return (self.directory / name).exists()

    def _write_pem(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path

    def _write_key(self, path: Path, key: CaKey) -> None:
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        # Create with 0600 from the start rather than chmod afterwards (no readable window).
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)


def _certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)
