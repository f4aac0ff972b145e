"""``kouza switches``, ``kouza cases`` and ``kouza ops``: the incident tooling on the CLI.

``kouza ops`` compensates confirmed cases, takes call-centre enquiries and account lookups
(the account number is prompted, never an argument, so it stays out of shell history), traces
a wallet's spending, retries bank notices and writes the regulator report.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from kouza.cli.common import (
    Col,
    JsonOption,
    Listing,
    cell,
    cli_actor,
    confirm_or_exit,
    console,
    fail,
    money,
    parse_uuid,
    print_records,
    reports_errors,
    runtime,
    yen_cell,
)
from kouza.controls.cases import cases
from kouza.controls.models import CaseStatus, SwitchScope
from kouza.controls.service import controls
from kouza.controls.switches import switches
from kouza.linking import notices
from kouza.linking.keys import client_jwks
from kouza.ops import report
from kouza.ops.callcentre import AccountLookup, AccountRef, callcentre, spend_csv
from kouza.ops.compensation import CompensationReport, compensations
from kouza.wallet.service import wallets

switches_app = typer.Typer(help="Kill switches (effective at once, audited).", no_args_is_help=True)
cases_app = typer.Typer(help="Fraud cases.", no_args_is_help=True)
Reason = Annotated[str, typer.Option(help="Why (recorded in the audit trail)")]


def _set(scope: SwitchScope, target: str, active: bool, reason: str) -> None:
    with runtime().db.unit_of_work() as session:
        switch = switches.set(
            session, scope=scope, target=target, active=active, actor=cli_actor(), reason=reason
        )
    state = "[bold red]ON[/]" if switch.active else "[green]off[/]"
    console.print(f"switch {switch.scope} {switch.target or '(all)'}: {state}")


@switches_app.command("on")
@reports_errors
def switch_on(
    scope: SwitchScope,
    reason: Reason,
    target: Annotated[str, typer.Argument(help="bank code or merchant id")] = "",
) -> None:
    """Turn a switch on (stop links, charges or payments)."""
    _set(scope, target, True, reason)


@switches_app.command("off")
@reports_errors
def switch_off(
    scope: SwitchScope,
    reason: Reason,
    target: Annotated[str, typer.Argument(help="bank code or merchant id")] = "",
) -> None:
    """Turn a switch off."""
    _set(scope, target, False, reason)


@switches_app.command("list")
@reports_errors
def switch_list(as_json: JsonOption = False) -> None:
    """The switches that are on."""
    with runtime().db.unit_of_work() as session:
        records = [
            {
                "scope": switch.scope,
                "target": switch.target,
                "active": switch.active,
                "changed_at": switch.changed_at,
                "actor": switch.actor,
                "reason": switch.reason,
            }
            for switch in switches.active(session)
        ]
    columns = [
        Col("scope", "scope"),
        Col("target", "target", keep=True, show=lambda target: target or "(all)"),
        Col("since (UTC)", "changed_at"),
        Col("by", "actor"),
        Col("reason", "reason"),
    ]
    print_records(records, columns, as_json=as_json, empty="no switch is on")


@cases_app.command("list")
@reports_errors
def case_list(
    status: Annotated[CaseStatus | None, typer.Option()] = None, as_json: JsonOption = False
) -> None:
    """Cases, newest first."""
    with runtime().db.unit_of_work() as session:
        records = [
            {
                "case_id": str(case.id),
                "wallet_id": str(case.wallet_id),
                "status": case.status,
                "source": case.source,
                "summary": case.summary,
                "created_at": case.created_at,
            }
            for case in cases.list(session, status=status)
        ]
    columns = [
        Col("case", "case_id", keep=True),
        Col("wallet", "wallet_id", keep=True),
        Col("status", "status"),
        Col("source", "source"),
        Col("summary", "summary"),
        Col("opened (UTC)", "created_at"),
    ]
    print_records(records, columns, as_json=as_json, empty="no cases")


@cases_app.command("open")
@reports_errors
def case_open(wallet_id: str, summary: Annotated[str, typer.Option(help="What was seen")]) -> None:
    """Open a case about a wallet."""
    with runtime().db.unit_of_work() as session:
        case = cases.open(
            session,
            wallet_id=parse_uuid(wallet_id, "wallet"),
            source=cli_actor(),
            summary=summary,
            actor=cli_actor(),
        )
    console.print(f"case [bold]{case.id}[/] ({case.status})")


@cases_app.command("move")
@reports_errors
def case_move(
    case_id: str, status: CaseStatus, note: Annotated[str, typer.Option(help="Finding")]
) -> None:
    """Investigate, confirm fraud or clear a case."""
    with runtime().db.unit_of_work() as session:
        case = cases.move(
            session, case_id=parse_uuid(case_id, "case"), to=status, actor=cli_actor(), note=note
        )
    console.print(f"case [bold]{case.id}[/] is now {case.status}")


ops_app = typer.Typer(
    help="Incident tooling: compensation, call centre, bank notices, reports.", no_args_is_help=True
)
notices_app = typer.Typer(
    help="Signed notices to banks about locked wallets.", no_args_is_help=True
)
ops_app.add_typer(notices_app, name="notices")
Output = Annotated[Path | None, typer.Option("--out", help="Write to this file")]


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"written to {out}")


def _print_compensation(result: CompensationReport) -> None:
    table = Listing("purpose", "bank", "amount", "status", "attempt", "failure", keep=("bank",))
    for payment in result.payments:
        table.add_row(
            payment["purpose"],
            payment["bank_code"],
            money(payment["amount"]),
            payment["status"],
            str(payment["attempt"]),
            payment["failure"],
        )
    table.print()
    console.print(
        f"compensation [bold]{result.status}[/]: refunded {money(result.refunded)}, "
        f"costs {money(result.costs_paid)}, clawed back {money(result.clawed_back)}, "
        f"outstanding {money(result.outstanding)}, net cost {money(result.net_cost)}"
    )


@ops_app.command("victims")
@reports_errors
def victims(case_id: str, as_json: JsonOption = False) -> None:
    """The accounts the case's wallet took money from, and what each is owed."""
    with runtime().db.unit_of_work() as session:
        case = cases.get(session, parse_uuid(case_id, "case"))
        records = [
            {
                "link_id": str(victim.link_id),
                "bank_code": victim.bank_code,
                "account_last3": victim.account_last3,
                "debited_yen": victim.debited,
                "credited_back_yen": victim.credited_back,
                "owed_yen": victim.owed,
            }
            for victim in compensations.victims(session, case.wallet_id)
        ]
    columns = [
        Col("link", "link_id", keep=True),
        Col("bank", "bank_code", keep=True),
        Col("account", "account_last3", show=lambda last3: f"***{last3}"),
        Col("debited", "debited_yen", show=yen_cell),
        Col("credited back", "credited_back_yen", show=yen_cell),
        Col("owed", "owed_yen", show=yen_cell),
    ]
    print_records(records, columns, as_json=as_json, empty="no victim accounts")


@ops_app.command("cost")
@reports_errors
def add_cost(
    case_id: str,
    link: Annotated[str, typer.Option(help="The victim's link id (see `ops victims`)")],
    amount: Annotated[int, typer.Option(help="Yen the victim paid")],
    description: Annotated[str, typer.Option(help="What it was (e.g. bank fee)")],
) -> None:
    """Record a cost a victim incurred; the next `ops compensate` pays it."""
    with runtime().db.unit_of_work() as session:
        cost = compensations.add_cost(
            session,
            case_id=parse_uuid(case_id, "case"),
            link_id=parse_uuid(link, "link"),
            amount=amount,
            description=description,
            actor=cli_actor(),
        )
    console.print(f"cost {cost.id} recorded: {money(cost.amount)}")


@ops_app.command("compensate")
@reports_errors
def compensate(
    case_id: str,
    reason: Reason,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
) -> None:
    """Refund the victims of a confirmed case in full and claw back its wallet (idempotent)."""
    confirm_or_exit(f"compensate case {case_id} (moves money)?", yes)
    result = compensations.compensate(
        runtime(), case_id=parse_uuid(case_id, "case"), actor=cli_actor(), reason=reason
    )
    _print_compensation(result)
    if result.status != "completed":
        raise typer.Exit(2)


@ops_app.command("enquiry")
@reports_errors
def enquiry(
    caller: Annotated[str, typer.Option(help="Who called")],
    notes: Annotated[str, typer.Option(help="What they said")],
    contact: Annotated[str, typer.Option(help="Call-back number or e-mail")] = "",
    bank: Annotated[str | None, typer.Option(help="Bank code (4 digits)")] = None,
    branch: Annotated[str | None, typer.Option(help="Branch code (3 digits)")] = None,
    open_case: Annotated[
        bool, typer.Option("--open-case", help="Open a case on the wallet")
    ] = False,
) -> None:
    """Record a call; with --bank/--branch the account number is asked (never stored)."""
    account = None
    if bank is not None or branch is not None:
        if bank is None or branch is None:
            raise fail("give both --bank and --branch")
        number = typer.prompt("account number (7 digits)", hide_input=True)
        account = AccountRef(bank, branch, number)
    with runtime().db.unit_of_work() as session:
        taken, lookup = callcentre.take_enquiry(
            session,
            caller_name=caller,
            caller_contact=contact,
            account=account,
            notes=notes,
            actor=cli_actor(),
            open_case=open_case,
        )
        console.print(
            f"enquiry [bold]{taken.id}[/]" + (f", case {taken.case_id}" if taken.case_id else "")
        )
    if lookup is not None:
        _print_lookup(lookup)


def _print_lookup(lookup: AccountLookup) -> None:
    if not lookup.linked:
        console.print(
            f"bank {lookup.bank_code} {lookup.bank_name}: this account is not linked to any wallet"
        )
        return
    for view in lookup.links:
        console.print(
            f"[bold]link {view.link_id}[/] ({view.status}) to wallet {view.wallet_id} "
            f"({view.wallet_status}), linked {view.linked_at:%Y-%m-%d %H:%M} UTC"
            + (f", {view.status_reason}" if view.status_reason else "")
        )
        console.print(
            f"  top-ups from this account {money(view.topped_up)} "
            f"({len(view.topups)}), spent {money(view.spent)}, transferred "
            f"{money(view.transferred_out)}, withdrawn {money(view.withdrawn)}, "
            f"bank notices {view.bank_notices}"
        )
        for case in view.cases:
            console.print(f"  case {case['case_id']}: {case['status']}")


@ops_app.command("lookup")
@reports_errors
def lookup(
    bank: Annotated[str, typer.Option(help="Bank code (4 digits)")],
    branch: Annotated[str, typer.Option(help="Branch code (3 digits)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Is this bank account linked to a wallet, and what did that wallet do? (number asked)"""
    number = typer.prompt("account number (7 digits)", hide_input=True)
    with runtime().db.unit_of_work() as session:
        found = callcentre.lookup(session, AccountRef(bank, branch, number), actor=cli_actor())
    if as_json:
        sys.stdout.write(
            json.dumps(found.to_dict(), default=str, ensure_ascii=False, indent=2) + "\n"
        )
        return
    _print_lookup(found)


@ops_app.command("trace")
@reports_errors
def trace(
    wallet_id: str,
    output: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    out: Output = None,
) -> None:
    """A wallet's spend trace (merchant, category, time, amount) for the police."""
    if output not in ("json", "csv"):
        raise fail("--format must be json or csv")
    wallet = parse_uuid(wallet_id, "wallet")
    with runtime().db.unit_of_work() as session:
        wallets.get_wallet(session, wallet)
        controls.audit(
            session,
            actor=cli_actor(),
            action="callcentre.spend_trace",
            subject=str(wallet),
            reason="spend trace",
        )
        lines = callcentre.spend_trace(session, wallet)
    text = (
        spend_csv(lines)
        if output == "csv"
        else json.dumps([asdict(line) for line in lines], default=str, ensure_ascii=False, indent=2)
    )
    _emit(text, out)


@ops_app.command("report")
@reports_errors
def regulator_report(
    period_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC)")],
    period_to: Annotated[str, typer.Option("--to", help="Last day, included")],
    output: Annotated[str, typer.Option("--format", help="md or json")] = "md",
    out: Output = None,
) -> None:
    """The regulator report: counts and amounts by bank, timeline, measures taken."""
    if output not in ("md", "json"):
        raise fail("--format must be md or json")
    try:
        first, last = date.fromisoformat(period_from), date.fromisoformat(period_to)
    except ValueError:
        raise fail("dates are YYYY-MM-DD") from None
    rt = runtime()
    with rt.db.unit_of_work() as session:
        built = report.build(
            session,
            period_from=first,
            period_to=last,
            now=rt.now(),
            operator=rt.settings.operator_name,
        )
    text = (
        report.to_markdown(built)
        if output == "md"
        else json.dumps(report.to_json(built), ensure_ascii=False, indent=2)
    )
    _emit(text, out)


@notices_app.command("list")
@reports_errors
def notices_list(wallet_id: str, as_json: JsonOption = False) -> None:
    """The notices sent to banks about a wallet's locks, with their delivery state."""
    with runtime().db.unit_of_work() as session:
        records = [
            {
                "notice_id": str(notice.id),
                "bank_code": notice.bank_code,
                "link_id": str(notice.link_id),
                "created_at": notice.created_at,
                "delivered_at": message.delivered_at,
                "attempts": message.attempts,
                "last_error": message.last_error,
            }
            for notice, message in notices.notices_of(session, parse_uuid(wallet_id, "wallet"))
        ]
    columns = [
        Col("notice", "notice_id", keep=True),
        Col("bank", "bank_code", keep=True),
        Col("link", "link_id", keep=True),
        Col("queued (UTC)", "created_at"),
        Col("delivered (UTC)", "delivered_at", show=lambda at: cell(at) if at else "pending"),
        Col("attempts", "attempts"),
        Col("last error", "last_error"),
    ]
    print_records(records, columns, as_json=as_json, empty="no bank notices for this wallet")


@notices_app.command("deliver")
@reports_errors
def notices_deliver() -> None:
    """Retry every bank notice not yet accepted by its bank."""
    rt = runtime()
    delivered = notices.deliver_pending(rt)
    with rt.db.unit_of_work() as session:
        pending = len(notices.pending_ids(session))
    console.print(f"delivered {delivered}, still pending {pending}")
    if pending:
        raise typer.Exit(2)


@notices_app.command("jwks")
def notices_jwks() -> None:
    """The public keys banks verify the notices with (the OAuth client keys)."""
    sys.stdout.write(json.dumps(client_jwks(runtime()), indent=2) + "\n")
