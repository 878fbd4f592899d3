"""The tree the .synth transformer builds: values with where they were written, and the
statements' parts, assembled into one mapping plus a path -> span table.

parts (path, node) --assemble--> Node --flatten--> plain mapping, spans, string extents
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthc.compiler.source import MAX_DEPTH, PathKey
from synthc.core.errors import ConfigError, Span


@dataclass
class Node:
    """A value with where it was written; containers hold Nodes."""

    value: Any
    span: Span
    extent: tuple[int, int] | None = None


@dataclass(frozen=True)
class Part:
    """One statement's contribution: ``node`` at ``path``, appended to a list if ``append``."""

    path: PathKey
    node: Node
    append: bool = False


def block(items: list[tuple[str, Node]], span: Span, what: str = "this block") -> Node:
    out: dict[str, Node] = {}
    for key, node in items:
        if key in out:
            first = out[key].span
            raise ConfigError.at(f"{key!r} is set twice in {what} (first at {first})", node.span)
        out[key] = node
    return Node(out, span)


def assemble(parts: list[Part], span: Span) -> Node:
    """Put every part at its path; intermediate mappings are shared, anything else set once."""
    root = Node({}, span)
    shared = {id(root)}
    for part in parts:
        parent = root
        for step in part.path[:-1]:
            parent = _shared_child(parent, str(step), part.node.span, shared)
        key = str(part.path[-1])
        found = parent.value.get(key)
        if part.append and found is None:
            found = parent.value[key] = Node([], part.node.span)
            shared.add(id(found))
        if found is not None and not (part.append and id(found) in shared):
            raise ConfigError.at(f"{key!r} is set twice (first at {found.span})", part.node.span)
        if part.append:
            found.value.append(part.node)
        else:
            parent.value[key] = part.node
    return root


def _shared_child(parent: Node, key: str, span: Span, shared: set[int]) -> Node:
    found: Node | None = parent.value.get(key)
    if found is None:
        found = parent.value[key] = Node({}, span)
        shared.add(id(found))
    elif id(found) not in shared or not isinstance(found.value, dict):
        raise ConfigError.at(f"{key!r} is set twice (first at {found.span})", span)
    return found


def flatten(
    node: Node, path: PathKey, spans: dict[PathKey, Span], ranges: dict[PathKey, tuple[int, int]]
) -> Any:
    if len(path) > MAX_DEPTH:
        raise ConfigError.at(f"config nests deeper than {MAX_DEPTH} levels", node.span)
    spans.setdefault(path, node.span)
    value = node.value
    if isinstance(value, dict):
        return {k: flatten(v, (*path, k), spans, ranges) for k, v in value.items()}
    if isinstance(value, list):
        return [flatten(v, (*path, i), spans, ranges) for i, v in enumerate(value)]
    if node.extent is not None:
        ranges[path] = node.extent
    return value
