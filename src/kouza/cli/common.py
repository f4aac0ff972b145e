"""Shared CLI plumbing: the runtime, error reporting, tables."""

from __future__ import annotations

import functools
import getpass
import json
import sys
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

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


class Listing:
    """A table that never cuts what it shows: every column folds its text onto more lines
    instead of ending it in "…", and the ``keep`` columns (ids, codes, secrets: what a person
    copies) stay on one line, as wide as their longest value. When the terminal is too narrow
    for that, each row is printed as a block of ``column: value`` lines instead."""

    NARROW = 8
    """Width a folding column gets at least (or its longest value, if shorter)."""

    def __init__(self, *headers: str, keep: Collection[str] = (), title: str | None = None):
        unknown = set(keep) - set(headers)
        if unknown:
            raise ValueError(f"keep names no column: {sorted(unknown)}")
        self.headers = headers
        self.keep = frozenset(keep)
        self.title = title
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"{len(cells)} cells for {len(self.headers)} columns")
        self.rows.append(cells)

    def __len__(self) -> int:
        return len(self.rows)

    def _widths(self) -> list[int]:
        widths = []
        for index, header in enumerate(self.headers):
            longest = max([cell_len(row[index]) for row in self.rows] + [cell_len(header)])
            widths.append(longest if header in self.keep else min(longest, self.NARROW))
        return widths

    def print(self, to: Console | None = None) -> None:
        out = to or console
        widths = self._widths()
        if sum(widths) + 3 * len(widths) + 1 > out.width:
            self._print_blocks(out)
            return
        table = Table(title=self.title)
        for header, width in zip(self.headers, widths, strict=True):
            kept = header in self.keep
            table.add_column(header, overflow="fold", no_wrap=kept, min_width=width)
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row))  # values are data, never markup
        out.print(table)

    def _print_blocks(self, out: Console) -> None:
        if self.title:
            out.print(f"[bold]{self.title}[/]")
        label = max(cell_len(header) for header in self.headers)
        for number, row in enumerate(self.rows):
            if number:
                out.print()
            for header, cell in zip(self.headers, row, strict=True):
                line = f"{header:>{label}}: {cell}"
                out.print(line, soft_wrap=True, highlight=False, markup=False)


JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print JSON for scripts (ids as strings, yen as integers, times in RFC 3339)",
    ),
]


def cell(value: Any) -> str:
    """A value as a table shows it: times to the second (UTC), nothing as "-"."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def yen_cell(value: Any) -> str:
    return "-" if value is None else money(value)


@dataclass(frozen=True)
class Col:
    """One column of a list command: its header, the record key it shows, how, and whether
    it is kept on one line (ids, codes, secrets)."""

    header: str
    key: str
    keep: bool = False
    show: Callable[[Any], str] = cell


def print_records(
    records: Sequence[dict[str, Any]],
    columns: Sequence[Col],
    *,
    as_json: bool,
    empty: str | None = None,
    title: str | None = None,
) -> None:
    """What a list command prints: ``records`` as JSON, or as a :class:`Listing`."""
    if as_json:
        print_json(list(records))
        return
    if not records and empty is not None:
        console.print(empty)
        return
    listing = Listing(
        *(column.header for column in columns),
        keep=[column.header for column in columns if column.keep],
        title=title,
    )
    for record in records:
        listing.add_row(*(column.show(record[column.key]) for column in columns))
    listing.print()
