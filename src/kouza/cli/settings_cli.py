"""``kouza settings``: the settings an operator changes while the wallet runs (ADR 0035).

``list`` shows every run-time setting with its environment value, the override if any (who,
why, when) and the effective value; ``set`` and ``unset`` change an override, audited with the
shell user and ``--reason``. Values are JSON (``300000``, ``'["0125"]'``); a word that is not
JSON is taken as a string (``refuse``). Every other setting is in docs/settings.md and needs a
restart. A server picks a change up within seconds (``RELOAD_SECONDS``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from kouza.cli.common import Listing, cli_actor, console, print_json, reports_errors, runtime
from kouza.controls.overrides import RELOAD_SECONDS, SettingView, overrides, parse_text

app = typer.Typer(
    help="Settings an operator changes at run time (overrides stored in the database, audited).",
    no_args_is_help=True,
)

Reason = Annotated[str, typer.Option(help="Why (audited; required)")]


def view_json(view: SettingView) -> dict[str, Any]:
    """A setting as ``--json`` prints it."""
    return {
        "key": view.key,
        "env_var": view.env_var,
        "environment": view.environment,
        "override": view.override,
        "effective": view.effective,
        "overridden": view.overridden,
        "actor": view.actor,
        "reason": view.reason,
        "changed_at": view.changed_at,
    }


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@app.command("list")
@reports_errors
def list_settings(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON")] = False,
) -> None:
    """Every run-time setting: environment value, override (who, why, when), effective value."""
    with runtime().db.unit_of_work() as session:
        views = overrides.list(session)
    if as_json:
        print_json([view_json(view) for view in views])
        return
    table = Listing(
        "setting", "environment", "override", "effective", "changed by", "reason", keep=("setting",)
    )
    for view in views:
        table.add_row(
            view.key,
            _text(view.environment),
            _text(view.override) if view.overridden else "-",
            _text(view.effective),
            f"{view.actor} {view.changed_at:%Y-%m-%d %H:%M}" if view.changed_at else "-",
            view.reason or "-",
        )
    table.print()


def _report(view: SettingView, as_json: bool) -> None:
    if as_json:
        print_json(view_json(view))
        return
    source = "override" if view.overridden else "environment"
    console.print(
        f"{view.key} = {_text(view.effective)} ({source}); servers apply it within "
        f"{RELOAD_SECONDS:g} s"
    )


@app.command("set")
@reports_errors
def set_setting(
    key: Annotated[str, typer.Argument(help="Setting (accepted_legacy_banks or KOUZA_…)")],
    value: Annotated[str, typer.Argument(help="JSON value, or a plain word for a string")],
    reason: Reason,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON")] = False,
) -> None:
    """Override a run-time setting (validated like the environment variable; audited)."""
    with runtime().db.unit_of_work() as session:
        view = overrides.set(
            session, key=key, value=parse_text(value), actor=cli_actor(), reason=reason
        )
    _report(view, as_json)


@app.command("unset")
@reports_errors
def unset_setting(
    key: Annotated[str, typer.Argument(help="Setting (accepted_legacy_banks or KOUZA_…)")],
    reason: Reason,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON")] = False,
) -> None:
    """Remove an override: the environment's value applies again (audited)."""
    with runtime().db.unit_of_work() as session:
        view = overrides.unset(session, key=key, actor=cli_actor(), reason=reason)
    _report(view, as_json)


def accept_legacy(
    code: Annotated[str, typer.Argument(help="Bank code (4 digits)")],
    reason: Reason,
) -> None:
    """Accept a bank's legacy PIN form: its customers get full links (accepted_legacy_banks)."""
    _accept(code, accepted=True, reason=reason)


def refuse_legacy(
    code: Annotated[str, typer.Argument(help="Bank code (4 digits)")],
    reason: Reason,
) -> None:
    """Stop accepting a bank's legacy form: its customers get what legacy_bank_links says
    (restricted links, or refused)."""
    _accept(code, accepted=False, reason=reason)


@reports_errors
def _accept(code: str, *, accepted: bool, reason: str) -> None:
    with runtime().db.unit_of_work() as session:
        view = overrides.accept_legacy_bank(
            session, bank_code=code, accepted=accepted, actor=cli_actor(), reason=reason
        )
        offered = overrides.settings(session).legacy_bank_links
    verb = "accepted" if accepted else "no longer accepted"
    console.print(
        f"bank {code}'s legacy form is {verb}; accepted_legacy_banks = {_text(view.effective)}"
        + ("" if accepted else f"; its customers now get: {offered} (legacy_bank_links)")
    )
