"""``kouza users`` (identity of customers, re-verification campaigns) and ``kouza dev ca``.

The lead mounts ``app`` as ``kouza users`` and ``dev_ca_app`` as ``kouza dev ca``. Starting a
campaign is audited like every operator action and asks for confirmation (``--yes`` for
scripts), since it stops charges for the whole cohort. ``recheck-ekyc`` is the routine job
(cron) that re-asks revocation for stored JPKI verifications; it is audited and each demotion
it causes is audited too.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from kouza.cli.common import (
    Listing,
    cli_actor,
    confirm_or_exit,
    console,
    fail,
    parse_uuid,
    reports_errors,
    runtime,
)
from kouza.controls.service import controls
from kouza.identity import levels
from kouza.identity.ekyc.devca_cli import app as dev_ca_app
from kouza.identity.models import UserPhone, VerifiedIdentity
from kouza.identity.service import identity

app = typer.Typer(
    help="Customers' identity: levels, phones, devices, re-verification.", no_args_is_help=True
)
reverify_app = typer.Typer(
    help="Re-verification campaigns (charges blocked until re-eKYC).", no_args_is_help=True
)
app.add_typer(reverify_app, name="reverify")

__all__ = ["app", "dev_ca_app"]


@app.command("show")
@reports_errors
def show(email: Annotated[str, typer.Argument(help="The user's e-mail address")]) -> None:
    """A user's level, phone, devices, verified name and charge status."""
    with runtime().db.unit_of_work() as session:
        user = identity.user_by_email(session, email)
        phone = session.get(UserPhone, user.id)
        verified = session.get(VerifiedIdentity, user.id)
        table = Listing("field", "value", keep=("value",))
        table.add_row("id", str(user.id))
        table.add_row("level", user.level)
        table.add_row("phone", phone.e164 if phone else "-")
        table.add_row("devices", str(len(identity.devices_of(session, user))))
        table.add_row(
            "verified name", f"{verified.name} ({verified.kana_name})" if verified else "-"
        )
        if verified is not None and verified.revoked_at is not None:
            table.add_row(
                "identity revoked",
                f"{verified.revoked_at:%Y-%m-%d %H:%M} UTC: {verified.revocation_reason or ''}",
            )
        table.add_row("may charge", "yes" if identity.may_charge(session, user) else "no")
        pending = levels.pending_reverifications(session, user)
        table.add_row("re-verification", ", ".join(str(p.campaign_id) for p in pending) or "-")
    table.print()


@app.command("recheck-ekyc")
@reports_errors
def recheck_ekyc(
    reason: Annotated[
        str, typer.Option(help="Why this run (kept in the audit trail)")
    ] = "scheduled revocation re-check",
) -> None:
    """Re-check revocation of every JPKI identity in force; demote revoked ones.

    Exit code 0 when every certificate got an answer, 2 when some revocation states were
    unknown (responder down, stale CRL: nobody was demoted for those; run it again).
    """
    actor = cli_actor()
    with runtime().db.unit_of_work() as session:
        summary = identity.recheck_ekyc(session, actor=actor)
        controls.audit(
            session,
            actor=actor,
            action="ekyc.recheck",
            subject="jpki",
            reason=reason,
            details={
                "checked": summary.checked,
                "outcomes": dict(summary.outcomes),
                "demoted": summary.demoted,
            },
        )
    table = Table("outcome", "certificates")
    for outcome in ("good", "revoked", "unknown", "uncheckable"):
        table.add_row(outcome, str(summary.outcomes.get(outcome, 0)))
    console.print(table)
    console.print(
        f"{summary.checked} checked, {len(summary.demoted)} user(s) demoted from "
        "'verified' (charging and linking paused until they pass eKYC again)"
    )
    for user_id in summary.demoted:
        console.print(f"  demoted: {user_id}")
    if summary.outcomes.get("unknown", 0):
        raise fail(
            "some revocation states are unknown: nobody was demoted for those; run again", code=2
        )


@reverify_app.command("start")
@reports_errors
def start(
    name: Annotated[str, typer.Option(help="Campaign name")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail)")],
    user_id: Annotated[
        list[str] | None, typer.Option("--user-id", help="A user id (repeat)")
    ] = None,
    every_verified: Annotated[bool, typer.Option(help="Every user at level 'verified'")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Start a campaign: the cohort cannot charge until it passes eKYC again."""
    if bool(user_id) == every_verified:
        raise fail("give --user-id (one or more) or --every-verified, not both")
    cohort: levels.Cohort = (
        levels.every_verified_user
        if every_verified
        else [parse_uuid(value, "user") for value in user_id or []]
    )
    confirm_or_exit("Block new charges for this cohort until they pass eKYC again?", yes)
    with runtime().db.unit_of_work() as session:
        campaign = identity.start_reverification(
            session, name=name, reason=reason, started_by=cli_actor(), cohort=cohort
        )
        controls.audit(
            session,
            actor=cli_actor(),
            action="reverification.start",
            subject=f"campaign:{campaign.id}",
            reason=reason,
        )
        progress = levels.campaign_progress(session, campaign.id)
    console.print(
        f"campaign [bold]{campaign.id}[/] started: {progress.pending} user(s) must "
        "pass eKYC again before charging"
    )


@reverify_app.command("status")
@reports_errors
def status(campaign_id: Annotated[str, typer.Argument(help="Campaign id")]) -> None:
    """How many users of a campaign are still pending."""
    key: uuid.UUID = parse_uuid(campaign_id, "campaign")
    with runtime().db.unit_of_work() as session:
        progress = levels.campaign_progress(session, key)
    campaign = progress.campaign
    console.print(
        f"{campaign.name} (started {campaign.started_at:%Y-%m-%d %H:%M} UTC by "
        f"{campaign.started_by}): {progress.pending} pending, "
        f"{progress.cleared} cleared"
    )
