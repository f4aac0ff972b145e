"""The simulator's report: machine-readable figures, charts and one self-contained HTML page.

:func:`write_report` turns a :class:`~kouza.sim.results.SimulationResult` into files in one
folder: ``summary.json`` (exactly :meth:`SimulationResult.summary`), ``results.json`` (everything),
four PNG charts, ``comparison.md`` and ``report.html``. The HTML page embeds the charts as
``data:`` URIs and its CSS inline, so it can be mailed or attached to a ticket as one file and
opened offline. :func:`comparison_markdown` and :func:`comparison_table` give the same comparison
table to the README and the CLI; all three draw their cells from one column list.

Charts use matplotlib's object-oriented API with an Agg canvas attached to each figure, so the
report neither selects a backend nor changes ``rcParams`` for anyone else in the process, and no
figure is registered with pyplot. matplotlib's bundled font has no Japanese glyphs: chart text is
set in the first installed font that can draw it (the default, then common Japanese families);
when none can, banks are labelled by code alone (their names are in the HTML tables) and any
other undrawable character becomes ``?``, so rendering never warns about missing glyphs.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.ticker import FuncFormatter
from rich.table import Table
from rich.text import Text

from kouza.kit.money import format_yen
from kouza.sim.results import STAGES, ProfileResult, SimulationResult

CHARTS = {
    "losses_over_time": "Cumulative yen moved out of victims' bank accounts, per profile, over "
                        "the simulated period.",
    "losses_by_bank": "Yen lost per bank and profile (only banks that lost money under some "
                      "profile; names in the table above).",
    "friction_vs_loss": "Each profile's loss against the friction its honest users met: "
                        "step-ups + reviews + blocks + false locks per 1,000 active users. "
                        "Lower left is better.",
    "attack_funnel": "Attack attempts that reached each stage, all attackers together.",
}
"""The charts :func:`write_report` draws, by file stem (``<stem>.png``) in report order, with
the caption the HTML report gives each."""

_DPI = 120
_JAPANESE_FAMILIES = (
    "Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic", "VL Gothic",
    "Hiragino Sans", "Yu Gothic", "Meiryo", "MS Gothic",
)
_FUNNEL = ("attempted", *STAGES)
_NONE = "—"


# --- figures shared by every output ---------------------------------------------------------


def friction_count(profile: ProfileResult) -> int:
    """Honest users' friction: step-ups + reviews + blocks + false locks."""
    return (profile.honest_step_ups + profile.honest_reviews + profile.honest_blocks
            + profile.false_locks)


def funnel(profile: ProfileResult) -> dict[str, int]:
    """Attack attempts that reached each stage, summed over attackers (``attempted`` first)."""
    totals = {"attempted": sum(attacker.attempts for attacker in profile.attackers)}
    for stage in STAGES:
        totals[stage] = sum(attacker.stages.get(stage, 0) for attacker in profile.attackers)
    return totals


def banks_with_losses(result: SimulationResult) -> list[str]:
    """Bank codes that lost money under any profile, largest total loss first."""
    totals: dict[str, int] = {}
    for profile in result.profiles:
        for code, yen in profile.losses_by_bank.items():
            totals[code] = totals.get(code, 0) + yen
    return sorted((code for code, yen in totals.items() if yen > 0),
                  key=lambda code: (-totals[code], code))


def _start_date(result: SimulationResult) -> date | None:
    try:
        return datetime.fromisoformat(result.start).date()
    except ValueError:
        return None


def _period(result: SimulationResult) -> str:
    start = _start_date(result)
    if start is None:
        return f"{result.start}, {result.days} days"
    end = start + timedelta(days=max(result.days - 1, 0))
    return f"{start.isoformat()} – {end.isoformat()} ({result.days} days)"


def _per_thousand(profile: ProfileResult, count: int) -> str:
    if not profile.honest_active_users:
        return _NONE
    return f"{profile.per_thousand(count):,.2f}"


def _hours(value: float | None) -> str:
    return _NONE if value is None else f"{value:,.1f} h"


# --- the comparison table -------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    header: str
    cell: Callable[[ProfileResult], str]
    numeric: bool = True


_COLUMNS = (
    _Column("profile", lambda p: p.profile, numeric=False),
    _Column("loss", lambda p: format_yen(p.loss_yen)),
    _Column("victims", lambda p: f"{p.victims:,}"),
    _Column("banks hit", lambda p: f"{p.banks_hit:,}"),
    _Column("max per victim", lambda p: format_yen(p.max_loss_per_victim_yen)),
    _Column("attack attempts", lambda p: f"{p.attack_attempts:,}"),
    _Column("spent", lambda p: format_yen(p.spent_yen)),
    _Column("frozen", lambda p: format_yen(p.frozen_yen)),
    _Column("median detection delay", lambda p: _hours(p.detection_delay_median_hours)),
    _Column("honest active users", lambda p: f"{p.honest_active_users:,}"),
    _Column("step-ups /1,000", lambda p: _per_thousand(p, p.honest_step_ups)),
    _Column("reviews /1,000", lambda p: _per_thousand(p, p.honest_reviews)),
    _Column("blocks /1,000", lambda p: _per_thousand(p, p.honest_blocks)),
    _Column("false locks /1,000", lambda p: _per_thousand(p, p.false_locks)),
    _Column("link refusals", lambda p: f"{p.honest_link_refusals:,}"),
)


def comparison_rows(result: SimulationResult) -> tuple[list[str], list[list[str]]]:
    """The comparison table as text cells: headers, then one row per profile in run order."""
    headers = [column.header for column in _COLUMNS]
    return headers, [[column.cell(profile) for column in _COLUMNS] for profile in result.profiles]


def comparison_markdown(result: SimulationResult) -> str:
    """The comparison table as GitHub Markdown (numbers right-aligned), ending in a newline."""
    headers, rows = comparison_rows(result)

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(cell.replace("|", r"\|") for cell in cells) + " |"

    rule = "|" + "|".join("---:" if column.numeric else ":---" for column in _COLUMNS) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)]) + "\n"


def comparison_table(result: SimulationResult, *, width: int | None = None) -> Table:
    """The comparison table for the CLI (cells are plain text, never rich markup): one row per
    profile, or — when ``width`` (the terminal's) is too narrow for fifteen columns, as in a CI
    log — one row per measure and one column per profile, so no figure is cut to ``…``."""
    title = f"{result.scenario} · seed {result.seed} · {_period(result)}"
    headers, rows = comparison_rows(result)
    if width is not None and width < WIDE_TABLE_COLUMNS:
        table = Table(title=title)
        table.add_column(headers[0])
        for row in rows:
            table.add_column(Text(row[0]), justify="right")
        for i, header in enumerate(headers[1:], start=1):
            table.add_row(Text(header), *(Text(row[i]) for row in rows))
        return table
    table = Table(title=title)
    for column in _COLUMNS:
        table.add_column(column.header, justify="right" if column.numeric else "left",
                         no_wrap=not column.numeric)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


WIDE_TABLE_COLUMNS = 200
"""Terminal width below which :func:`comparison_table` turns the table on its side."""


# --- charts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Typeface:
    """A font for chart text and the characters it has glyphs for."""

    properties: FontProperties
    characters: frozenset[int]

    def draws(self, text: str) -> bool:
        return all(ord(character) in self.characters for character in text if character != "\n")

    def fit(self, text: str) -> str:
        """``text`` with characters the font lacks as ``?`` and ``$`` kept out of mathtext."""
        fitted = "".join(character if self.draws(character) else "?" for character in text)
        return fitted.replace("$", r"\$")


def _typeface(texts: Iterable[str]) -> _Typeface:
    """The default font if it draws every text, else an installed Japanese font that does."""
    wanted = "".join(texts)
    default: _Typeface | None = None
    for properties in (FontProperties(), *(FontProperties(family=family)
                                            for family in _JAPANESE_FAMILIES)):
        try:
            path = findfont(properties, fallback_to_default=False)
        except ValueError:
            continue
        typeface = _Typeface(properties, frozenset(get_font(path).get_charmap()))
        if typeface.draws(wanted):
            return typeface
        default = default or typeface
    if default is None:
        raise RuntimeError("matplotlib finds no font at all")
    return default


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    figure.clear()
    return buffer.getvalue()


def _short_yen(value: float, _position: int | None = None) -> str:
    if abs(value) >= 1_000_000:
        return f"¥{value / 1_000_000:,.1f}M".replace(".0M", "M")
    if abs(value) >= 1_000:
        return f"¥{value / 1_000:,.0f}k"
    return f"¥{value:,.0f}"


def _no_data(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, transform=axes.transAxes, ha="center", va="center",
              fontsize=12, color="0.3")


def _month_ticks(start: date, days: int) -> tuple[list[int], list[str]]:
    """Ticks (day numbers from ``start``) on the first of each month, at most about twelve."""
    firsts: list[date] = []
    month = date(start.year, start.month, 1)
    while (month - start).days < days:
        if month >= start:
            firsts.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    firsts = firsts[:: len(firsts) // 13 + 1]
    labels = [f"{first:%b}\n{first:%Y}" if index == 0 or first.month == 1 else f"{first:%b}"
              for index, first in enumerate(firsts)]
    return [(first - start).days for first in firsts], labels


def _losses_over_time(result: SimulationResult, face: _Typeface) -> Figure:
    figure, axes = _figure(9, 4.5)
    days = max([result.days, 1, *(len(profile.losses_by_day) for profile in result.profiles)])
    start = _start_date(result)
    if start is not None:
        axes.set_xticks(*_month_ticks(start, days))
    else:
        axes.set_xlabel("days from start")
    axes.set_xlim(0, days)
    any_loss = False
    day_numbers = np.arange(days)
    for index, profile in enumerate(result.profiles):
        daily = np.zeros(days, dtype=np.int64)
        daily[: len(profile.losses_by_day)] = profile.losses_by_day
        any_loss = any_loss or bool(daily.any())
        axes.plot(day_numbers, np.cumsum(daily), drawstyle="steps-post", color=f"C{index}",
                  linewidth=2, clip_on=False, label=face.fit(profile.profile))
    axes.set_title(face.fit(f"Cumulative loss per profile: {result.scenario}"),
                   fontproperties=face.properties)
    axes.set_ylabel("yen moved out of victims' accounts")
    axes.yaxis.set_major_formatter(FuncFormatter(_short_yen))
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if not any_loss:
        axes.set_yticks([0])
        _no_data(axes, "No losses under any profile")
    if result.profiles:
        axes.legend(prop=face.properties, loc="upper left", bbox_to_anchor=(1.01, 1))
    return figure


def _losses_by_bank(result: SimulationResult, face: _Typeface) -> Figure:
    codes = banks_with_losses(result)
    if not codes:
        figure, axes = _figure(9, 3)
        axes.set_axis_off()
        _no_data(axes, "No losses: no bank account lost money under any profile")
        axes.set_title(face.fit(f"Loss by bank: {result.scenario}"),
                       fontproperties=face.properties)
        return figure
    count = max(len(result.profiles), 1)
    figure, axes = _figure(9, 1.6 + len(codes) * (0.22 * count + 0.25))
    positions = np.arange(len(codes), dtype=float)
    height = 0.8 / count
    for index, profile in enumerate(result.profiles):
        losses = [profile.losses_by_bank.get(code, 0) for code in codes]
        bars = axes.barh(positions - 0.4 + height * (index + 0.5), losses, height=height,
                         color=f"C{index}", label=face.fit(profile.profile))
        axes.bar_label(bars, labels=[format_yen(yen) if yen else "" for yen in losses],
                       fontsize=7, padding=2)
    names = [result.bank_names.get(code, "") for code in codes]
    labels = [f"{code} {name}" if name and face.draws(name) else code
              for code, name in zip(codes, names, strict=True)]
    axes.set_yticks(positions, [face.fit(label) for label in labels],
                    fontproperties=face.properties)
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(FuncFormatter(_short_yen))
    axes.margins(x=0.12)
    axes.set_xlabel("yen lost")
    axes.grid(axis="x", alpha=0.3)
    axes.set_title(face.fit(f"Loss by bank: {result.scenario}"), fontproperties=face.properties)
    axes.legend(prop=face.properties, loc="lower right")
    if any(name and not face.draws(name) for name in names):
        figure.text(0.01, 0.005, "Banks by code; names in the report's table.", fontsize=8,
                    color="0.4")
    return figure


def _friction_vs_loss(result: SimulationResult, face: _Typeface) -> Figure:
    figure, axes = _figure(8, 5)
    frictions = [profile.per_thousand(friction_count(profile)) for profile in result.profiles]
    for index, (profile, x) in enumerate(zip(result.profiles, frictions, strict=True)):
        label = profile.profile if profile.honest_active_users else (
            f"{profile.profile} (no honest users)")
        axes.scatter([x], [profile.loss_yen], s=80, color=f"C{index}", zorder=3, clip_on=False)
        axes.annotate(face.fit(label), (x, profile.loss_yen), xytext=(7, 6),
                      textcoords="offset points", fontproperties=face.properties)
    if not result.profiles:
        _no_data(axes, "No profiles")
    # Explicit limits: room for the labels, and a readable axis when every figure is zero.
    axes.set_xlim(0, 1.3 * max(frictions, default=0) or 1)
    axes.set_ylim(0, 1.15 * max((profile.loss_yen for profile in result.profiles), default=0)
                  or 1_000)
    axes.yaxis.set_major_formatter(FuncFormatter(_short_yen))
    axes.set_xlabel("honest friction per 1,000 active users\n"
                    "(step-ups + reviews + blocks + false locks)")
    axes.set_ylabel("loss (yen)")
    axes.grid(alpha=0.3)
    axes.set_title(face.fit(f"Friction vs loss: {result.scenario}"),
                   fontproperties=face.properties)
    return figure


def _attack_funnel(result: SimulationResult, face: _Typeface) -> Figure:
    figure, axes = _figure(9, 4.5)
    positions = np.arange(len(_FUNNEL), dtype=float)
    width = 0.8 / max(len(result.profiles), 1)
    any_attempt = False
    for index, profile in enumerate(result.profiles):
        counts = list(funnel(profile).values())
        any_attempt = any_attempt or any(counts)
        bars = axes.bar(positions - 0.4 + width * (index + 0.5), counts, width=width,
                        color=f"C{index}", label=face.fit(profile.profile))
        axes.bar_label(bars, labels=[f"{count:,}" for count in counts], fontsize=7, padding=2)
    axes.set_xticks(positions, [stage.replace("_", " ") for stage in _FUNNEL])
    axes.set_ylabel("attack attempts (all attackers)")
    axes.set_ylim(bottom=0)
    axes.margins(y=0.12)
    axes.grid(axis="y", alpha=0.3)
    axes.set_title(face.fit(f"How far attacks got: {result.scenario}"),
                   fontproperties=face.properties)
    if not any_attempt:
        axes.set_yticks([0])
        _no_data(axes, "No attack attempts")
    if result.profiles:
        axes.legend(prop=face.properties, loc="upper right")
    return figure


_DRAW: dict[str, Callable[[SimulationResult, _Typeface], Figure]] = {
    "losses_over_time": _losses_over_time,
    "losses_by_bank": _losses_by_bank,
    "friction_vs_loss": _friction_vs_loss,
    "attack_funnel": _attack_funnel,
}


def render_charts(result: SimulationResult) -> dict[str, bytes]:
    """Every chart of :data:`CHARTS` as PNG bytes."""
    face = _typeface([result.scenario, *(profile.profile for profile in result.profiles),
                      *(result.bank_names.get(code, "") for code in banks_with_losses(result))])
    return {name: _png(_DRAW[name](result, face)) for name in CHARTS}


# --- files --------------------------------------------------------------------------------


def results_data(result: SimulationResult) -> dict[str, Any]:
    """Everything the run measured, for ``results.json``."""
    return {
        "scenario": result.scenario,
        "seed": result.seed,
        "start": result.start,
        "days": result.days,
        "bank_names": result.bank_names,
        "profiles": [profile.to_dict() for profile in result.profiles],
    }


def _attacker_rows(profile: ProfileResult) -> list[dict[str, Any]]:
    return [{
        "name": attacker.name,
        "strategy": attacker.strategy,
        "attempts": f"{attacker.attempts:,}",
        "stages": [f"{attacker.stages.get(stage, 0):,}" for stage in STAGES],
        "refusals": [f"{code} × {count:,}" for code, count in
                     sorted(attacker.refusals.items(), key=lambda item: (-item[1], item[0]))],
        "victims": f"{attacker.victims:,}",
        "loss": format_yen(attacker.loss_yen),
    } for attacker in profile.attackers]


def _bank_rows(result: SimulationResult) -> list[dict[str, Any]]:
    return [{
        "code": code,
        "name": result.bank_names.get(code, ""),
        "cells": [(format_yen(profile.losses_by_bank.get(code, 0)),
                   f"{profile.victims_by_bank.get(code, 0):,}") for profile in result.profiles],
    } for code in banks_with_losses(result)]


def render_html(result: SimulationResult, charts: dict[str, bytes]) -> str:
    """``report.html``: one self-contained page (charts as ``data:`` URIs, inline CSS)."""
    environment = Environment(loader=PackageLoader("kouza.sim", "templates"), autoescape=True,
                              undefined=StrictUndefined, keep_trailing_newline=True)
    headers, rows = comparison_rows(result)
    return environment.get_template("report.html").render(
        result=result,
        period=_period(result),
        headers=headers,
        numeric=[column.numeric for column in _COLUMNS],
        rows=rows,
        profiles=[{
            "name": profile.profile,
            "description": profile.description,
            "loss": format_yen(profile.loss_yen),
            "attackers": _attacker_rows(profile),
        } for profile in result.profiles],
        stages=[stage.replace("_", " ") for stage in STAGES],
        banks=_bank_rows(result),
        charts=[(name, caption, base64.b64encode(charts[name]).decode("ascii"))
                for name, caption in CHARTS.items()],
    )


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_report(result: SimulationResult, out_dir: Path) -> list[Path]:
    """Write the summary, full results, charts, Markdown table and HTML report into ``out_dir``.

    Creates ``out_dir`` if needed, overwrites earlier files of the same names and returns the
    paths written, in a fixed order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = render_charts(result)
    contents: list[tuple[str, str | bytes]] = [
        ("summary.json", _json(result.summary())),
        ("results.json", _json(results_data(result))),
        *((f"{name}.png", charts[name]) for name in CHARTS),
        ("comparison.md", comparison_markdown(result)),
        ("report.html", render_html(result, charts)),
    ]
    return [_write(out_dir / name, content) for name, content in contents]


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path

