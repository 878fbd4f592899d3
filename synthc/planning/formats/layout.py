"""Lay out explain's rule graph: the JSON's rules in; vertices in layers by dependency depth out.

Shared by the Graphviz and HTML renderers. A vertex is a rule or an input
that is not one (a sampled attribute, an example field, a document); inputs
sit in layer 0 and each rule one layer right of its deepest dependency. Within
a layer, vertices are ordered by the mean slot of what they depend on, which
keeps most edges short and uncrossed on the small graphs explain draws.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

STATUSES = ("cached", "run", "blocked", "failed")

# state → (fill, stroke); "derived" rules make no request, "input" vertices are not rules.
COLOURS: dict[str, tuple[str, str]] = {
    "cached": ("#e3f0fb", "#1f6fb2"),
    "run": ("#dcf3dd", "#2e7d32"),
    "blocked": ("#fdf1cc", "#a87400"),
    "failed": ("#fbdde0", "#c62828"),
    "derived": ("#f3f3f3", "#8a8a8a"),
    "input": ("#ffffff", "#8a8a8a"),
}


@dataclass(frozen=True)
class Vertex:
    id: str
    rule: dict[str, Any] | None  # None: an input that is not a rule
    layer: int
    slot: int
    waypoint: bool = False  # where an edge crosses a layer; not drawn

    @property
    def state(self) -> str:
        if self.waypoint:
            return "waypoint"
        return "input" if self.rule is None else rule_state(self.rule)


def rule_state(rule: dict[str, Any]) -> str:
    """What the build will do for a rule, as one colour: the worst of its node statuses."""
    counts = rule.get("counts")
    if counts is None:
        return "derived"
    for status in ("failed", "run", "blocked"):
        if counts.get(status):
            return status
    return "cached"


def inputs(data: dict[str, Any]) -> list[str]:
    """Dependencies that are not rules, in order of first use."""
    rule_ids = {r["id"] for r in data["rules"]}
    seen: dict[str, None] = {}
    for rule in data["rules"]:
        for dep in rule["deps"]:
            if dep not in rule_ids:
                seen.setdefault(dep, None)
    return list(seen)


def edges(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(dependency, rule) for every dependency of every rule."""
    return [(dep, rule["id"]) for rule in data["rules"] for dep in rule["deps"]]


def depths(data: dict[str, Any]) -> dict[str, int]:
    """Each vertex's layer: 0 for inputs and rules without deps, else 1 + its deepest dep."""
    rules = {r["id"]: r for r in data["rules"]}
    depth: dict[str, int] = dict.fromkeys(inputs(data), 0)

    def visit(rule_id: str, path: frozenset[str]) -> int:
        if rule_id not in depth:
            deps = [d for d in rules[rule_id]["deps"] if d not in path]
            below = [visit(d, path | {rule_id}) if d in rules else 0 for d in deps]
            depth[rule_id] = 1 + max(below) if below else 0
        return depth[rule_id]

    for rule_id in rules:
        visit(rule_id, frozenset())
    return depth


@dataclass(frozen=True)
class Layout:
    layers: list[list[Vertex]]
    routes: list[tuple[str, list[str], str]]  # (dep, waypoint ids in the layers between, rule)


def layout(data: dict[str, Any]) -> Layout:
    """Vertices grouped by layer, each layer ordered to keep edges short.

    An edge that spans layers passes through a waypoint in each layer between
    (a vertex with no rule and ``waypoint`` set), which keeps a slot free for
    it so that it is never drawn across a box.
    """
    depth = depths(data)
    rules = {r["id"]: r for r in data["rules"]}
    order = [*inputs(data), *rules]
    preds: dict[str, list[str]] = {v: [] for v in order}
    routes = [_route(dep, rule, depth, preds) for dep, rule in edges(data)]
    for dep, waypoints, _ in routes:
        depth.update((w, depth[dep] + 1 + i) for i, w in enumerate(waypoints))
        order += waypoints
    passing = set(order) - set(rules) - set(inputs(data))
    slot: dict[str, int] = {}
    layers: list[list[Vertex]] = []
    for layer in range(max(depth.values(), default=-1) + 1):
        members = [v for v in order if depth[v] == layer]
        members.sort(key=lambda v: _barycentre(preds[v], slot, order.index(v)))
        slot.update((v, i) for i, v in enumerate(members))
        layers.append(
            [Vertex(v, rules.get(v), layer, i, v in passing) for i, v in enumerate(members)]
        )
    return Layout(layers, routes)


def _route(
    dep: str, rule: str, depth: dict[str, int], preds: dict[str, list[str]]
) -> tuple[str, list[str], str]:
    """Waypoints for the edge dep → rule, registered in ``preds`` in layer order."""
    between = range(depth[dep] + 1, depth[rule])
    waypoints = [f"\x00{dep}\x00{rule}\x00{layer}" for layer in between]  # NUL: no name clash
    previous = dep
    for waypoint in waypoints:
        preds[waypoint] = [previous]
        previous = waypoint
    preds[rule].append(previous)
    return dep, waypoints, rule


def _barycentre(preds: Iterable[str], slot: dict[str, int], fallback: int) -> tuple[float, int]:
    placed = [slot[p] for p in preds if p in slot]
    return (sum(placed) / len(placed) if placed else float(fallback), fallback)
