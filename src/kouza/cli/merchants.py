"""``kouza merchants``: create merchants and print their QR payloads."""

from __future__ import annotations

from typing import Annotated

import typer

from kouza.cli.common import (
    Col,
    JsonOption,
    cli_actor,
    console,
    fail,
    parse_uuid,
    print_records,
    reports_errors,
    runtime,
    yen_cell,
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
def list_merchants(as_json: JsonOption = False) -> None:
    """All merchants with what they have received."""
    with runtime().db.unit_of_work() as session:
        records = [
            {
                "merchant_id": str(merchant.id),
                "name": merchant.name,
                "category": merchant.category,
                "active": merchant.active,
                "balance_yen": ledger.balance(session, merchant.ledger_account_id).balance,
            }
            for merchant in wallets.list_merchants(session)
        ]
    columns = [
        Col("id", "merchant_id", keep=True),
        Col("name", "name"),
        Col("category", "category"),
        Col("balance", "balance_yen", show=yen_cell),
    ]
    print_records(records, columns, as_json=as_json, empty="no merchants")


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
