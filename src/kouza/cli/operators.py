"""``kouza operators`` and ``kouza audit``: operator accounts and the audit trail."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from kouza.cli.common import cli_actor, console, reports_errors, runtime
from kouza.ops.models import OperatorRole
from kouza.ops.service import ops

app = typer.Typer(help="Operator accounts (for the /v1/ops API).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail of operator actions.", no_args_is_help=True)


@app.command("create")
@reports_errors
def create(
    name: Annotated[str, typer.Argument(help="Operator name (unique)")],
    role: Annotated[OperatorRole, typer.Option(help="analyst or admin")] = OperatorRole.ANALYST,
) -> None:
    """Create an operator and print its API token once (it is stored hashed)."""
    with runtime().db.unit_of_work() as session:
        operator, token = ops.create_operator(session, name=name, role=role, actor=cli_actor())
    console.print(f"operator [bold]{operator.name}[/] ({operator.role}) created")
    console.print("token (shown once, keep it secret):")
    typer.echo(token)


@audit_app.command("list")
@reports_errors
def list_events(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50) -> None:
    """Newest operator actions first."""
    table = Table("time (UTC)", "actor", "action", "subject", "reason")
    with runtime().db.unit_of_work() as session:
        for event in ops.audit_trail(session, limit=limit):
            table.add_row(event.created_at.strftime("%Y-%m-%d %H:%M:%S"), event.actor,
                          event.action, event.subject, event.reason)
    console.print(table)
