"""Draw explain's rule graph as inline SVG: the JSON's rules in; an ``<svg>`` element out.

Positions come from :func:`synthc.planning.formats.layout.layout` (columns by dependency
depth, left to right). Request rules show four count cells and a bar split by
status; derived rules and inputs show their kind. Names too long for a box are
cut with an ellipsis and given in full in the box's ``<title>`` tooltip. All
text is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from synthc.planning.formats.layout import COLOURS, STATUSES, Vertex, layout

BOX_W, BOX_H = 212, 88
INPUT_H, DERIVED_H, WAYPOINT_H = 44, 50, 10
COL_GAP, ROW_GAP, MARGIN = 60, 22, 12
MAX_NAME = 24
CELL_W = (BOX_W - 20) // 4


@dataclass(frozen=True)
class Place:
    x: float
    y: float
    h: float


def to_svg(data: dict[str, Any]) -> str:
    """The rule graph of ``data`` as one ``<svg id="rule-graph">`` element."""
    graph = layout(data)
    layers = graph.layers
    places = _places(layers)
    width = MARGIN * 2 + len(layers) * BOX_W + max(len(layers) - 1, 0) * COL_GAP
    height = MARGIN * 2 + max((p.y + p.h for p in places.values()), default=0) - MARGIN
    parts = [
        f'<svg id="rule-graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height:.0f}" viewBox="0 0 {width} {height:.0f}" role="img" '
        'aria-label="rule graph">',
        _defs(),
        *(_edge([places[v] for v in (dep, *via, rule)]) for dep, via, rule in graph.routes),
        *(_vertex(v, places[v.id]) for layer in layers for v in layer if not v.waypoint),
        "</svg>",
    ]
    return "\n".join(parts)


def _places(layers: list[list[Vertex]]) -> dict[str, Place]:
    """Top-left corners; each column centred against the tallest one."""
    heights = [sum(_height(v) for v in layer) + ROW_GAP * (len(layer) - 1) for layer in layers]
    tallest = max(heights, default=0)
    places: dict[str, Place] = {}
    for column, layer in enumerate(layers):
        x = MARGIN + column * (BOX_W + COL_GAP)
        y = MARGIN + (tallest - heights[column]) / 2
        for vertex in layer:
            places[vertex.id] = Place(x, y, _height(vertex))
            y += _height(vertex) + ROW_GAP
    return places


def _height(vertex: Vertex) -> int:
    if vertex.waypoint:
        return WAYPOINT_H
    if vertex.rule is None:
        return INPUT_H
    return BOX_H if "counts" in vertex.rule else DERIVED_H


def _defs() -> str:
    return (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#6b6b6b"/></marker></defs>'
    )


def _edge(path: list[Place]) -> str:
    """A curve from the first place's right side to the last one's left, straight through
    the waypoints between."""
    start = path[0]
    x, y = start.x + BOX_W, start.y + start.h / 2
    steps = [f"M{x:.1f},{y:.1f}"]
    for i, place in enumerate(path[1:], start=1):
        x2 = place.x - (2 if i == len(path) - 1 else 0)
        y2 = place.y + place.h / 2
        bend = max((x2 - x) / 2, 24)
        steps.append(f"C{x + bend:.1f},{y:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}")
        x, y = place.x + BOX_W, y2
        if i < len(path) - 1:
            steps.append(f"L{x:.1f},{y:.1f}")
    return f'<path class="edge" d="{" ".join(steps)}" marker-end="url(#arrow)"/>'


def _vertex(vertex: Vertex, place: Place) -> str:
    fill, stroke = COLOURS[vertex.state]
    name = html.escape(vertex.id)
    if vertex.rule is None:
        body = (
            f'<rect x="{place.x:.1f}" y="{place.y:.1f}" width="{BOX_W}" height="{INPUT_H}" '
            f'rx="{INPUT_H / 2:.0f}" fill="{fill}" stroke="{stroke}" stroke-dasharray="4 3"/>'
            + _text(place.x + BOX_W / 2, place.y + 19, _short(vertex.id), "name", "middle")
            + _text(place.x + BOX_W / 2, place.y + 34, "input", "kind", "middle")
        )
        return f'<g class="input-box" data-input="{name}"><title>{name}</title>{body}</g>'
    rule = vertex.rule
    body = (
        f'<rect x="{place.x:.1f}" y="{place.y:.1f}" width="{BOX_W}" height="{place.h:.0f}" rx="7" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
        + _text(place.x + 10, place.y + 19, _short(rule["id"]), "name")
        + _text(place.x + 10, place.y + 34, _kind_line(rule), "kind")
        + _counts(rule, place)
    )
    title = html.escape(f"{rule['id']} ({rule['kind']}) ← {', '.join(rule['deps']) or 'nothing'}")
    return (
        f'<g class="rule-box" data-rule="{name}" data-state="{vertex.state}" tabindex="0">'
        f"<title>{title}</title>{body}</g>"
    )


def _kind_line(rule: dict[str, Any]) -> str:
    failed_before = rule.get("failed_last_time")
    if failed_before:
        return f"{rule['kind']} · {failed_before} failed last time"
    return rule["kind"] if "counts" in rule else f"{rule['kind']} · no requests"


def _counts(rule: dict[str, Any], place: Place) -> str:
    counts = rule.get("counts")
    if counts is None:
        return ""
    cells = []
    for i, status in enumerate(STATUSES):
        x = place.x + 10 + i * CELL_W
        muted = "" if counts[status] else " muted"
        cells.append(_text(x, place.y + 52, status, "cell-label"))
        cells.append(_text(x, place.y + 69, str(counts[status]), f"cell-value s-{status}{muted}"))
    return "".join(cells) + _bar(counts, place)


def _bar(counts: dict[str, int], place: Place) -> str:
    total = sum(counts[s] for s in STATUSES)
    if not total:
        return ""
    x, width, parts = place.x + 10, BOX_W - 20, []
    for status in STATUSES:
        share = width * counts[status] / total
        if share:
            colour = COLOURS[status][1]
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{place.y + 77:.1f}" width="{share:.1f}" '
                f'height="4" fill="{colour}"/>'
            )
            x += share
    return "".join(parts)


def _text(x: float, y: float, text: str, cls: str, anchor: str = "start") -> str:
    return (
        f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">'
        f"{html.escape(text)}</text>"
    )


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_NAME else flat[: MAX_NAME - 1] + "…"
