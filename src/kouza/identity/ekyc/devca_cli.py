"""``kouza dev ca``: run the JPKI-like development CA from the command line.

Commands: ``init`` (create the root, optionally an intermediate), ``issue`` (a signing
certificate and key for a test citizen), ``revoke SERIAL``, ``crl`` (write fresh CRLs) and
``list``. The CA lives in a directory (``--dir``, default ``./var/devca``); its private keys are
encrypted with ``--passphrase`` / ``KOUZA_DEVCA_PASSPHRASE`` (default: the documented dev
passphrase), which is never printed. Errors print one line and exit with status 1.

This is a developer tool at the edge of the system, so it reads the wall clock; the library
functions it calls take the time as a parameter.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from rich.console import Console
from rich.table import Table

from kouza.errors import KouzaError
from kouza.identity.ekyc.devca import DevCertificateAuthority, TestCitizen
from kouza.identity.ekyc.devca_store import (
    DEFAULT_DIRECTORY,
    DEFAULT_PASSPHRASE,
    PASSPHRASE_ENV,
    DevCaStore,
    format_serial,
    parse_serial,
)
from kouza.identity.ekyc.errors import DevCaAlreadyInitialized, DevCaInvalidInput
from kouza.identity.ekyc.jpki import read_attributes
from kouza.identity.ekyc.pki import Refusal
from kouza.identity.ekyc.result import Sex

app = typer.Typer(
    help="JPKI-like development certificate authority (test citizens only, never real).",
    no_args_is_help=True,
)
console = Console()
error_console = Console(stderr=True)

DirectoryOption = Annotated[
    Path, typer.Option("--dir", help="Directory holding the development CA.")
]
PassphraseOption = Annotated[
    str,
    typer.Option(
        "--passphrase",
        envvar=PASSPHRASE_ENV,
        help="Passphrase encrypting the CA's private keys (dev default if unset).",
        show_default=False,
    ),
]


def _fail(error: KouzaError) -> typer.Exit:
    error_console.print(f"[bold red]error:[/] {error.message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _now() -> datetime:
    return datetime.now(UTC)


@app.command()
def init(
    directory: DirectoryOption = DEFAULT_DIRECTORY,
    passphrase: PassphraseOption = DEFAULT_PASSPHRASE,
    intermediate: Annotated[
        bool, typer.Option(help="Also create an intermediate that issues the cards.")
    ] = False,
) -> None:
    """Create a root CA (and optionally an intermediate) in the directory."""
    store = DevCaStore(directory, passphrase)
    try:
        if store.exists():  # checked before generating keys, not only when writing
            raise DevCaAlreadyInitialized(f"a development CA already exists in {directory}")
        now = _now()
        ca = DevCertificateAuthority.create(now=now, with_intermediate=intermediate)
        store.create(ca)
        store.write_crls(ca, now=now)  # the wallet can read them at once (docs/ekyc.md)
    except KouzaError as error:
        raise _fail(error) from None
    for dev_ca in ca.cas:
        console.print(
            f"created [bold]{dev_ca.label}[/] {dev_ca.certificate.subject.rfc4514_string()}"
            f" serial {format_serial(dev_ca.certificate.serial_number)}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"trust anchor: {directory / 'root.cert.pem'}", highlight=False, soft_wrap=True)
    console.print(
        "the wallet trusts it with: KOUZA_EKYC_JPKI_ROOT_CERTIFICATES="
        f"'[\"{directory / 'root.cert.pem'}\"]' KOUZA_EKYC_REVOCATION=crl "
        f"KOUZA_EKYC_REVOCATION_URL=file:{directory / 'crl'}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


@app.command()
def issue(
    name: Annotated[str, typer.Option(help="Full name, family and given name split by U+3000.")],
    address: Annotated[str, typer.Option(help="Address as on the card.")],
    birth_date: Annotated[str, typer.Option(help="Birth date, YYYY-MM-DD.")],
    sex: Annotated[Sex, typer.Option(help="Sex recorded on the card.")],
    directory: DirectoryOption = DEFAULT_DIRECTORY,
    passphrase: PassphraseOption = DEFAULT_PASSPHRASE,
) -> None:
    """Issue a JPKI-like signing certificate and key to a test citizen."""
    store = DevCaStore(directory, passphrase)
    try:
        citizen = TestCitizen(
            _text(name, "name"), _text(address, "address"), _date(birth_date), sex
        )
        ca = store.load()
        stored = store.save_card(ca.issue_card(citizen, now=_now()))
    except KouzaError as error:
        raise _fail(error) from None
    table = Table(title="issued test card", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    for label, value in (
        ("serial", format_serial(stored.serial)),
        ("name", citizen.name),
        ("address", citizen.address),
        ("birth date", citizen.birth_date.isoformat()),
        ("sex", citizen.sex.value),
        ("certificate", str(stored.certificate_path)),
        ("private key (encrypted)", str(stored.key_path)),
    ):
        table.add_row(label, value)
    console.print(table)


@app.command()
def revoke(
    serial: Annotated[str, typer.Argument(help="Serial number in hex, as `list` shows it.")],
    reason: Annotated[
        str, typer.Option(help="RFC 5280 reason, e.g. keyCompromise, affiliationChanged.")
    ] = "unspecified",
    directory: DirectoryOption = DEFAULT_DIRECTORY,
    passphrase: PassphraseOption = DEFAULT_PASSPHRASE,
) -> None:
    """Revoke a certificate and publish fresh CRLs (crl/<label>.der)."""
    store = DevCaStore(directory, passphrase)
    try:
        number = parse_serial(serial)
        ca = store.load()
        now = _now()
        store.revoke(ca, number, now=now, reason=_reason(reason))
        paths = store.write_crls(ca, now=now)
    except KouzaError as error:
        raise _fail(error) from None
    console.print(
        f"revoked {format_serial(number)}; published {', '.join(str(p) for p in paths)}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def crl(
    directory: DirectoryOption = DEFAULT_DIRECTORY,
    passphrase: PassphraseOption = DEFAULT_PASSPHRASE,
) -> None:
    """Write a fresh CRL (DER) for every CA of the hierarchy."""
    store = DevCaStore(directory, passphrase)
    try:
        paths = store.write_crls(store.load(), now=_now())
    except KouzaError as error:
        raise _fail(error) from None
    for path in paths:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command(name="list")
def list_cards(
    directory: DirectoryOption = DEFAULT_DIRECTORY,
    passphrase: PassphraseOption = DEFAULT_PASSPHRASE,
) -> None:
    """List issued test cards and their status."""
    store = DevCaStore(directory, passphrase)
    try:
        ca = store.load()
    except KouzaError as error:
        raise _fail(error) from None
    now = _now()
    revoked = {serial for dev_ca in ca.cas for serial in dev_ca.revoked}
    table = Table(title=f"test cards in {directory}")
    table.add_column("serial", overflow="fold")
    for column in ("name", "birth date", "valid until", "status"):
        table.add_column(column, no_wrap=True)
    for certificate in store.card_certificates():
        name, birth = _holder(certificate)
        table.add_row(
            format_serial(certificate.serial_number),
            name,
            birth,
            certificate.not_valid_after_utc.date().isoformat(),
            _status(certificate, revoked, now),
        )
    console.print(table)


def _holder(certificate: x509.Certificate) -> tuple[str, str]:
    try:
        attributes = read_attributes(certificate)
    except Refusal:
        return "?", "?"
    return attributes.name, attributes.birth_date.isoformat()


def _status(certificate: x509.Certificate, revoked: set[int], now: datetime) -> str:
    if certificate.serial_number in revoked:
        return "[red]revoked[/]"
    if now > certificate.not_valid_after_utc:
        return "[yellow]expired[/]"
    return "[green]valid[/]"


def _text(value: str, label: str) -> str:
    if not value.strip():
        raise DevCaInvalidInput(f"{label} must not be empty")
    return value


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DevCaInvalidInput(f"birth date {value!r} is not YYYY-MM-DD") from None


def _reason(value: str) -> x509.ReasonFlags:
    try:
        return x509.ReasonFlags(value)
    except ValueError:
        choices = ", ".join(flag.value for flag in x509.ReasonFlags)
        raise DevCaInvalidInput(f"unknown reason {value!r}; one of: {choices}") from None
