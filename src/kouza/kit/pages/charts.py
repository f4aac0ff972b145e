"""Charts drawn on the server as inline SVG: no script, no CDN, readable by a screen reader.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that states the
figures, next to which the pages show the same numbers as a table. :func:`bars` draws one series
per category (counts per bank, per reason); :func:`stacked_columns` draws buckets over time
(the last hours or days) with one stacked colour per series and a legend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#1f5fa8", "#c0392b", "#2e7d32", "#b26a00", "#6a3d9a", "#00796b", "#5d4037", "#455a64")
"""Colours with at least 3:1 contrast on white (WCAG non-text contrast)."""


def _text(
    x: float, y: float, content: str, *, anchor: str = "start", size: int = 12, fill: str = "#222"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}">{escape(content)}</text>'
    )


def bars(title: str, values: Mapping[str, int], *, width: int = 480, unit: str = "") -> Markup:
    """Horizontal bars, one per label, longest first as given."""
    items = list(values.items())
    row = 24
    label_width = 150
    height = max(1, len(items)) * row + 30
    peak = max((value for _, value in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" class="chart" aria-labelledby="{_id(title)}-t {_id(title)}-d">',
        f'<title id="{_id(title)}-t">{escape(title)}</title>',
        f'<desc id="{_id(title)}-d">{escape(_describe(items, unit))}</desc>',
    ]
    if not items:
        parts.append(_text(10, 24, "—"))
    for index, (label, value) in enumerate(items):
        y = 10 + index * row
        bar = (width - label_width - 70) * value / peak
        parts.append(_text(label_width - 6, y + 15, _clip(label, 22), anchor="end"))
        parts.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{bar:.1f}" height="{row - 8}" '
            f'fill="{PALETTE[0]}"></rect>'
        )
        parts.append(_text(label_width + bar + 6, y + 15, f"{value:,}{unit}"))
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_columns(
    title: str,
    buckets: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    width: int = 640,
    height: int = 220,
) -> Markup:
    """Columns over ``buckets`` (time labels), each stacking the ``series`` values of its index."""
    names = list(series)
    top, bottom, left, right = 12, 40, 44, 10
    plot_height = height - top - bottom
    plot_width = width - left - right
    totals = [sum(series[name][i] for name in names) for i in range(len(buckets))]
    peak = max(totals, default=0) or 1
    column = plot_width / max(1, len(buckets))
    legend_y = height - 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" class="chart" aria-labelledby="{_id(title)}-t {_id(title)}-d">',
        f'<title id="{_id(title)}-t">{escape(title)}</title>',
        f'<desc id="{_id(title)}-d">'
        + escape(_describe([(name, sum(series[name])) for name in names], ""))
        + "</desc>",
        f'<line x1="{left}" y1="{top + plot_height}" x2="{width - right}" '
        f'y2="{top + plot_height}" stroke="#555"></line>',
        _text(left - 4, top + 10, f"{peak:,}", anchor="end", size=11),
        _text(left - 4, top + plot_height, "0", anchor="end", size=11),
    ]
    # every label fits beside its neighbours: about 6 px per character at font size 10
    widest = max((len(label) for label in buckets), default=1) * 6 + 8
    step = max(1, math.ceil(widest / column))
    for index, label in enumerate(buckets):
        x = left + index * column
        y = float(top + plot_height)
        for colour, name in zip(PALETTE * 4, names, strict=False):
            value = series[name][index]
            if value <= 0:
                continue
            bar = plot_height * value / peak
            y -= bar
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(1.0, column - 2):.1f}" '
                f'height="{bar:.1f}" fill="{colour}"><title>{escape(label)} {escape(name)}: '
                f"{value:,}</title></rect>"
            )
        if index % step == 0:
            parts.append(
                _text(x + column / 2, top + plot_height + 14, label, anchor="middle", size=10)
            )
    x = left
    for colour, name in zip(PALETTE * 4, names, strict=False):
        parts.append(
            f'<rect x="{x}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"></rect>'
        )
        parts.append(_text(x + 14, legend_y, name, size=11))
        x += 20 + _text_width(name, size=11)
    parts.append("</svg>")
    return Markup("".join(parts))


def _text_width(text: str, *, size: int) -> int:
    """About how wide ``text`` draws: CJK characters are square, Latin ones about 0.6 em."""
    return int(sum(size if ord(ch) >= 0x2E80 else size * 0.62 for ch in text))


def _describe(items: Sequence[tuple[str, int]], unit: str) -> str:
    if not items:
        return "no data"
    return "; ".join(f"{label}: {value:,}{unit}" for label, value in items)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _id(title: str) -> str:
    return "chart-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())[:40]
