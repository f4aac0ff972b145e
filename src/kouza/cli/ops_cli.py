"""``kouza switches``, ``kouza cases`` and wallet locks: the incident tooling on the CLI."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from kouza.cli.common import cli_actor, console, parse_uuid, reports_errors, runtime
from kouza.ops.cases import cases
from kouza.ops.models import CaseStatus, SwitchScope
from kouza.ops.switches import switches

switches_app = typer.Typer(help="Kill switches (effective at once, audited).",
                           no_args_is_help=True)
cases_app = typer.Typer(help="Fraud cases.", no_args_is_help=True)
Reason = Annotated[str, typer.Option(help="Why (recorded in the audit trail)")]


def _set(scope: SwitchScope, target: str, active: bool, reason: str) -> None:
    with runtime().db.unit_of_work() as session:
        switch = switches.set(session, scope=scope, target=target, active=active,
                              actor=cli_actor(), reason=reason)
    state = "[bold red]ON[/]" if switch.active else "[green]off[/]"
    console.print(f"switch {switch.scope} {switch.target or '(all)'}: {state}")


@switches_app.command("on")
@reports_errors
def switch_on(scope: SwitchScope, reason: Reason,
              target: Annotated[str, typer.Argument(help="bank code or merchant id")] = "",
              ) -> None:
    """Turn a switch on (stop links, charges or payments)."""
    _set(scope, target, True, reason)


@switches_app.command("off")
@reports_errors
def switch_off(scope: SwitchScope, reason: Reason,
               target: Annotated[str, typer.Argument(help="bank code or merchant id")] = "",
               ) -> None:
    """Turn a switch off."""
    _set(scope, target, False, reason)


@switches_app.command("list")
@reports_errors
def switch_list() -> None:
    """The switches that are on."""
    table = Table("scope", "target", "since (UTC)", "by", "reason")
    with runtime().db.unit_of_work() as session:
        for switch in switches.active(session):
            table.add_row(switch.scope, switch.target or "(all)",
                          switch.changed_at.strftime("%Y-%m-%d %H:%M:%S"), switch.actor,
                          switch.reason)
    console.print(table)


@cases_app.command("list")
@reports_errors
def case_list(status: Annotated[CaseStatus | None, typer.Option()] = None) -> None:
    """Cases, newest first."""
    table = Table("case", "wallet", "status", "source", "summary", "opened (UTC)")
    with runtime().db.unit_of_work() as session:
        for case in cases.list(session, status=status):
            table.add_row(str(case.id), str(case.wallet_id), case.status, case.source,
                          case.summary, case.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@cases_app.command("open")
@reports_errors
def case_open(wallet_id: str, summary: Annotated[str, typer.Option(help="What was seen")]
              ) -> None:
    """Open a case about a wallet."""
    with runtime().db.unit_of_work() as session:
        case = cases.open(session, wallet_id=parse_uuid(wallet_id, "wallet"),
                          source=cli_actor(), summary=summary, actor=cli_actor())
    console.print(f"case [bold]{case.id}[/] ({case.status})")


@cases_app.command("move")
@reports_errors
def case_move(case_id: str, status: CaseStatus,
              note: Annotated[str, typer.Option(help="Finding")]) -> None:
    """Investigate, confirm fraud or clear a case."""
    with runtime().db.unit_of_work() as session:
        case = cases.move(session, case_id=parse_uuid(case_id, "case"), to=status,
                          actor=cli_actor(), note=note)
    console.print(f"case [bold]{case.id}[/] is now {case.status}")
