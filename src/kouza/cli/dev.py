"""``kouza dev``: development helpers (the outbox of the development senders)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from kouza.cli.common import console, reports_errors, runtime
from kouza.kit import outbox as kit_outbox
from kouza.kit.notify import FileMailbox

app = typer.Typer(help="Development helpers.", no_args_is_help=True)


@app.command("outbox")
@reports_errors
def outbox(
    channel: Annotated[str, typer.Option(help="email or sms")] = "email",
    to: Annotated[str | None, typer.Option(help="Only messages to this recipient")] = None,
    last: Annotated[int, typer.Option(min=1, help="How many, newest last")] = 20,
) -> None:
    """Messages the development e-mail/SMS senders delivered (codes appear here)."""
    rt = runtime()
    with rt.db.session() as session:
        kit_outbox.deliver(session)  # anything still pending goes out first
    sender = rt.senders.get(channel)
    if not isinstance(sender, FileMailbox):
        console.print(f"the {channel} sender is not a development mailbox")
        raise typer.Exit(1)
    messages = [m for m in sender.read() if to is None or m.recipient == to][-last:]
    table = Table("sent (UTC)", "to", "subject", "body")
    for message in messages:
        table.add_row(
            message.sent_at.strftime("%Y-%m-%d %H:%M:%S"),
            message.recipient,
            message.subject,
            message.body,
        )
    console.print(table)
