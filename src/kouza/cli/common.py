"""Shared CLI plumbing: the runtime, error reporting, tables."""

from __future__ import annotations

import functools
import getpass
import json
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from kouza.assembly import build_runtime
from kouza.config import get_settings
from kouza.errors import KouzaError
from kouza.kit.migrate import upgrade
from kouza.kit.money import format_yen
from kouza.runtime import Runtime

console = Console()
error_console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")

_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The CLI's runtime: configured database, migrated on first use."""
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(get_settings())
        upgrade(_runtime.db.engine)
    return _runtime


def cli_actor() -> str:
    """Who is acting from this shell, for the audit trail."""
    return f"cli:{getpass.getuser()}"


def fail(message: str, code: int = 1) -> typer.Exit:
    error_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def reports_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turn a KouzaError into one red line and exit code 1 (no traceback)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except KouzaError as exc:
            raise fail(exc.message + (f" {exc.details}" if exc.details else "")) from None

    return wrapper


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(f"not a valid {what} id: {value!r}") from None


def confirm_or_exit(question: str, yes: bool) -> None:
    """Destructive commands ask first; ``--yes`` answers for scripts."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail("refusing without confirmation: pass --yes")
    if not typer.confirm(question):
        raise typer.Exit(1)


def money(amount: Any) -> str:
    return format_yen(int(amount))


def _json_default(value: Any) -> Any:
    """ids as strings, times as RFC 3339 (what ``--json`` promises); yen stay ints."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Path | Decimal):
        return str(value)
    if isinstance(value, StrEnum):
        return value.value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    """``--json`` output: plain JSON on stdout, never wrapped or coloured by rich."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))
