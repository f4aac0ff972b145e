"""``kouza``: serve the API and operate the wallet from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from kouza.cli import (
    bank_cli,
    banks_cli,
    dev,
    identity_cli,
    ledger_cli,
    merchants,
    operators,
    ops_cli,
    risk_cli,
    sim_cli,
    wallets_cli,
)
from kouza.cli.common import console, runtime

app = typer.Typer(
    name="kouza",
    help="kouza: an e-money wallet that tops up from bank accounts, hardened against the "
    "2020 Docomo Kouza fraud.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(merchants.app, name="merchants")
app.add_typer(wallets_cli.app, name="wallets")
app.add_typer(wallets_cli.payments_app, name="payments")
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(operators.app, name="operators")
app.add_typer(operators.audit_app, name="audit")
app.add_typer(risk_cli.app, name="risk")
app.add_typer(ops_cli.switches_app, name="switches")
app.add_typer(ops_cli.cases_app, name="cases")
app.add_typer(ops_cli.ops_app, name="ops")
app.add_typer(identity_cli.app, name="users")
app.add_typer(bank_cli.app, name="bank")
app.add_typer(banks_cli.app, name="banks")
dev.app.add_typer(identity_cli.dev_ca_app, name="ca")
app.add_typer(dev.app, name="dev")
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("simulate")(sim_cli.simulate_command)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Serve the wallet API (OpenAPI docs at /docs) on the configured database."""
    import uvicorn

    from kouza.api.app import create_app

    rt = runtime()
    console.print(
        f"[bold]kouza[/] wallet API on http://{host}:{port}  (docs: /docs, "
        f"database: {rt.db.dialect} {rt.db.engine.url.render_as_string(hide_password=True)})"
    )
    uvicorn.run(create_app(rt), host=host, port=port, log_level="info")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (also done automatically by every command)."""
    from kouza.kit.migrate import current

    rt = runtime()
    console.print(f"database at revision [bold]{current(rt.db.engine)}[/]")


if __name__ == "__main__":
    app()
