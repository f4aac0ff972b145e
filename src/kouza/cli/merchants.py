"""``kouza merchants``: create merchants and print their QR payloads."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from kouza.cli.common import (
    cli_actor,
    console,
    fail,
    money,
    parse_uuid,
    reports_errors,
    runtime,
)
from kouza.controls.service import controls
from kouza.ledger.service import ledger
from kouza.wallet.models import MerchantCategory
from kouza.wallet.service import wallets

app = typer.Typer(help="Merchants that accept QR payments.", no_args_is_help=True)


@app.command("create")
@reports_errors
def create(
    name: Annotated[str, typer.Argument(help="Shop name")],
    category: Annotated[MerchantCategory, typer.Option(help="Merchant category")] = (
        MerchantCategory.OTHER
    ),
) -> None:
    """Create a merchant with its own ledger account."""
    if not name.strip():
        raise fail("the merchant name is empty")
    with runtime().db.unit_of_work() as session:
        merchant = wallets.create_merchant(session, name=name.strip(), category=category)
        controls.audit(
            session,
            actor=cli_actor(),
            action="merchant.create",
            subject=str(merchant.id),
            reason="new merchant",
            details={"name": name},
        )
        console.print(f"merchant [bold]{merchant.id}[/] {merchant.name} ({merchant.category})")


@app.command("list")
@reports_errors
def list_merchants() -> None:
    """All merchants with what they have received."""
    table = Table("id", "name", "category", "balance")
    with runtime().db.unit_of_work() as session:
        for merchant in wallets.list_merchants(session):
            balance = ledger.balance(session, merchant.ledger_account_id).balance
            table.add_row(str(merchant.id), merchant.name, merchant.category, money(balance))
    console.print(table)


@app.command("qr")
@reports_errors
def qr(
    merchant_id: Annotated[str, typer.Argument(help="Merchant id")],
    amount: Annotated[int | None, typer.Option(min=1, help="Yen (dynamic QR)")] = None,
    order_ref: Annotated[str | None, typer.Option(help="Order reference (dynamic QR)")] = None,
) -> None:
    """Print a kouza-signed QR payload (dynamic with --amount, otherwise static)."""
    with runtime().db.unit_of_work() as session:
        payload = wallets.merchant_qr(
            session,
            merchant_id=parse_uuid(merchant_id, "merchant"),
            amount=amount,
            order_ref=order_ref,
        )
    typer.echo(payload)
