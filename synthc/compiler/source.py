"""Read a YAML config into a plain mapping plus a table of where each value came from.

The mapping is what oumi would load; the :class:`SourceMap` maps every path in
it (``("strategy_params", "sampled_attributes", 0, "id")``) to the span of the
text that produced it, so later stages can point errors at the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from synthc.errors import ConfigError, Diagnostic, Span

PathKey = tuple[str | int, ...]

MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_DEPTH = 64


def dotted(path: PathKey) -> str:
    """``("a", 0, "b")`` as ``a[0].b``, the way a user writes an override."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


@dataclass
class SourceMap:
    """Where each path of a mapping was written."""

    file: str
    spans: dict[PathKey, Span] = field(default_factory=dict)
    ranges: dict[PathKey, tuple[int, int]] = field(default_factory=dict)  # scalar text extents
    text: str = ""

    def span(self, path: PathKey) -> Span | None:
        """The span of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.spans.get(tuple(path[:end]))
            if found is not None:
                return found
        return None

    def locate(self, path: PathKey, needle: str, occurrence: int = 0) -> Span | None:
        """The span of the ``occurrence``-th ``needle`` inside the scalar at ``path``."""
        extent = self.ranges.get(path)
        if extent is None:
            return self.span(path)
        start, end = extent
        at = start - 1
        for _ in range(occurrence + 1):
            at = self.text.find(needle, at + 1, end)
            if at == -1:
                return self.span(path)
        line = self.text.count("\n", 0, at) + 1
        col = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return Span(self.file, line, col)


@dataclass
class Document:
    """A parsed config: its plain data, where each part came from, and the text."""

    data: dict[str, Any]
    source_map: SourceMap
    text: str
    path: Path


def load_yaml(path: Path) -> Document:
    """Parse the YAML file at ``path`` into a :class:`Document`."""
    text = _read(path)
    name = str(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, name, text) from None
    except yaml.YAMLError as exc:
        raise ConfigError.at(f"cannot parse YAML: {exc}", Span(name, 0, 0)) from None
    if root is None:
        raise ConfigError.at("the config is empty", Span(name, 1, 1))
    builder = _Builder(name)
    data = builder.build(root, ())
    if not isinstance(data, dict):
        raise ConfigError([_top_level(root, name)], text)
    return Document(data, SourceMap(name, builder.spans, builder.ranges, text), text, path)


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError.at(
                f"config is {size} bytes; the limit is {MAX_CONFIG_BYTES}", Span(str(path), 0, 0)
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.at("no such config file", Span(str(path), 0, 0)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError.at(
            f"config is not UTF-8 text: {exc.reason}", Span(str(path), 0, 0)
        ) from None
    except OSError as exc:
        raise ConfigError.at(f"cannot read config: {exc.strerror}", Span(str(path), 0, 0)) from None


def _yaml_error(exc: yaml.MarkedYAMLError, name: str, text: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem:
        message = f"invalid YAML: {problem} ({exc.context})"
    span = Span(name, mark.line + 1, mark.column + 1) if mark else Span(name, 0, 0)
    return ConfigError.at(message, span).with_source(text)


def _top_level(root: Node, name: str) -> Diagnostic:
    span = Span(name, root.start_mark.line + 1, root.start_mark.column + 1)
    return Diagnostic("expected a mapping of config keys at the top level", span)


class _Builder:
    """Turns composed YAML nodes into plain Python values, recording spans."""

    def __init__(self, name: str):
        self.name = name
        self.spans: dict[PathKey, Span] = {}
        self.ranges: dict[PathKey, tuple[int, int]] = {}
        self.count = 0
        self.scalars = SafeConstructor()

    def span_of(self, node: Node) -> Span:
        return Span(self.name, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise ConfigError.at(
                f"config expands to more than {MAX_NODES} values (YAML aliases?)",
                self.span_of(node),
            )
        if len(path) > MAX_DEPTH:
            raise ConfigError.at(f"config nests deeper than {MAX_DEPTH} levels", self.span_of(node))
        self.spans.setdefault(path, self.span_of(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        self.ranges[path] = (node.start_mark.index, node.end_mark.index)
        return self._scalar(node)

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise ConfigError.at("mapping keys must be plain text", self.span_of(key_node))
            key = str(key)
            if key == "<<":
                raise ConfigError.at(
                    "YAML merge keys ('<<') are not supported", self.span_of(key_node)
                )
            if key in out:
                raise ConfigError.at(f"duplicate key {key!r}", self.span_of(key_node))
            self.spans[(*path, key)] = self.span_of(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _scalar(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            raise ConfigError.at("expected a plain value here", self.span_of(node))
        try:
            return self.scalars.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise ConfigError.at(f"invalid value: {exc.problem}", self.span_of(node)) from None
