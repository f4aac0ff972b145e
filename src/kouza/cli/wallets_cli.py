"""``kouza wallets`` and ``kouza payments``: operator views and test credits."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from kouza.cli.common import (
    Col,
    JsonOption,
    cli_actor,
    confirm_or_exit,
    console,
    money,
    parse_uuid,
    print_records,
    reports_errors,
    runtime,
    yen_cell,
)
from kouza.controls.service import controls
from kouza.identity.models import User
from kouza.wallet.locks import locks
from kouza.wallet.models import Wallet
from kouza.wallet.service import wallets

app = typer.Typer(help="Customer wallets.", no_args_is_help=True)
payments_app = typer.Typer(help="Payments.", no_args_is_help=True)


@app.command("list")
@reports_errors
def list_wallets(as_json: JsonOption = False) -> None:
    """Every wallet with its owner and balance."""
    records = []
    with runtime().db.unit_of_work() as session:
        rows = session.execute(
            select(Wallet, User).join(User, User.id == Wallet.user_id).order_by(Wallet.created_at)
        )
        for wallet, user in rows:
            balance = wallets.balance(session, wallet)
            records.append(
                {
                    "wallet_id": str(wallet.id),
                    "email": user.email,
                    "level": user.level,
                    "status": wallet.status,
                    "balance_yen": balance.balance,
                    "available_yen": balance.available,
                    "created_at": wallet.created_at,
                }
            )
    columns = [
        Col("wallet", "wallet_id", keep=True),
        Col("owner", "email", keep=True),
        Col("level", "level"),
        Col("status", "status"),
        Col("balance", "balance_yen", show=yen_cell),
        Col("available", "available_yen", show=yen_cell),
    ]
    print_records(records, columns, as_json=as_json, empty="no wallets")


@app.command("show")
@reports_errors
def show(wallet_id: Annotated[str, typer.Argument(help="Wallet id")]) -> None:
    """Balance of one wallet."""
    with runtime().db.unit_of_work() as session:
        wallet = wallets.get_wallet(session, parse_uuid(wallet_id, "wallet"))
        balance = wallets.balance(session, wallet)
        console.print(
            f"wallet [bold]{wallet.id}[/] ({wallet.status}): balance {money(balance.balance)}, "
            f"available {money(balance.available)}, held {money(balance.pending_out)}"
        )


@app.command("statement")
@reports_errors
def statement(
    wallet_id: Annotated[str, typer.Argument(help="Wallet id")],
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Movements of one wallet, newest first."""
    with runtime().db.unit_of_work() as session:
        wallet = wallets.get_wallet(session, parse_uuid(wallet_id, "wallet"))
        records = [
            {
                "created_at": row.created_at,
                "entry_id": str(row.entry_id),
                "kind": row.kind,
                "description": row.description,
                "amount_yen": row.amount,
                "balance_after_yen": row.balance_after,
            }
            for row in wallets.statement(session, wallet, limit=limit)
        ]
    columns = [
        Col("time (UTC)", "created_at"),
        Col("entry", "entry_id", keep=True),
        Col("kind", "kind"),
        Col("description", "description"),
        Col("amount", "amount_yen", show=yen_cell),
        Col("balance", "balance_after_yen", show=yen_cell),
    ]
    print_records(records, columns, as_json=as_json, empty="no movements")


@app.command("credit")
@reports_errors
def credit(
    wallet_id: Annotated[str, typer.Argument(help="Wallet id")],
    amount: Annotated[int, typer.Argument(min=1, help="Yen")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the entry)")] = "test credit",
    idempotency_key: Annotated[str | None, typer.Option(help="Makes a retry safe")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Credit a wallet from the operator float (for testing)."""
    target = parse_uuid(wallet_id, "wallet")
    confirm_or_exit(f"Credit {money(amount)} to wallet {target} from the operator float?", yes)
    with runtime().db.unit_of_work() as session:
        topup = wallets.credit_from_float(
            session, wallet_id=target, amount=amount, reason=reason, idempotency_key=idempotency_key
        )
        controls.audit(
            session,
            actor=cli_actor(),
            action="wallet.credit",
            subject=str(target),
            reason=reason,
            details={"amount": amount},
        )
        balance = wallets.balance(session, wallets.get_wallet(session, target))
    console.print(
        f"credited {money(topup.amount)} (entry {topup.entry_id}); "
        f"balance now {money(balance.balance)}"
    )


@payments_app.command("refund")
@reports_errors
def refund(
    payment_id: Annotated[str, typer.Argument(help="Payment id")],
    amount: Annotated[int, typer.Argument(min=1, help="Yen to refund")],
    reason: Annotated[str, typer.Option(help="Why")] = "refund",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Refund (part of) a payment from the merchant back to the wallet."""
    target = parse_uuid(payment_id, "payment")
    confirm_or_exit(f"Refund {money(amount)} of payment {target}?", yes)
    with runtime().db.unit_of_work() as session:
        done = wallets.refund(session, payment_id=target, amount=amount, reason=reason)
        controls.audit(
            session,
            actor=cli_actor(),
            action="payment.refund",
            subject=str(target),
            reason=reason,
            details={"amount": amount},
        )
    console.print(f"refunded {money(done.amount)} (entry {done.entry_id})")


@app.command("lock")
@reports_errors
def lock(
    wallet_id: Annotated[str, typer.Argument(help="Wallet id")],
    reason: Annotated[str, typer.Option(help="Why (audited)")],
) -> None:
    """Freeze a wallet: no spending or withdrawal; the balance is kept."""
    with runtime().db.unit_of_work() as session:
        wallet = locks.lock(
            session, wallet_id=parse_uuid(wallet_id, "wallet"), actor=cli_actor(), reason=reason
        )
    console.print(f"wallet {wallet.id} is {wallet.status}")


@app.command("unlock")
@reports_errors
def unlock(
    wallet_id: Annotated[str, typer.Argument(help="Wallet id")],
    reason: Annotated[str, typer.Option(help="Why (audited)")],
) -> None:
    """Lift a wallet lock."""
    with runtime().db.unit_of_work() as session:
        wallet = locks.unlock(
            session, wallet_id=parse_uuid(wallet_id, "wallet"), actor=cli_actor(), reason=reason
        )
    console.print(f"wallet {wallet.id} is {wallet.status}")
