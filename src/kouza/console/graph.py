"""The case page's entity graph, drawn on the server as SVG (no script, no library).

The wallet sits in the middle; the entities it used (devices, addresses, networks, bank
accounts) on a ring around it; the other wallets that share them on an outer ring, each near
the entities it shares, with a line to each. The SVG has a title and a description, and the
page lists the same facts as text beside it.
"""

from __future__ import annotations

import math
from html import escape

from markupsafe import Markup

from kouza.console.casefile import Graph

COLOURS = {
    "wallet": "#243b6b",
    "device": "#1f5fa8",
    "ip": "#2e7d32",
    "network": "#6a3d9a",
    "account": "#b26a00",
    "other": "#a61b1b",
}
SIZE = 640


def _short(value: str, limit: int = 14) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def draw(graph: Graph, *, title: str, description: str) -> Markup:
    """The graph as an ``<svg role="img">``."""
    centre = SIZE / 2
    inner, outer = 150.0, 270.0
    places: dict[tuple[str, str], tuple[float, float]] = {}
    count = max(1, len(graph.entities))
    for index, entity in enumerate(graph.entities):
        angle = 2 * math.pi * index / count - math.pi / 2
        places[entity] = (centre + inner * math.cos(angle), centre + inner * math.sin(angle))
    lines: list[str] = []
    nodes: list[str] = []
    for entity, (x, y) in places.items():
        lines.append(_line(centre, centre, x, y, "#8a949e"))
        nodes.append(_node(x, y, COLOURS[entity[0]], f"{entity[0]}: {_short(entity[1])}", 9))
    neighbours = sorted(graph.neighbours.items())
    for index, (other, shared) in enumerate(neighbours):
        angles = [
            math.atan2(places[s][1] - centre, places[s][0] - centre) for s in shared if s in places
        ]
        spread = (index - len(neighbours) / 2) * 0.08
        angle = (sum(angles) / len(angles) if angles else 0.0) + spread
        x, y = centre + outer * math.cos(angle), centre + outer * math.sin(angle)
        for entity in shared:
            if entity in places:
                lines.append(_line(x, y, *places[entity], COLOURS["other"], dash=True))
        nodes.append(_node(x, y, COLOURS["other"], f"wallet {_short(other, 8)}", 8))
    nodes.append(_node(centre, centre, COLOURS["wallet"], f"wallet {_short(graph.wallet, 8)}", 14))
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {SIZE} {SIZE}" '
        f'width="100%" class="chart graph" aria-labelledby="graph-t graph-d">'
        f'<title id="graph-t">{escape(title)}</title>'
        f'<desc id="graph-d">{escape(description)}</desc>'
        + "".join(lines)
        + "".join(nodes)
        + "</svg>"
    )


def _line(x1: float, y1: float, x2: float, y2: float, colour: str, *, dash: bool = False) -> str:
    pattern = ' stroke-dasharray="4 3"' if dash else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
        f'stroke-width="1.5"{pattern}></line>'
    )


def _node(x: float, y: float, colour: str, label: str, radius: int) -> str:
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{colour}"></circle>'
        f'<text x="{x:.1f}" y="{y + radius + 12:.1f}" font-size="11" text-anchor="middle" '
        f'fill="#1b1f24">{escape(label)}</text>'
    )
