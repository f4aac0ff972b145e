"""The simulator's report: machine-readable figures, charts and one self-contained HTML page.

:func:`write_report` turns a :class:`~kouza.sim.results.SimulationResult` into files in one
folder: ``summary.json`` (exactly :meth:`SimulationResult.summary`), ``results.json`` (every
world), the PNG charts of :data:`CHARTS` (plus ``ablation.png`` when the run has an ablation
table), ``comparison.md`` and ``report.html``. The HTML page embeds the charts as ``data:`` URIs
and its CSS inline, so it can be mailed or attached to a ticket as one file and opened offline.
:func:`comparison_markdown` and :func:`comparison_table` give the same comparison table to the
README and the CLI; all three draw their cells from one column list, as the ablation table's
outputs do from theirs.

Every figure shown is read from the summary's aggregate over seeds (:mod:`kouza.sim.aggregate`):
with one seed a cell is the figure; with several it is ``median [min–max]``, or the median alone
when every seed gave the same. Charts show medians with the range as error bars or bands.

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
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.ticker import FuncFormatter
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from kouza.kit.money import format_yen
from kouza.sim.aggregate import Number, Spread, median, pick, spread
from kouza.sim.results import (
    CONTROLS,
    FRICTION_EVENTS,
    FRICTION_USERS,
    STAGES,
    AttackerResult,
    ProfileResult,
    SimulationResult,
    stopped_by,
)

CHARTS = {
    "losses_over_time": "Cumulative yen moved out of victims' bank accounts, per profile, over "
    "the simulated period (median over seeds; the band is the range).",
    "losses_by_bank": "Yen lost per bank and profile (only banks that lost money under some "
    "profile; names in the table above; median over seeds, bars show the "
    "range).",
    "friction_vs_loss": "Each profile's loss against the friction its honest users met: "
    "step-ups + reviews + blocks + false locks per 1,000 active users "
    "(median over seeds, bars show the range). Lower left is better.",
    "attack_funnel": "Attack attempts that reached each stage, all attackers together (median "
    "over seeds).",
}
"""The charts every report draws, by file stem (``<stem>.png``) in report order, with the
caption the HTML report gives each."""

ABLATION_CHART = (
    "ablation",
    "What each layer of kouza does: yen saved (loss without the layer "
    "− loss with it; median over seeds, bars show the range) and the honest "
    "friction it causes (kouza's − the ablated profile's honest users who met "
    "each kind; a user who met two kinds counts in both).",
)
"""The chart drawn only when the run has an ablation table."""

FRICTION_LABELS = {
    "step_up": "step-ups",
    "review": "reviews",
    "block": "blocks",
    "false_lock": "false locks",
    "limit_refusal": "limit refusals",
    "link_refusal": "link refusals",
    "holder_notice": "holder notices",
    "delayed_money": "delayed money",
    "other_refusal": "other refusals",
}
"""How the report names each kind of honest friction."""

_DPI = 120
_JAPANESE_FAMILIES = (
    "Noto Sans CJK JP",
    "Noto Sans JP",
    "IPAexGothic",
    "IPAGothic",
    "TakaoGothic",
    "VL Gothic",
    "Hiragino Sans",
    "Yu Gothic",
    "Meiryo",
    "MS Gothic",
)
_FUNNEL = ("attempted", *STAGES)
_NONE = "—"


# --- figures shared by every output ---------------------------------------------------------


def friction_count(profile: ProfileResult) -> int:
    """Honest users' friction: step-ups + reviews + blocks + false locks."""
    return (
        profile.honest_step_ups
        + profile.honest_reviews
        + profile.honest_blocks
        + profile.false_locks
    )


def funnel(profile: ProfileResult) -> dict[str, int]:
    """Attack attempts that reached each stage, summed over attackers (``attempted`` first)."""
    totals = {"attempted": sum(attacker.attempts for attacker in profile.attackers)}
    for stage in STAGES:
        totals[stage] = sum(attacker.stages.get(stage, 0) for attacker in profile.attackers)
    return totals


def banks_with_losses(result: SimulationResult) -> list[str]:
    """Bank codes that lost money under any profile and seed, largest total loss first."""
    totals: dict[str, int] = {}
    for profile in result.profiles:
        for code, yen in profile.losses_by_bank.items():
            totals[code] = totals.get(code, 0) + yen
    return sorted(
        (code for code, yen in totals.items() if yen > 0), key=lambda code: (-totals[code], code)
    )


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


def _seeds(result: SimulationResult) -> str:
    """``seed 2020`` or ``seeds 2020–2022 (median [min–max] of 3)``."""
    if len(result.seeds) == 1:
        return f"seed {result.seeds[0]}"
    consecutive = result.seeds == list(range(result.seeds[0], result.seeds[0] + len(result.seeds)))
    listed = (
        f"{result.seeds[0]}–{result.seeds[-1]}"
        if consecutive
        else ", ".join(str(seed) for seed in result.seeds)
    )
    return f"seeds {listed} (median [min–max] of {len(result.seeds)})"


def _population(result: SimulationResult) -> str | None:
    """The honest population asked for (in how many worlds), and its scale when the run was
    not at the scenario's size."""
    parts = []
    if result.honest_users is not None:
        worlds = max((world.worlds for world in result.profiles), default=1)
        parts.append(f"{result.honest_users:,} honest users in {worlds} worlds")
    if result.population_scale != 1:
        share = "" if result.wallet_share is None else f", wallet share {result.wallet_share:g}"
        parts.append(f"honest population ×{result.population_scale:g}{share}")
    return ", ".join(parts) or None


def run_label(result: SimulationResult) -> str:
    """One line naming the run: scenario, seeds, period, and the population scale if not 1."""
    parts = [result.scenario, _seeds(result), _period(result), _population(result)]
    return " · ".join(part for part in parts if part)


# --- cells ----------------------------------------------------------------------------------


def _count(value: Number) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _signed(value: Number) -> str:
    return _count(value) if value <= 0 else "+" + _count(value)


def _yen(value: Number) -> str:
    return format_yen(round(value))


def _hours(value: Number) -> str:
    return f"{value:,.1f} h"


def _two_places(value: Number) -> str:
    return f"{value:,.2f}"


def _percent(value: Number) -> str:
    return f"{100 * value:,.2f} %"


def show(figure: Spread, render: Callable[[Number], str]) -> str:
    """A cell: ``—`` when not measured, the median, and ``[min–max]`` when seeds disagree."""
    if figure.median is None:
        return _NONE
    text = render(figure.median)
    if figure.varies and figure.low is not None and figure.high is not None:
        text += f" [{render(figure.low)}–{render(figure.high)}]"
    return text


# --- the comparison table -------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    header: str
    path: tuple[str, ...]
    render: Callable[[Number], str]
    per_user: bool = False
    """A rate per honest user: ``—`` when the profile had none."""

    def cell(self, figures: Mapping[str, Any]) -> str:
        if self.per_user and not pick(figures, "honest_active_users").median:
            return _NONE
        return show(pick(figures, *self.path), self.render)


_COLUMNS = (
    _Column("loss", ("loss_yen",), _yen),
    _Column("net loss", ("net_loss_yen",), _yen),
    _Column("victims", ("victims",), _count),
    _Column("banks hit", ("banks_hit",), _count),
    _Column("max per victim", ("max_loss_per_victim_yen",), _yen),
    _Column("attack attempts", ("attack_attempts",), _count),
    _Column("attacks succeeded", ("attacks_succeeded",), _count),
    _Column("spent", ("spent_yen",), _yen),
    _Column("frozen", ("frozen_yen",), _yen),
    _Column("median detection delay", ("detection_delay_median_hours",), _hours),
    _Column("honest active users", ("honest_active_users",), _count),
    _Column("step-ups /1,000", ("friction_per_1000", "step_ups"), _two_places, per_user=True),
    _Column("reviews /1,000", ("friction_per_1000", "reviews"), _two_places, per_user=True),
    _Column("blocks /1,000", ("friction_per_1000", "blocks"), _two_places, per_user=True),
    _Column("false locks /1,000", ("friction_per_1000", "false_locks"), _two_places, per_user=True),
    _Column("link refusals", ("honest_link_refusals",), _count),
)


def comparison_rows(result: SimulationResult) -> tuple[list[str], list[list[str]]]:
    """The comparison table as text cells: headers, then one row per profile in run order."""
    profiles = result.summary()["profiles"]
    headers = ["profile", *(column.header for column in _COLUMNS)]
    return headers, [
        [name, *(column.cell(figures) for column in _COLUMNS)] for name, figures in profiles.items()
    ]


def _markdown(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool]
) -> str:
    """A GitHub Markdown table (numeric columns right-aligned), ending in a newline."""

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(cell.replace("|", r"\|") for cell in cells) + " |"

    rule = "|" + "|".join("---:" if right else ":---" for right in numeric) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)]) + "\n"


def comparison_markdown(result: SimulationResult) -> str:
    """The comparison table as GitHub Markdown (numbers right-aligned), ending in a newline."""
    headers, rows = comparison_rows(result)
    return _markdown(headers, rows, [False, *(True for _ in _COLUMNS)])


def comparison_table(result: SimulationResult, *, width: int | None = None) -> Table:
    """The comparison table for the CLI (cells are plain text, never rich markup): one row per
    profile, or — when ``width`` (the terminal's) is narrower than :data:`WIDE_TABLE_COLUMNS`,
    as in a CI log — one row per measure and one column per profile, so no figure is cut to
    ``…``."""
    title = Text(run_label(result))
    headers, rows = comparison_rows(result)
    if width is not None and width < WIDE_TABLE_COLUMNS:
        return _sideways(title, headers, rows)
    table = Table(title=title)
    table.add_column(headers[0], no_wrap=True)
    for header in headers[1:]:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


WIDE_TABLE_COLUMNS = 200
"""Terminal width below which :func:`comparison_table` turns the table on its side."""


def comparison_tables(result: SimulationResult, *, width: int | None = None) -> list[Table]:
    """:func:`comparison_table`, split into several tables of a few profiles each when even on
    its side it is wider than ``width`` (an ablation run has thirteen profiles), so that no
    figure is cut to ``…``."""
    if width is None or width >= WIDE_TABLE_COLUMNS:
        return [comparison_table(result)]
    headers, rows = comparison_rows(result)
    first = max(cell_len(header) for header in headers) + 3
    chunks: list[list[list[str]]] = [[]]
    used = 1 + first
    for row in rows:
        needed = max(cell_len(cell) for cell in row[1:]) + 3
        if chunks[-1] and used + needed > width:
            chunks.append([])
            used = 1 + first
        chunks[-1].append(row)
        used += needed
    title = run_label(result)
    return [
        _sideways(Text(title if index == 0 else f"{title} (continued)"), headers, chunk)
        for index, chunk in enumerate(chunks)
    ]


def _sideways(title: Text, headers: list[str], rows: list[list[str]]) -> Table:
    """One row per measure and one column per profile (long names fold, never cut)."""
    table = Table(title=title)
    table.add_column(headers[0], no_wrap=True)
    for row in rows:
        table.add_column(Text(row[0]), justify="right", overflow="fold")
    for i, header in enumerate(headers[1:], start=1):
        table.add_row(Text(header), *(Text(row[i]) for row in rows))
    return table


# --- the ablation table ---------------------------------------------------------------------


ABLATION_KINDS = FRICTION_USERS
"""The kinds of friction the ablation table shows, one column each."""


def _friction_caused(figures: Mapping[str, Any], kind: str) -> str:
    """``users (events)`` a layer added (or, negative, spared) for one kind of friction."""
    users = show(pick(figures, "friction_caused", "per_user", kind), _signed)
    if kind not in FRICTION_EVENTS:
        return users
    return f"{users} ({show(pick(figures, 'friction_caused', 'per_event', kind), _signed)})"


def ablation_rows(result: SimulationResult) -> tuple[list[str], list[list[str]]]:
    """The ablation table as text cells: layer, what it is, yen saved, net yen saved, the
    friction it caused per kind (honest users, and events in brackets) and kouza's honest
    active users; one row per layer that ran (none when the run had no ablation)."""
    headers = [
        "layer",
        "what it is",
        "yen saved",
        "net yen saved",
        *(FRICTION_LABELS[kind] for kind in ABLATION_KINDS),
        "honest users",
    ]
    rows = [
        [
            row["layer"],
            row["description"],
            show(pick(row, "yen_saved"), _yen),
            show(pick(row, "net_yen_saved"), _yen),
            *(_friction_caused(row, kind) for kind in ABLATION_KINDS),
            show(pick(row, "honest_active_users"), _count),
        ]
        for row in result.summary()["ablation"]
    ]
    return headers, rows


def ablation_markdown(result: SimulationResult) -> str:
    """The ablation table as GitHub Markdown, or ``""`` when the run has none."""
    headers, rows = ablation_rows(result)
    if not rows:
        return ""
    return _markdown(headers, rows, [False, False, *(True for _ in headers[2:])])


def ablation_table(result: SimulationResult) -> Table | None:
    """The ablation table for the CLI: per layer, yen saved, net yen saved, the kinds of
    friction it caused (only those that are not zero in every seed) and kouza's honest users;
    ``None`` when the run has no ablation. Descriptions are left to the report."""
    rows = result.summary()["ablation"]
    if not rows:
        return None
    table = Table(title=Text(f"What each layer of kouza does · {_seeds(result)}"))
    table.add_column("layer", min_width=max(len(row["layer"]) for row in rows))
    for header in ("yen saved", "net yen saved", "friction caused: users (events)", "honest users"):
        table.add_column(
            header, justify="left" if header.startswith("friction") else "right", overflow="fold"
        )
    for row in rows:
        caused = [
            f"{FRICTION_LABELS[kind]} {_friction_caused(row, kind)}"
            for kind in ABLATION_KINDS
            if _any_friction(row, kind)
        ]
        table.add_row(
            Text(row["layer"]),
            Text(show(pick(row, "yen_saved"), _yen)),
            Text(show(pick(row, "net_yen_saved"), _yen)),
            Text("; ".join(caused) or "none"),
            Text(show(pick(row, "honest_active_users"), _count)),
        )
    return table


def _any_friction(row: Mapping[str, Any], kind: str) -> bool:
    figures = [pick(row, "friction_caused", part, kind) for part in ("per_user", "per_event")]
    return any(figure.low or figure.high for figure in figures)


# --- the friction section and the attackers' funnels ----------------------------------------


def _friction_rows(figures: Mapping[str, Any]) -> list[dict[str, str]]:
    """Per kind of friction: honest users who met it, of how many, the rate; and the same per
    operation."""
    rows = []
    for kind, label in FRICTION_LABELS.items():
        row = {"kind": label}
        for part, count_key, prefix in (("per_user", "users", ""), ("per_event", "count", "e_")):
            present = kind in (FRICTION_USERS if part == "per_user" else FRICTION_EVENTS)
            base = ("friction", part, kind)
            row[prefix + "count"] = show(pick(figures, *base, count_key), _count) if present else ""
            row[prefix + "of"] = show(pick(figures, *base, "of"), _count) if present else ""
            row[prefix + "rate"] = show(pick(figures, *base, "rate"), _percent) if present else ""
        rows.append(row)
    return rows


def _time_to_money(figures: Mapping[str, Any]) -> dict[str, str]:
    base = ("friction", "time_to_money")
    return {
        "delayed": show(pick(figures, *base, "delayed"), _count),
        "median": show(pick(figures, *base, "median_hours"), _hours),
        "max": show(pick(figures, *base, "max_hours"), _hours),
    }


def _attacker_figures(attacker: AttackerResult) -> dict[str, Any]:
    """One attacker in one world, as a tree :func:`~kouza.sim.aggregate.spread` aggregates."""
    return {
        "strategy": attacker.strategy,
        "attempts": attacker.attempts,
        "stages": {stage: attacker.stages.get(stage, 0) for stage in STAGES},
        "succeeded": attacker.succeeded,
        "stopped_by": stopped_by(attacker.refusals),
        "rules": dict(sorted(attacker.stopped_by_rule.items())),
        "victims": attacker.victims,
        "loss_yen": attacker.loss_yen,
    }


def _attacker_rows(runs: Sequence[ProfileResult]) -> list[dict[str, Any]]:
    """Each attacker over the profile's seeds: funnel, what stopped it, what it took."""
    names = list(dict.fromkeys(attacker.name for run in runs for attacker in run.attackers))
    rows = []
    for name in names:
        per_seed = {
            str(run.seed): _attacker_figures(attacker)
            for run in runs
            for attacker in run.attackers
            if attacker.name == name
        }
        codes = _codes_by_control(
            attacker for run in runs for attacker in run.attackers if attacker.name == name
        )
        figures = spread(per_seed)
        rows.append(
            {
                "name": name,
                "strategy": figures["median"]["strategy"],
                "attempts": show(pick(figures, "attempts"), _count),
                "stages": [show(pick(figures, "stages", stage), _count) for stage in STAGES],
                "succeeded": show(pick(figures, "succeeded"), _count),
                "stopped_by": _stopped_by_items(figures, codes),
                "victims": show(pick(figures, "victims"), _count),
                "loss": show(pick(figures, "loss_yen"), _yen),
            }
        )
    return rows


def _codes_by_control(attackers: Iterable[AttackerResult]) -> dict[str, list[str]]:
    """Control → the refusal codes seen for it (to show under a translated control)."""
    codes: dict[str, list[str]] = {}
    for attacker in attackers:
        for code in attacker.refusals:
            control = CONTROLS.get(code, code)
            if code != control and code not in codes.setdefault(control, []):
                codes[control].append(code)
    return codes


def _stopped_by_items(
    figures: Mapping[str, Any], codes: Mapping[str, list[str]]
) -> list[tuple[str, str]]:
    """``(control × count, codes)`` most frequent first, then ``rule <id> × count``."""
    items = []
    for group, prefix in (("stopped_by", ""), ("rules", "rule ")):
        names = sorted(
            figures["median"][group],
            key=lambda key: (-(pick(figures, group, key).median or 0), key),
        )
        for name in names:
            count = show(pick(figures, group, name), _count)
            items.append(
                (f"{prefix}{name} × {count}", ", ".join(codes.get(name, [])) if not prefix else "")
            )
    return items


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
    for properties in (
        FontProperties(),
        *(FontProperties(family=family) for family in _JAPANESE_FAMILIES),
    ):
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


def _colour(index: int, count: int) -> Any:
    """Distinct colours for up to 20 series (an ablation run has 13 profiles)."""
    return f"C{index}" if count <= 10 else colormaps["tab20"](index % 20)


def _short(name: str) -> str:
    """Chart label of a profile: ``kouza − device-keys`` for ``kouza-without-device-keys``."""
    return name.replace("kouza-without-", "kouza − ")


def _short_yen(value: float, _position: int | None = None) -> str:
    sign = "-" if value <= -0.5 else ""
    value = abs(value)
    if value >= 1_000_000:
        return sign + f"¥{value / 1_000_000:,.1f}M".replace(".0M", "M")
    if value >= 1_000:
        return sign + f"¥{value / 1_000:,.0f}k"
    return sign + f"¥{value:,.0f}"


def _no_data(axes: Axes, message: str) -> None:
    axes.text(
        0.5,
        0.5,
        message,
        transform=axes.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        color="0.3",
    )


def _middle(samples: Sequence[Sequence[float]]) -> tuple[list[float], Any]:
    """Per item, the median of its samples (one per seed) and, when there are several seeds,
    matplotlib's error bars from the median to the lowest and highest sample."""
    middles = [float(median(list(values))) if values else 0.0 for values in samples]
    if all(len(values) <= 1 for values in samples):
        return middles, None
    errors = np.array(
        [
            [
                middle - min(values, default=middle)
                for middle, values in zip(middles, samples, strict=True)
            ],
            [
                max(values, default=middle) - middle
                for middle, values in zip(middles, samples, strict=True)
            ],
        ]
    )
    return middles, errors


def _month_ticks(start: date, days: int) -> tuple[list[int], list[str]]:
    """Ticks (day numbers from ``start``) on the first of each month, at most about twelve."""
    firsts: list[date] = []
    month = date(start.year, start.month, 1)
    while (month - start).days < days:
        if month >= start:
            firsts.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    firsts = firsts[:: len(firsts) // 13 + 1]
    labels = [
        f"{first:%b}\n{first:%Y}" if index == 0 or first.month == 1 else f"{first:%b}"
        for index, first in enumerate(firsts)
    ]
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
    groups = result.by_profile()
    for index, (name, runs) in enumerate(groups.items()):
        cumulative = np.zeros((len(runs), days), dtype=np.int64)
        for row, run in enumerate(runs):
            cumulative[row, : len(run.losses_by_day)] = run.losses_by_day
        cumulative = np.cumsum(cumulative, axis=1)
        any_loss = any_loss or bool(cumulative.any())
        colour = _colour(index, len(groups))
        axes.plot(
            day_numbers,
            np.median(cumulative, axis=0),
            drawstyle="steps-post",
            color=colour,
            linewidth=2,
            clip_on=False,
            label=face.fit(_short(name)),
        )
        if len(runs) > 1:
            axes.fill_between(
                day_numbers,
                cumulative.min(axis=0),
                cumulative.max(axis=0),
                step="post",
                color=colour,
                alpha=0.15,
                linewidth=0,
            )
    axes.set_title(
        face.fit(f"Cumulative loss per profile: {result.scenario}"), fontproperties=face.properties
    )
    axes.set_ylabel("yen moved out of victims' accounts")
    axes.yaxis.set_major_formatter(FuncFormatter(_short_yen))
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if not any_loss:
        axes.set_yticks([0])
        _no_data(axes, "No losses under any profile")
    if groups:
        axes.legend(
            prop=face.properties,
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
            fontsize="small" if len(groups) > 6 else None,
        )
    return figure


def _losses_by_bank(result: SimulationResult, face: _Typeface) -> Figure:
    codes = banks_with_losses(result)
    if not codes:
        figure, axes = _figure(9, 3)
        axes.set_axis_off()
        _no_data(axes, "No losses: no bank account lost money under any profile")
        axes.set_title(face.fit(f"Loss by bank: {result.scenario}"), fontproperties=face.properties)
        return figure
    groups = result.by_profile()
    count = max(len(groups), 1)
    figure, axes = _figure(9, 1.6 + len(codes) * (0.22 * count + 0.25))
    positions = np.arange(len(codes), dtype=float)
    height = 0.8 / count
    for index, (name, runs) in enumerate(groups.items()):
        losses, errors = _middle(
            [[run.losses_by_bank.get(code, 0) for run in runs] for code in codes]
        )
        bars = axes.barh(
            positions - 0.4 + height * (index + 0.5),
            losses,
            height=height,
            xerr=errors,
            color=_colour(index, count),
            label=face.fit(_short(name)),
            error_kw={"elinewidth": 0.8, "capsize": 2},
        )
        axes.bar_label(
            bars, labels=[_yen(yen) if yen else "" for yen in losses], fontsize=7, padding=2
        )
    names = [result.bank_names.get(code, "") for code in codes]
    labels = [
        f"{code} {name}" if name and face.draws(name) else code
        for code, name in zip(codes, names, strict=True)
    ]
    axes.set_yticks(
        positions, [face.fit(label) for label in labels], fontproperties=face.properties
    )
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(FuncFormatter(_short_yen))
    axes.margins(x=0.12)
    axes.set_xlabel("yen lost")
    axes.grid(axis="x", alpha=0.3)
    axes.set_title(face.fit(f"Loss by bank: {result.scenario}"), fontproperties=face.properties)
    axes.legend(prop=face.properties, loc="lower right", fontsize="small" if count > 6 else None)
    if any(name and not face.draws(name) for name in names):
        figure.text(
            0.01, 0.005, "Banks by code; names in the report's table.", fontsize=8, color="0.4"
        )
    return figure


def _friction_vs_loss(result: SimulationResult, face: _Typeface) -> Figure:
    figure, axes = _figure(8, 5)
    groups = result.by_profile()
    highest = [0.0, 0.0]
    labels: dict[tuple[float, float], list[str]] = {}
    for index, (name, runs) in enumerate(groups.items()):
        frictions = [run.per_thousand(friction_count(run)) for run in runs]
        losses = [float(run.loss_yen) for run in runs]
        (x,), x_errors = _middle([frictions])
        (y,), y_errors = _middle([losses])
        highest = [max(highest[0], *frictions), max(highest[1], *losses)]
        labels.setdefault((x, y), []).append(
            _short(name)
            if any(run.honest_active_users for run in runs)
            else f"{_short(name)} (no honest users)"
        )
        axes.errorbar(
            [x],
            [y],
            xerr=x_errors,
            yerr=y_errors,
            fmt="o",
            markersize=8,
            color=_colour(index, len(groups)),
            zorder=3,
            clip_on=False,
            capsize=3,
        )
    for (x, y), names in labels.items():
        # Profiles at the same point share one label instead of overprinting each other.
        shown = names if len(names) <= 4 else [*names[:3], f"+{len(names) - 3} more"]
        axes.annotate(
            face.fit("\n".join(shown)),
            (x, y),
            xytext=(7, 6),
            textcoords="offset points",
            fontproperties=face.properties,
            fontsize="small" if len(groups) > 6 else None,
        )
    if not groups:
        _no_data(axes, "No profiles")
    # Explicit limits: room for the labels, and a readable axis when every figure is zero.
    axes.set_xlim(0, 1.3 * highest[0] or 1)
    axes.set_ylim(0, 1.15 * highest[1] or 1_000)
    axes.yaxis.set_major_formatter(FuncFormatter(_short_yen))
    axes.set_xlabel(
        "honest friction per 1,000 active users\n(step-ups + reviews + blocks + false locks)"
    )
    axes.set_ylabel("loss (yen)")
    axes.grid(alpha=0.3)
    axes.set_title(face.fit(f"Friction vs loss: {result.scenario}"), fontproperties=face.properties)
    return figure


def _attack_funnel(result: SimulationResult, face: _Typeface) -> Figure:
    figure, axes = _figure(9, 4.5)
    positions = np.arange(len(_FUNNEL), dtype=float)
    groups = result.by_profile()
    width = 0.8 / max(len(groups), 1)
    any_attempt = False
    for index, (name, runs) in enumerate(groups.items()):
        funnels = [funnel(run) for run in runs]
        counts, errors = _middle(
            [[run_funnel[stage] for run_funnel in funnels] for stage in _FUNNEL]
        )
        any_attempt = any_attempt or any(counts)
        bars = axes.bar(
            positions - 0.4 + width * (index + 0.5),
            counts,
            width=width,
            yerr=errors,
            color=_colour(index, len(groups)),
            label=face.fit(_short(name)),
            error_kw={"elinewidth": 0.8},
        )
        if len(groups) <= 6:
            axes.bar_label(
                bars,
                labels=[_count(int(count) if count.is_integer() else count) for count in counts],
                fontsize=7,
                padding=2,
            )
    axes.set_xticks(positions, [stage.replace("_", " ") for stage in _FUNNEL])
    axes.set_ylabel("attack attempts (all attackers)")
    axes.set_ylim(bottom=0)
    axes.margins(y=0.12)
    axes.grid(axis="y", alpha=0.3)
    axes.set_title(
        face.fit(f"How far attacks got: {result.scenario}"), fontproperties=face.properties
    )
    if not any_attempt:
        axes.set_yticks([0])
        _no_data(axes, "No attack attempts")
    if groups:
        axes.legend(
            prop=face.properties, loc="upper right", fontsize="small" if len(groups) > 6 else None
        )
    return figure


def _ablation(result: SimulationResult, face: _Typeface) -> Figure:
    """Yen saved per layer (left) and the honest friction it caused, by kind (right)."""
    rows = result.summary()["ablation"]
    figure = Figure(figsize=(12, 1.6 + 0.42 * len(rows)), layout="constrained")
    FigureCanvasAgg(figure)
    saved_axes, friction_axes = figure.subplots(1, 2, sharey=True, width_ratios=(1.1, 1))
    positions = np.arange(len(rows), dtype=float)
    saved, errors = _middle(
        [list(row["per_seed"][seed]["yen_saved"] for seed in row["per_seed"]) for row in rows]
    )
    bars = saved_axes.barh(
        positions,
        saved,
        xerr=errors,
        height=0.6,
        capsize=3,
        color=["#3a7d44" if yen >= 0 else "#b23a48" for yen in saved],
    )
    saved_axes.bar_label(bars, labels=[_yen(yen) for yen in saved], fontsize=7, padding=3)
    saved_axes.set_yticks(
        positions, [face.fit(row["layer"]) for row in rows], fontproperties=face.properties
    )
    saved_axes.invert_yaxis()
    saved_axes.axvline(0, color="0.3", linewidth=0.8)
    saved_axes.xaxis.set_major_formatter(FuncFormatter(_short_yen))
    saved_axes.margins(x=0.2)
    if not any(saved) and (errors is None or not errors.any()):
        saved_axes.set_xlim(-1_000, 1_000)  # every layer saved ¥0: a readable, centred axis
    saved_axes.set_xlabel("yen saved (loss without the layer − loss with it)")
    saved_axes.grid(axis="x", alpha=0.3)
    _stacked_friction(friction_axes, rows, positions)
    figure.suptitle(
        face.fit(f"What each layer of kouza does: {result.scenario} · {_seeds(result)}"),
        fontproperties=face.properties,
    )
    if not any(saved) and not any(
        _any_friction(row, kind) for row in rows for kind in ABLATION_KINDS
    ):
        _no_data(saved_axes, "No layer changed anything")
    return figure


def _stacked_friction(
    axes: Axes, rows: Sequence[Mapping[str, Any]], positions: np.ndarray[Any, Any]
) -> None:
    """Median honest users per kind of friction a layer caused, stacked (spared: leftwards)."""
    right = np.zeros(len(rows))
    left = np.zeros(len(rows))
    drawn = False
    for index, kind in enumerate(ABLATION_KINDS):
        users = np.array(
            [pick(row, "friction_caused", "per_user", kind).median or 0 for row in rows],
            dtype=float,
        )
        if not users.any():
            continue
        starts = np.where(users >= 0, right, left)
        axes.barh(
            positions,
            users,
            left=starts,
            height=0.6,
            color=f"C{index}",
            label=FRICTION_LABELS[kind],
        )
        right += np.where(users > 0, users, 0)
        left += np.where(users < 0, users, 0)
        drawn = True
    axes.axvline(0, color="0.3", linewidth=0.8)
    axes.set_xlabel("honest users who met it (kouza − kouza without the layer)")
    axes.grid(axis="x", alpha=0.3)
    if drawn:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    else:
        axes.set_xlim(-1, 1)
        _no_data(axes, "No honest friction from any layer")


_DRAW: dict[str, Callable[[SimulationResult, _Typeface], Figure]] = {
    "losses_over_time": _losses_over_time,
    "losses_by_bank": _losses_by_bank,
    "friction_vs_loss": _friction_vs_loss,
    "attack_funnel": _attack_funnel,
    ABLATION_CHART[0]: _ablation,
}


def chart_captions(result: SimulationResult) -> dict[str, str]:
    """The charts this run's report draws (:data:`CHARTS`, and the ablation chart when the run
    has an ablation table), by file stem, with their captions."""
    captions = dict(CHARTS)
    if result.summary()["ablation"]:
        captions[ABLATION_CHART[0]] = ABLATION_CHART[1]
    return captions


def render_charts(result: SimulationResult) -> dict[str, bytes]:
    """Every chart of :func:`chart_captions` as PNG bytes."""
    face = _typeface(
        [
            result.scenario,
            *(profile.profile for profile in result.profiles),
            *(result.bank_names.get(code, "") for code in banks_with_losses(result)),
        ]
    )
    return {name: _png(_DRAW[name](result, face)) for name in chart_captions(result)}


# --- files --------------------------------------------------------------------------------


def results_data(result: SimulationResult) -> dict[str, Any]:
    """Everything every world measured, for ``results.json`` (each profile entry has its
    ``seed``)."""
    return {
        "scenario": result.scenario,
        "seeds": list(result.seeds),
        "population_scale": result.population_scale,
        "wallet_share": result.wallet_share,
        "honest_users": result.honest_users,
        "start": result.start,
        "days": result.days,
        "bank_names": result.bank_names,
        "profiles": [profile.to_dict() for profile in result.profiles],
    }


def _bank_rows(result: SimulationResult, profiles: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "code": code,
            "name": result.bank_names.get(code, ""),
            "cells": [
                (
                    show(_zero_if_none(pick(figures, "losses_by_bank", code)), _yen),
                    show(_victims_at(runs, code), _count),
                )
                for figures, runs in zip(
                    profiles.values(), result.by_profile().values(), strict=True
                )
            ],
        }
        for code in banks_with_losses(result)
    ]


def _zero_if_none(figure: Spread) -> Spread:
    """A bank no seed of a profile lost money at is not in its ``losses_by_bank``: ¥0."""
    return Spread(0, 0, 0) if figure.median is None else figure


def _victims_at(runs: Sequence[ProfileResult], code: str) -> Spread:
    """Victims at one bank over the seeds (not in the summary, so spread here)."""
    return pick(
        spread({str(run.seed): {"victims": run.victims_by_bank.get(code, 0)} for run in runs}),
        "victims",
    )


def html_cell(text: str) -> Markup:
    """A table cell's text, escaped, with each ``[min–max]`` kept on one line (browsers break
    after an en dash) so a cell wraps only between its median and its range."""
    return Markup(_RANGE.sub(r'<span class="range">\1</span>', str(escape(text))))


_RANGE = re.compile(r"(\[[^\]]*\])")


def render_html(result: SimulationResult, charts: Mapping[str, bytes]) -> str:
    """``report.html``: one self-contained page (charts as ``data:`` URIs, inline CSS)."""
    environment = Environment(
        loader=PackageLoader("kouza.sim", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.filters["cell"] = html_cell
    summary = result.summary()
    headers, rows = comparison_rows(result)
    ablation_headers, ablation_cells = ablation_rows(result)
    runs = result.by_profile()
    return environment.get_template("report.html").render(
        result=result,
        label=run_label(result),
        seeds=_seeds(result),
        several_seeds=len(result.seeds) > 1,
        population=_population(result),
        period=_period(result),
        headers=headers,
        rows=rows,
        ablation_headers=ablation_headers,
        ablation_rows=ablation_cells,
        profiles=[
            {
                "name": name,
                "description": figures["description"],
                "loss": show(pick(figures, "loss_yen"), _yen),
                "attackers": _attacker_rows(runs[name]),
                "friction": _friction_rows(figures),
                "time_to_money": _time_to_money(figures),
                "users": show(pick(figures, "honest_active_users"), _count),
                "operations": show(pick(figures, "friction", "honest_operations"), _count),
            }
            for name, figures in summary["profiles"].items()
        ],
        stages=[stage.replace("_", " ") for stage in STAGES],
        banks=_bank_rows(result, summary["profiles"]),
        charts=[
            (name, caption, base64.b64encode(charts[name]).decode("ascii"))
            for name, caption in chart_captions(result).items()
            if name in charts
        ],
    )


TARGETS: tuple[tuple[str, str, float], ...] = (
    ("step_up", "honest step-ups", 0.02),
    ("review", "reviews", 0.005),
    ("false_lock", "false locks", 0.0005),
    ("link_refusal", "link refusals", 0.01),
)
"""What a real operator accepts (issue 18): per kind of honest friction, the largest share of
its denominator (honest active users; honest link attempters for link refusals)."""
LOSS_TARGET = 0.005
"""Loss at most this share of ``legacy-2019``'s on the same seed."""
LOSS_BASELINE = "legacy-2019"


def _target_cell(median: Mapping[str, Any], rates: Sequence[float], target: float) -> str:
    users, of = median.get("users", 0), median.get("of", 0)
    if not of:
        return _NONE
    worst = max(rates, default=0.0)
    mark = "✓" if worst <= target else "✗"
    return f"{_count(users)} / {_count(of)} ({worst:.2%} at worst) {mark}"


def targets_rows(result: SimulationResult) -> tuple[list[str], list[list[str]]]:
    """Each profile against the operator's targets (:data:`TARGETS`, :data:`LOSS_TARGET`):
    median users / median denominator, the worst seed's rate, and ✓ when every seed meets it.
    The loss column compares each seed's loss with ``legacy-2019``'s on the same seed."""
    summary = result.summary()["profiles"]
    baseline = summary.get(LOSS_BASELINE, {}).get("per_seed", {})
    headers = [
        "profile",
        *(f"{label} ≤ {target:.2%}".replace(".00%", "%") for _, label, target in TARGETS),
        f"loss ≤ {LOSS_TARGET:.1%} of {LOSS_BASELINE}",
    ]
    rows = []
    for name, figures in summary.items():
        per_seed = figures["per_seed"]
        row = [name]
        for kind, _, target in TARGETS:
            rates = [
                float(seed["friction"]["per_user"][kind]["rate"] or 0.0)
                for seed in per_seed.values()
            ]
            row.append(_target_cell(figures["median"]["friction"]["per_user"][kind], rates, target))
        shares = [
            seed["loss_yen"] / baseline[label]["loss_yen"]
            for label, seed in per_seed.items()
            if baseline.get(label, {}).get("loss_yen")
        ]
        if name == LOSS_BASELINE or not shares:
            row.append(_NONE)
        else:
            worst = max(shares)
            row.append(f"{worst:.2%} at worst {'✓' if worst <= LOSS_TARGET else '✗'}")
        rows.append(row)
    return headers, rows


def targets_markdown(result: SimulationResult) -> str:
    """:func:`targets_rows` as GitHub Markdown."""
    headers, rows = targets_rows(result)
    return _markdown(headers, rows, [False, *(True for _ in headers[1:])])


def markdown_file(result: SimulationResult) -> str:
    """``comparison.md``: what ran, the comparison table, the operator's targets and, if any,
    the ablation table."""
    parts = [
        f"{run_label(result)}\n",
        comparison_markdown(result),
        "## Against an operator's targets\n",
        "Honest users who met each kind of friction over its denominator (median over the "
        "seeds), the worst seed's rate, and ✓ when every seed meets the target.\n",
        targets_markdown(result),
    ]
    ablation = ablation_markdown(result)
    if ablation:
        parts += [
            "## What each layer of kouza does\n",
            "Yen saved = loss without the layer − loss with it; friction caused = "
            "kouza's honest friction − the ablated profile's: honest users who met it "
            "(events in brackets). A negative yen saved: the run lost less without the "
            "layer; a negative friction: honest users met that kind more often without "
            "it (another control took over).\n",
            ablation,
        ]
    return "\n".join(parts)


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_report(result: SimulationResult, out_dir: Path) -> list[Path]:
    """Write the summary, full results, charts, Markdown tables and HTML report into
    ``out_dir``.

    Creates ``out_dir`` if needed, overwrites earlier files of the same names and returns the
    paths written, in a fixed order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = render_charts(result)
    contents: list[tuple[str, str | bytes]] = [
        ("summary.json", _json(result.summary())),
        ("results.json", _json(results_data(result))),
        *((f"{name}.png", data) for name, data in charts.items()),
        ("comparison.md", markdown_file(result)),
        ("report.html", render_html(result, charts)),
    ]
    return [_write(out_dir / name, content) for name, content in contents]


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path
