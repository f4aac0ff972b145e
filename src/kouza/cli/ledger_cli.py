"""``kouza ledger``: verification and housekeeping of the ledger."""

from __future__ import annotations

import typer
from rich.table import Table

from kouza.cli.common import console, error_console, money, reports_errors, runtime
from kouza.ledger.service import ledger

app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)


@app.command("verify")
@reports_errors
def verify() -> None:
    """Recompute every balance from the postings and report any difference (exit 1 if any)."""
    with runtime().db.unit_of_work() as session:
        report = ledger.verify(session)
    table = Table("checked", "count", show_header=False)
    table.add_row("accounts", str(report.accounts))
    table.add_row("journal entries", str(report.entries))
    table.add_row("postings", str(report.postings))
    table.add_row("sum of all balances", money(report.total_balance))
    console.print(table)
    if report.ok:
        console.print(
            "[bold green]ledger OK[/]: every balance equals the sum of its postings, "
            "every entry balances, no wallet is negative"
        )
        return
    for problem in report.problems:
        error_console.print(f"[bold red]difference:[/] {problem}")
    raise typer.Exit(1)


@app.command("expire-holds")
@reports_errors
def expire_holds() -> None:
    """Release every pending hold past its expiry."""
    with runtime().db.unit_of_work() as session:
        count = ledger.expire_holds(session)
    console.print(f"expired {count} holds")
