"""``kouza bank``: run and inspect the simulated bank system (a separate system and database).

Configured by ``KOUZA_BANK_*`` (``KOUZA_BANK_DATABASE_URL``, default ``var/bank.db``). Every
command migrates the bank database first. Errors print one ``error:`` line and exit 1.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from sqlalchemy.orm import Session

from kouza.bank.app import create_bank_app
from kouza.bank.assembly import build_bank_runtime
from kouza.bank.core import core
from kouza.bank.holder import holder
from kouza.bank.migrate import upgrade
from kouza.bank.models import OperatorClient
from kouza.bank.oauth.clients import oauth_clients
from kouza.bank.outbox import deliver
from kouza.bank.runtime import BankRuntime
from kouza.bank.seed import SeedReport, seed_banks
from kouza.bank.settings import BankSettings
from kouza.cli.common import (
    Col,
    JsonOption,
    console,
    fail,
    print_json,
    print_records,
    reports_errors,
    yen_cell,
)
from kouza.kit.observability import configure_process

app = typer.Typer(
    help="The simulated bank system (its own database and API).", no_args_is_help=True
)


@contextmanager
def bank_runtime() -> Iterator[BankRuntime]:
    """A bank runtime on the configured, migrated database; disposed afterwards."""
    runtime = build_bank_runtime(BankSettings())
    try:
        upgrade(runtime.db.engine)
        yield runtime
    finally:
        runtime.db.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8100,
) -> None:
    """Serve the bank API (OpenAPI docs at /docs)."""
    with bank_runtime() as runtime:
        url = runtime.db.engine.url.render_as_string(hide_password=True)
        console.print(
            f"[bold]kouza bank[/] API on http://{host}:{port}  (docs: /docs, database: {url})"
        )
        settings = runtime.settings
        configure_process(settings)  # logs (KOUZA_BANK_LOG_FORMAT) and traces
        uvicorn.run(
            create_bank_app(runtime),
            host=host,
            port=port,
            log_config=None,  # ours: masked, with the request id
            access_log=False,  # ours: the route template, not the raw path
            log_level=settings.log_level.lower(),
        )


@app.command()
@reports_errors
def seed(
    customers: Annotated[
        int, typer.Option(min=1, max=10_000, help="Customers (one account each) per bank")
    ] = 5,
    rng_seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 2020,
    banks: Annotated[
        str | None,
        typer.Option(help="Comma-separated bank codes (default: all embedded partner banks)"),
    ] = None,
    show_secrets: Annotated[
        bool,
        typer.Option(
            help="Also print every account's PIN, internet-banking password and TOTP seed "
            "(development only: nothing else ever shows them, they are stored hashed or "
            "encrypted). Without it only the counts are printed. A narrow terminal gets one "
            "block per account, so no secret is ever cut"
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create the 2020 partner banks with realistic customers and accounts (their secrets
    only with --show-secrets; a TOTP code: python -c "import pyotp;
    print(pyotp.TOTP('SEED').now())")."""
    codes = [code.strip() for code in banks.split(",")] if banks else None
    with bank_runtime() as runtime, runtime.db.unit_of_work() as session:
        report = seed_banks(session, rng_seed=rng_seed, customers_per_bank=customers, codes=codes)
    _print_seed(report, show_secrets, as_json)


def _print_seed(report: SeedReport, show_secrets: bool, as_json: bool) -> None:
    accounts: list[dict[str, str | None]] = []
    for account in report.accounts:
        record: dict[str, str | None] = {
            "bank_code": account.bank_code,
            "branch_code": account.branch_code,
            "number": account.number,
            "name_kana": account.name_kana,
        }
        if show_secrets:
            record["pin"] = account.pin
            record["internet_banking_password"] = account.internet_banking_password
            record["totp_seed"] = account.totp_seed
        accounts.append(record)
    if as_json:
        print_json(
            {
                "banks": report.banks,
                "branches": report.branches,
                "customers": report.customers,
                "skipped_banks": report.skipped_banks,
                "accounts": accounts,
            }
        )
        return
    console.print(
        f"created {report.banks} banks, {report.branches} branches, "
        f"{report.customers} customers, {len(report.accounts)} accounts"
    )
    if report.skipped_banks:
        console.print(f"skipped existing banks: {', '.join(report.skipped_banks)}")
    if not show_secrets:
        console.print("(--show-secrets prints what each holder logs in with)")
        return
    columns = [
        Col("bank", "bank_code", keep=True),
        Col("branch", "branch_code", keep=True),
        Col("number", "number", keep=True),
        Col("holder", "name_kana"),
        Col("PIN", "pin", keep=True),
        Col("IB password", "internet_banking_password", keep=True),
        Col("TOTP seed", "totp_seed", keep=True),
    ]
    print_records(accounts, columns, as_json=False)


@app.command("banks")
@reports_errors
def list_banks(as_json: JsonOption = False) -> None:
    """List the banks of this deployment and how each links accounts."""
    with bank_runtime() as runtime, runtime.db.unit_of_work() as session:
        records = [
            {
                "code": bank.code,
                "name": bank.name,
                "name_kana": bank.name_kana,
                "auth_profile": bank.auth_profile,
                "monitor_failed_links": bank.monitor_failed_links,
                "notice_channel": bank.notice_channel,
            }
            for bank in core.banks(session)
        ]
    columns = [
        Col("code", "code", keep=True),
        Col("name", "name"),
        Col("kana", "name_kana"),
        Col("linking", "auth_profile"),
        Col("monitoring", "monitor_failed_links", show=lambda on: "on" if on else "off"),
        Col("notices", "notice_channel"),
    ]
    print_records(records, columns, as_json=as_json, empty="no banks: run `kouza bank seed`")


@app.command("register-client")
@reports_errors
def register_client(
    client_id: Annotated[str, typer.Argument(help="The operator's client id")],
    name: Annotated[str, typer.Option(help="Name shown to holders (e.g. ドコモ口座)")],
    webhook_url: Annotated[str | None, typer.Option(help="Where signed events go")] = None,
    jwks_file: Annotated[
        Path | None,
        typer.Option(
            help="The operator's public JWKS (kouza banks oauth-jwks > FILE): its private_key_jwt "
            "key, registered with the client"
        ),
    ] = None,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(help="An exact OAuth redirect URI (repeatable; with --jwks-file)"),
    ] = None,
) -> None:
    """Register a wallet operator (and its public key); prints the legacy secret once."""
    with bank_runtime() as runtime, runtime.db.unit_of_work() as session:
        client, secret = core.register_client(
            session, client_id=client_id, name=name, webhook_url=webhook_url
        )
        if jwks_file is not None:
            _register_keys(session, client, jwks_file, redirect_uri or [])
    console.print(
        f"client [bold]{client_id}[/] registered; legacy secret (shown once, for the "
        f"2020 form only): {secret}"
    )
    if jwks_file is not None:
        console.print("public key registered: the client authenticates with private_key_jwt")


@app.command("register-keys")
@reports_errors
def register_keys(
    client_id: Annotated[str, typer.Argument(help="The operator's client id")],
    jwks_file: Annotated[
        Path, typer.Option(help="The operator's public JWKS (kouza banks oauth-jwks > FILE)")
    ],
    redirect_uri: Annotated[
        list[str], typer.Option(help="An exact OAuth redirect URI (repeatable)")
    ],
) -> None:
    """Register an operator's public key (private_key_jwt) and redirect URIs, once."""
    with bank_runtime() as runtime, runtime.db.unit_of_work() as session:
        _register_keys(session, core.client(session, client_id), jwks_file, redirect_uri)
    console.print(
        f"client [bold]{client_id}[/]: public key registered; it authenticates with private_key_jwt"
    )


def _register_keys(
    session: Session, client: OperatorClient, jwks_file: Path, redirect_uris: list[str]
) -> None:
    try:
        jwks = json.loads(jwks_file.read_text())
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read a JWKS from {jwks_file} ({type(exc).__name__})") from None
    if not isinstance(jwks, dict):
        raise fail(f"{jwks_file} is not a JWKS object")
    oauth_clients.register(session, client, redirect_uris=redirect_uris, jwks=jwks)


@app.command("links")
@reports_errors
def links(
    account: Annotated[str, typer.Argument(help="BANK-BRANCH-NUMBER, e.g. 0125-100-1234567")],
    as_json: JsonOption = False,
) -> None:
    """Every wallet link on an account ("is my account linked to a wallet?")."""
    bank_code, branch_code, number = _split_account(account)
    with bank_runtime() as runtime, runtime.db.unit_of_work() as session:
        found = core.account(session, bank_code=bank_code, branch_code=branch_code, number=number)
        records = [
            {
                "link_id": str(link.id),
                "operator": session.get_one(OperatorClient, link.client_pk).name,
                "wallet_reference": link.wallet_reference,
                "status": link.status,
                "max_per_debit_yen": link.max_per_debit,
                "max_30_days_yen": link.max_30_days,
                "created_at": link.created_at,
                "notice_reference": link.notice_reference,
            }
            for link in holder.links(session, found)
        ]
    columns = [
        Col("link", "link_id", keep=True),
        Col("operator", "operator"),
        Col("wallet", "wallet_reference", keep=True),
        Col("status", "status"),
        Col("per debit", "max_per_debit_yen", show=yen_cell),
        Col("30 days", "max_30_days_yen", show=yen_cell),
        Col("created (UTC)", "created_at"),
        Col("reference", "notice_reference", keep=True),
    ]
    print_records(records, columns, as_json=as_json, empty="no wallet links on this account")


def _split_account(account: str) -> tuple[str, str, str]:
    parts = account.split("-")
    if len(parts) != 3:
        raise fail(f"account must be BANK-BRANCH-NUMBER (e.g. 0125-100-1234567), not {account!r}")
    return parts[0], parts[1], parts[2]


@app.command("revoke")
@reports_errors
def revoke(
    link_id: Annotated[str, typer.Argument(help="The link id")],
    reason: Annotated[
        str, typer.Option(help="Why (kept, and sent to the operator)")
    ] = "revoked at the branch counter",
) -> None:
    """Revoke a link: debits stop at once; the operator gets a signed webhook."""
    try:
        parsed = uuid.UUID(link_id)
    except ValueError:
        raise fail(f"not a valid link id: {link_id!r}") from None
    with bank_runtime() as runtime, runtime.db.unit_of_work() as session:
        link = holder.revoke(session, parsed, reason=reason)
        console.print(f"revoked link {link.id} ({link.wallet_reference})")


@app.command("deliver")
@reports_errors
def deliver_pending() -> None:
    """Retry every pending holder notice and webhook."""
    with bank_runtime() as runtime:
        console.print(f"delivered {deliver(runtime)} messages")
