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
from kouza.console.auth import MIN_PASSWORD_LENGTH, console_auth
from kouza.controls import audit
from kouza.controls.models import OperatorRole
from kouza.controls.service import controls

app = typer.Typer(help="Operator accounts (for the /v1/ops API).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail of operator actions.", no_args_is_help=True)


@app.command("create")
@reports_errors
def create(
    name: Annotated[str, typer.Argument(help="Operator name (unique)")],
    role: Annotated[
        OperatorRole, typer.Option(help="analyst, admin or call_centre")
    ] = OperatorRole.ANALYST,
    with_console: Annotated[
        bool,
        typer.Option(
            "--console", help="Also set a console password (prompted) and a TOTP authenticator"
        ),
    ] = False,
) -> None:
    """Create an operator and print its API token once (it is stored hashed)."""
    password = _console_password() if with_console else ""
    with runtime().db.unit_of_work() as session:
        operator, token = controls.create_operator(session, name=name, role=role, actor=cli_actor())
        seed = (
            console_auth.set_credential(
                session, operator_name=name, password=password, actor=cli_actor()
            )
            if with_console
            else ""
        )
    console.print(f"operator [bold]{operator.name}[/] ({operator.role}) created")
    console.print("token (shown once, keep it secret):")
    typer.echo(token)
    if seed:
        _print_totp(name, seed)


@app.command("set-console")
@reports_errors
def set_console(name: Annotated[str, typer.Argument(help="Operator name")]) -> None:
    """(Re)set an operator's console password and TOTP authenticator; ends their sessions."""
    password = _console_password()
    with runtime().db.unit_of_work() as session:
        seed = console_auth.set_credential(
            session, operator_name=name, password=password, actor=cli_actor()
        )
    console.print(f"console sign-in set for [bold]{name}[/]")
    _print_totp(name, seed)


def _console_password() -> str:
    password: str = typer.prompt(
        f"console password (at least {MIN_PASSWORD_LENGTH} characters)",
        hide_input=True,
        confirmation_prompt=True,
    )
    return password


def _print_totp(name: str, seed: str) -> None:
    console.print(
        "add this to the operator's authenticator app (shown once; scan it as a QR code or "
        "paste it):"
    )
    typer.echo(console_auth.provisioning_uri(name, seed))


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
