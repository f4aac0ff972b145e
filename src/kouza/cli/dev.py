"""``kouza dev``: development helpers (the outbox of the development senders)."""

from __future__ import annotations

from typing import Annotated

import typer

from kouza.cli.common import Col, JsonOption, console, print_records, reports_errors, runtime
from kouza.kit import outbox as kit_outbox
from kouza.kit.notify import FileMailbox

app = typer.Typer(help="Development helpers.", no_args_is_help=True)


@app.command("outbox")
@reports_errors
def outbox(
    channel: Annotated[str, typer.Option(help="email or sms")] = "email",
    to: Annotated[str | None, typer.Option(help="Only messages to this recipient")] = None,
    last: Annotated[int, typer.Option(min=1, help="How many, newest last")] = 20,
    as_json: JsonOption = False,
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
    records = [
        {
            "sent_at": message.sent_at,
            "to": message.recipient,
            "subject": message.subject,
            "body": message.body,
        }
        for message in messages
    ]
    columns = [
        Col("sent (UTC)", "sent_at"),
        Col("to", "to", keep=True),
        Col("subject", "subject"),
        Col("body", "body"),  # codes are words: folded whole, never cut
    ]
    print_records(records, columns, as_json=as_json, empty=f"no {channel} messages")
