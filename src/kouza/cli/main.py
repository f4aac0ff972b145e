"""``kouza``: serve the API and operate the wallet from the command line."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn

from kouza.api.app import create_app, settle_heap
from kouza.cli import (
    bank_cli,
    demo_cli,
    dev,
    identity_cli,
    ledger_cli,
    linking_cli,
    merchants,
    operators,
    ops_cli,
    risk_cli,
    settings_cli,
    sim_cli,
    wallets_cli,
)
from kouza.cli.common import console, fail, runtime
from kouza.kit.metrics import shared_between_processes
from kouza.kit.migrate import current
from kouza.kit.observability import configure_process

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
app.add_typer(linking_cli.app, name="banks")
app.add_typer(linking_cli.links_app, name="links")
app.add_typer(settings_cli.app, name="settings")
linking_cli.app.command("accept-legacy")(settings_cli.accept_legacy)
linking_cli.app.command("refuse-legacy")(settings_cli.refuse_legacy)
dev.app.add_typer(identity_cli.dev_ca_app, name="ca")
app.add_typer(dev.app, name="dev")
app.add_typer(demo_cli.app, name="demo")
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("simulate")(sim_cli.simulate_command)


WORKER_HEALTHCHECK_SECONDS = 60
"""How long uvicorn's master waits for a worker's answer before killing it as hung."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Server processes (more than one needs a shared risk feature store)"
        ),
    ] = 1,
    access_log: Annotated[
        bool | None,
        typer.Option(help="One log line per request (default: KOUZA_ACCESS_LOG, on)"),
    ] = None,
) -> None:
    """Serve the wallet: its API (OpenAPI docs at /docs, metrics at /metrics), the operator
    console (/console) and the customer pages (/app), on the configured database. Logs go to
    stderr (KOUZA_LOG_FORMAT: json or console)."""
    rt = runtime()  # configured and migrated here, once, before any worker starts
    settings = rt.settings
    if access_log is not None:
        settings.access_log = access_log
        os.environ["KOUZA_ACCESS_LOG"] = str(access_log).lower()  # what the workers read
    store = settings.risk_feature_store
    if workers > 1 and store == "memory":
        raise fail(
            "several workers need a shared risk feature store, or each would see only "
            "its own share of every velocity window: set KOUZA_RISK_FEATURE_STORE to a "
            "redis:// URL",
            code=2,
        )
    console.print(
        f"[bold]kouza[/] wallet on http://{host}:{port}  (API docs: /docs, operator console: "
        f"/console, customer pages: /app, "
        f"database: {rt.db.dialect} {rt.db.engine.url.render_as_string(hide_password=True)}, "
        f"workers: {workers}, risk features: {'memory' if store == 'memory' else 'shared'})"
    )
    configure_process(settings)
    # uvicorn's own logging set-up and access lines are off: ours mask secrets and name the
    # route template, not the raw path (kouza.kit.observability)
    level = settings.log_level.lower()
    if workers == 1:
        app = create_app(rt)
        settle_heap()
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, log_level=level)
        return
    rt.db.dispose()
    with shared_between_processes():  # /metrics adds up every worker's counters
        uvicorn.run(
            "kouza.api.app:serve_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            log_level=level,
            # a worker answers the master's health check only once it has imported the app; on
            # a busy machine that takes longer than uvicorn's 5 s, and the master killed and
            # restarted workers in a loop (seen by benchmarks/load.py at a load average of 9)
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (also done automatically by every command)."""
    rt = runtime()
    console.print(f"database at revision [bold]{current(rt.db.engine)}[/]")


if __name__ == "__main__":
    app()
