"""``kouza operators`` and ``kouza audit``: operator accounts and the audit trail."""

from __future__ import annotations

from typing import Annotated

import typer

from kouza.cli.common import (
    Col,
    JsonOption,
    cli_actor,
    console,
    fail,
    print_records,
    reports_errors,
    runtime,
)
from kouza.controls import audit
from kouza.controls.models import OperatorRole
from kouza.controls.service import controls

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
        operator, token = controls.create_operator(session, name=name, role=role, actor=cli_actor())
    console.print(f"operator [bold]{operator.name}[/] ({operator.role}) created")
    console.print("token (shown once, keep it secret):")
    typer.echo(token)


@audit_app.command("list")
@reports_errors
def list_events(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50, as_json: JsonOption = False
) -> None:
    """Newest operator actions first."""
    with runtime().db.unit_of_work() as session:
        records = [
            {
                "id": event.id,
                "created_at": event.created_at,
                "actor": event.actor,
                "action": event.action,
                "subject": event.subject,
                "reason": event.reason,
                "details": event.details,
            }
            for event in controls.audit_trail(session, limit=limit)
        ]
    columns = [
        Col("time (UTC)", "created_at"),
        Col("actor", "actor"),
        Col("action", "action"),
        Col("subject", "subject", keep=True),
        Col("reason", "reason"),
    ]
    print_records(records, columns, as_json=as_json, empty="no audit events")


@audit_app.command("verify")
@reports_errors
def verify(
    anchor: Annotated[
        list[str] | None,
        typer.Option(help="ID:HASH of a record whose hash you recorded earlier (repeatable)"),
    ] = None,
) -> None:
    """Walk the audit hash chain; report the first broken record (exit 1) or the head."""
    anchors: dict[int, str] = {}
    for text in anchor or []:
        record_id, _, digest = text.partition(":")
        if not (
            record_id.isdecimal()
            and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)
        ):
            raise fail(f"--anchor takes ID:HASH (a record id and 64 hex digits), not {text!r}")
        anchors[int(record_id)] = digest
    with runtime().db.unit_of_work() as session:
        result = audit.verify(session, anchors=anchors)
    if result.broken is not None:
        raise fail(
            f"audit chain broken at record {result.broken.id}: {result.broken.reason} "
            f"({result.checked} record(s) before it verified)"
        )
    head = f"record {result.head_id}, hash {result.head_hash}" if result.head_id else "empty"
    console.print(f"audit chain intact: {result.checked} record(s); head: {head}", soft_wrap=True)
