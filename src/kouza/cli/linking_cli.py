"""``kouza banks``: the wallet's side of bank links — reconciliation and link listings.

``reconcile`` compares the wallet's bank movements with the bank's transfer report, settles what
is certain (see :mod:`kouza.linking.reconcile`) and prints a table; it exits 1 when
differences remain for a person to resolve, so it can run from cron and alert.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from kouza.cli.common import (
    Col,
    JsonOption,
    Listing,
    console,
    fail,
    money,
    parse_uuid,
    print_records,
    reports_errors,
    runtime,
    yen_cell,
)
from kouza.linking import probation
from kouza.linking.keys import client_jwks
from kouza.linking.reconcile import ReconcileReport
from kouza.linking.service import linking

app = typer.Typer(help="Bank links and movements (wallet side).", no_args_is_help=True)


def _moment(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise fail(f"{option}: give a time zone (e.g. 2026-03-01T00:00:00+09:00)")
    return moment


def _print(report: ReconcileReport) -> None:
    console.print(
        f"checked {report.checked} movement(s) from {report.since.isoformat()} to "
        f"{report.until.isoformat()}: {len(report.posted)} posted, {len(report.voided)} "
        f"voided, {len(report.waiting)} waiting, {len(report.differences)} difference(s)"
    )
    if not report.differences:
        return
    table = Listing(
        "kind", "movement", "bank key", "wallet", "bank", "detail", keep=("movement", "bank key")
    )
    for item in report.differences:
        table.add_row(
            item.kind,
            item.movement_id or "-",
            item.bank_key,
            money(item.wallet_amount) if item.wallet_amount is not None else "-",
            money(item.bank_amount) if item.bank_amount is not None else "-",
            item.detail,
        )
    table.print()


@app.command("reconcile")
@reports_errors
def reconcile(
    since: Annotated[str, typer.Option(help="Start of the window (ISO 8601 with zone)")],
    until: Annotated[str, typer.Option(help="End of the window, exclusive (ISO 8601)")],
) -> None:
    """Compare bank movements with the bank's report; settle what is certain."""
    start, end = _moment(since, "--since"), _moment(until, "--until")
    with runtime().db.unit_of_work() as session:
        report = linking.reconcile(session, since=start, until=end)
    _print(report)
    if not report.ok:
        raise typer.Exit(1)


@app.command("links")
@reports_errors
def links(
    wallet_id: Annotated[str, typer.Argument(help="Wallet id")], as_json: JsonOption = False
) -> None:
    """The bank accounts linked to a wallet (last three digits only)."""
    with runtime().db.unit_of_work() as session:
        records = [
            {
                "link_id": str(link.id),
                "bank_code": link.bank_code,
                "branch": link.branch,
                "account_type": link.account_type,
                "account_last3": link.account_last3,
                "status": link.status,
                "restricted": link.restricted,
                "max_per_debit_yen": link.max_per_debit,
                "max_30_days_yen": link.max_30_days,
                "created_at": link.created_at,
            }
            for link in linking.links_of_wallet(session, parse_uuid(wallet_id, "wallet"))
        ]
    columns = [
        Col("link", "link_id", keep=True),
        Col("bank", "bank_code", keep=True),
        Col("branch", "branch", keep=True),
        Col("account", "account_last3", show=lambda last3: f"***{last3}"),
        Col("status", "status"),
        Col("per debit", "max_per_debit_yen", show=yen_cell),
        Col("30 days", "max_30_days_yen", show=yen_cell),
        Col("created (UTC)", "created_at"),
    ]
    print_records(records, columns, as_json=as_json, empty="no bank links on this wallet")


@app.command("oauth-jwks")
@reports_errors
def oauth_jwks() -> None:
    """Print the wallet's public client keys (JWKS) to register at an ``oauth`` bank."""
    typer.echo(json.dumps(client_jwks(runtime()), indent=2))


links_app = typer.Typer(
    help="Restricted links to legacy-form banks (ADR 0032).", no_args_is_help=True
)


@links_app.command("release-due")
@reports_errors
def release_due() -> None:
    """Release the probation holds that are due; send back those of revoked links.

    Run it from cron every few minutes (``kouza serve`` has no periodic worker). Idempotent;
    every decision is audited with the actor ``probation``. Exits 0 also when holds wait
    (a suspended link, a locked wallet, a bank answer still unknown): they are listed."""
    report = probation.release_due(runtime())
    console.print(
        f"released {len(report.released)}, returned to the bank {len(report.returned)}, "
        f"waiting {len(report.waiting)}"
    )
    for movement_id in report.waiting:
        console.print(f"waiting: {movement_id}")
