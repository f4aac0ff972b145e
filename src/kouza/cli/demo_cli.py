"""``kouza demo``: the wallet and the bank with a seeded world, and what to open and type.

Development only: it prints passwords, PINs and TOTP seeds (made up for the demo), so it refuses
to run with ``KOUZA_ENV=production`` (ADR 0036).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import pyotp
import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from kouza.cli.common import Col, console, fail, print_json, print_records, yen_cell
from kouza.demo.run import DEFAULT_FOLDER, DEFAULT_SEED, build_demo, open_demo
from kouza.demo.systems import DemoError
from kouza.demo.world import DemoWorld

app = typer.Typer(
    help="A wallet and a bank with seeded customers, an attack in progress and cases "
    "(development only: prints secrets).",
    invoke_without_command=True,
)


@app.callback()
def demo(
    context: typer.Context,
    folder: Annotated[
        Path, typer.Option("--dir", help="The demo's own folder (databases, keys, demo.json)")
    ] = DEFAULT_FOLDER,
    reset: Annotated[
        bool, typer.Option("--reset", help="Wipe the demo's folder and build a new world")
    ] = False,
    host: Annotated[str, typer.Option(help="Interface both servers listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The wallet's port (API, /app, /console)")] = 8000,
    bank_port: Annotated[int, typer.Option(help="The bank's port (internet banking, portal)")] = (
        8100
    ),
    seed: Annotated[int, typer.Option(help="Random seed of the world")] = DEFAULT_SEED,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep serving after printing (Ctrl-C ends)")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the world as JSON instead of tables")
    ] = False,
) -> None:
    """Build the demo world in ./var/demo (or reuse the one there), print what to open and
    type, and serve the wallet on :8000 and the bank on :8100 until Ctrl-C."""
    if context.invoked_subcommand is not None:
        return
    if port == bank_port:
        raise fail("--port and --bank-port must differ", code=2)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    urls = {"wallet_url": f"http://{shown}:{port}", "bank_url": f"http://{shown}:{bank_port}"}
    if not as_json:
        console.print(f"[bold]kouza demo[/] in {folder} (a first build: about 30 s) …")
    try:
        if not serve:
            _print(build_demo(folder, seed=seed, reset=reset, **urls), as_json)
            return
        with open_demo(folder, seed=seed, reset=reset, host=host, **urls) as (_, world):
            _print(world, as_json)
            if not as_json:
                console.print("[bold green]serving[/] — Ctrl-C stops both servers")
            _wait()
    except DemoError as error:
        raise fail(str(error)) from None


def _wait() -> None:
    """Until Ctrl-C or SIGTERM; then the servers stop and the databases close."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopped")


@app.command()
def otp(seed: Annotated[str, typer.Argument(help="A TOTP seed (base32) the demo printed")]) -> None:
    """Print the current one-time code of a TOTP seed (an operator's or a bank holder's)."""
    try:
        code = pyotp.TOTP(seed.strip().replace(" ", "").upper()).now()
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        raise fail(f"{seed!r} is not a base32 TOTP seed", code=2) from None
    typer.echo(code)


def _print(world: DemoWorld, as_json: bool) -> None:
    if as_json:
        print_json(world.model_dump(mode="json"))
        return
    console.print(_panel(world))
    _tables(world)
    a = world.attack
    console.print(
        Panel(
            Text.assemble(
                ("The 2020 attack, in progress\n", "bold"),
                f"Victim: {a.victim}, robbed of {yen_cell(a.stolen)} by the e-mail-only wallet "
                f"{a.fraud_email} ({a.fraud_wallet_id}) under the 2019 policy.\n",
                f"Then {a.refused_attempts} link attempts against strangers' accounts were "
                f"refused; the rules locked {len(a.locked_wallets)} wallets and opened "
                f"{len(a.open_cases)} cases (see the console's overview and alerts).\n",
                "The victim's bank sent him a link notice, reference ",
                (a.notice_reference, "bold"),
                f": open {a.notice_url} and press 「心当たりがない」 (not me), or sign in to the "
                "portal with his internet banking.\n",
                "In the console: open the alert, confirm fraud, request compensation as one "
                "admin and approve it as the other; the victim's money goes back to his bank.",
            ),
            border_style="red",
        )
    )
    folder = Path(world.folder)
    console.print(
        "Any kouza command on the demo's systems: "
        f"[bold]set -a; . {folder / 'wallet.env'}; set +a[/] then e.g. [bold]kouza cases list[/], "
        "[bold]kouza dev outbox[/] (the e-mail and SMS codes); for the bank "
        f"[bold]set -a; . {folder / 'bank.env'}; set +a[/] then [bold]kouza bank banks[/]. "
        "A one-time code: [bold]kouza demo otp SEED[/].",
        soft_wrap=True,
    )


def _panel(world: DemoWorld) -> Panel:
    links = Table.grid(padding=(0, 2))
    links.add_column(style="bold")
    links.add_column(overflow="fold")  # a URL is copied whole: folded, never cut
    wallet, bank = world.wallet_url, world.bank_url
    for what, url in (
        ("Customer wallet pages", f"{wallet}/app"),
        ("Operator console", f"{wallet}/console"),
        ("Wallet API docs", f"{wallet}/docs"),
        ("Bank API docs", f"{bank}/docs"),
        ("七十七銀行 holder portal", f"{bank}/banks/0125/portal"),
        ("りそな銀行 holder portal", f"{bank}/banks/0010/portal"),
        ("The victim's link notice", world.attack.notice_url),
    ):
        links.add_row(what, Text(url))
    return Panel(
        links,
        title="kouza demo: open these",
        subtitle="development only: every secret below is made up and printed on purpose",
        border_style="cyan",
    )


def _tables(world: DemoWorld) -> None:
    print_records(
        [c.model_dump() for c in world.customers],
        [
            Col("customer", "label"),
            Col("e-mail", "email", keep=True),
            Col("password", "password", keep=True),
            Col("level", "level"),
            Col("balance", "balance", show=yen_cell),
            Col("phone (SMS codes: dev outbox)", "phone", keep=True),
        ],
        as_json=False,
        title="Wallet customers (sign in at /app)",
    )
    print_records(
        [o.model_dump() | {"command": f"kouza demo otp {o.totp_seed}"} for o in world.operators],
        [
            Col("operator", "name", keep=True),
            Col("role", "role"),
            Col("password", "password", keep=True),
            Col("TOTP seed", "totp_seed", keep=True),
            Col("current code", "command", keep=True),
        ],
        as_json=False,
        title="Operators (sign in at /console)",
    )
    print_records(
        [h.model_dump() for h in world.holders],
        [
            Col("holder", "label"),
            Col("bank", "bank_code", keep=True),
            Col("branch", "branch", keep=True),
            Col("account", "account_number", keep=True),
            Col("IB password", "ib_password", keep=True),
            Col("TOTP seed", "totp_seed", keep=True),
            Col("PIN", "pin", keep=True),
            Col("balance", "balance", show=yen_cell),
        ],
        as_json=False,
        title="Bank holders (internet banking: the portal and the bank's OAuth pages)",
    )
    print_records(
        [c.model_dump() for c in world.cards],
        [
            Col("card (eKYC, development CA)", "label"),
            Col("name", "name", keep=True),
            Col("birth date", "birth_date", keep=True),
            Col("kana", "kana", keep=True),
            Col("certificate", "certificate_file", keep=True),
            Col("key", "key_file", keep=True),
            Col("card password", "passphrase", keep=True),
        ],
        as_json=False,
        title="My Number cards (development CA)",
    )
    print_records(
        [m.model_dump() for m in world.merchants],
        [
            Col("merchant", "name"),
            Col("category", "category"),
            Col("id", "merchant_id", keep=True),
        ],
        as_json=False,
        title="Merchants",
    )
    console.print("[bold]QR payloads to pay (static: any amount)[/]")
    for merchant in world.merchants:
        console.print(
            f"{merchant.name}: {merchant.qr}", soft_wrap=True, highlight=False, markup=False
        )
