"""Read a YAML config into a plain mapping plus a table of where each value came from.

The mapping is what oumi would load; the :class:`SourceMap` maps every path in
it (``("strategy_params", "sampled_attributes", 0, "id")``) to the span of the
text that produced it, so later stages can point errors at the source.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import CollectionEndEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from synthc.core.errors import ConfigError, Diagnostic, Span

PathKey = tuple[str | int, ...]

MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_ALIAS_EXPANSION = 100_000  # values that YAML aliases may add beyond what is written
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with OmegaConf's scalar rules, which is what oumi reads with.

    Dates stay text (``2024-01-01`` is a string, not a ``date``) and ``1e-3`` is a
    float, as in ``omegaconf._utils.get_yaml_loader``.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}


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
    return parse_yaml(_read(path), str(path), path)


def parse_yaml(text: str, name: str, path: Path) -> Document:
    """Parse YAML ``text`` into a :class:`Document` whose errors name ``name`` and whose
    relative paths resolve beside ``path``."""
    try:
        root = compose(text, name)
        builder = _Builder(name)
        data = None if root is None else builder.build(root, ())
        if root is None or data is None:  # no document, or only ``---`` or ``null``
            raise ConfigError.at("the config is empty", Span(name, 1, 1))
        if not isinstance(data, dict):
            raise ConfigError([_top_level(root, name)])
    except ConfigError as exc:
        raise exc.with_source(text) from None
    return Document(data, SourceMap(name, builder.spans, builder.ranges, text), text, path)


def compose(text: str, name: str) -> Node | None:
    """YAML text into one node tree (None if empty), refusing what could blow up memory."""
    try:
        return _compose(text, name)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, name) from None
    except yaml.YAMLError as exc:
        raise ConfigError.at(f"cannot parse YAML: {exc}", Span(name, 0, 0)) from None


def plain_value(text: str, name: str) -> Any:
    """One YAML value (as an override gives it) as plain data, with the config's rules.

    Raises ``yaml.YAMLError`` if ``text`` is not YAML, and ConfigError if it holds
    something a config may not (a NaN, a merge key, a ``!!binary`` tag).
    """
    root = _compose(text, name)
    return None if root is None else _Builder(name).build(root, ())


def _compose(text: str, name: str) -> Node | None:
    _check_depth(text, name)
    root = yaml.compose(text, Loader=_Loader)
    if root is not None:
        _AliasCheck(name).check(root)
    return root


def _check_depth(text: str, name: str) -> None:
    """Refuse deep nesting before composing, which would recurse once per level."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                span = Span(name, mark.line + 1, mark.column + 1) if mark else Span(name, 0, 0)
                raise ConfigError.at(f"config nests deeper than {MAX_DEPTH} levels", span)
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError.at(
                f"config is {size} bytes; the limit is {MAX_CONFIG_BYTES}", Span(str(path), 0, 0)
            )
        return path.read_text(encoding="utf-8-sig")  # a leading BOM is not part of the text
    except FileNotFoundError:
        raise ConfigError.at("no such config file", Span(str(path), 0, 0)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError.at(
            f"config is not UTF-8 text: {exc.reason}", Span(str(path), 0, 0)
        ) from None
    except OSError as exc:
        raise ConfigError.at(f"cannot read config: {exc.strerror}", Span(str(path), 0, 0)) from None


def _yaml_error(exc: yaml.MarkedYAMLError, name: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    if exc.problem and "end of stream" in exc.problem and exc.context_mark:
        mark = exc.context_mark  # point at what was left open, not at the end of the file
    problem = exc.problem or exc.context or "invalid YAML"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem:
        if exc.context.startswith("while "):
            message = f"invalid YAML: {problem} ({exc.context})"
        else:  # the composer's "expected a single document", "but found another document"
            message = f"invalid YAML: {exc.context}, {problem}"
    if exc.context == "while scanning a quoted scalar" and "end of stream" in (exc.problem or ""):
        message = "invalid YAML: this quoted string is never closed (the file ends first)"
    span = Span(name, mark.line + 1, mark.column + 1) if mark else Span(name, 0, 0)
    return ConfigError.at(message, span)


class _AliasCheck:
    """Counts what the node tree expands to, sharing work between aliases of one anchor,
    so a billion-laughs file is refused in time proportional to its text."""

    def __init__(self, name: str):
        self.name = name
        self.sizes: dict[int, int] = {}
        self.active: set[int] = set()

    def check(self, root: Node) -> None:
        total = self.size(root, 0)
        if total - len(self.sizes) > MAX_ALIAS_EXPANSION:
            raise ConfigError.at(
                f"YAML aliases expand the config to {total} values, {total - len(self.sizes)} "
                f"more than are written; the limit is {MAX_ALIAS_EXPANSION}",
                _span(self.name, root),
            )

    def size(self, node: Node, depth: int) -> int:
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in self.active:
            raise ConfigError.at(
                "a YAML alias refers to a value that contains it", _span(self.name, node)
            )
        if depth > MAX_DEPTH:
            raise ConfigError.at(
                f"config nests deeper than {MAX_DEPTH} levels", _span(self.name, node)
            )
        self.active.add(id(node))
        total = 1
        if isinstance(node, MappingNode):
            total += sum(self.size(k, depth + 1) + self.size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, SequenceNode):
            total += sum(self.size(item, depth + 1) for item in node.value)
        self.active.discard(id(node))
        self.sizes[id(node)] = total
        if total > MAX_NODES:
            raise ConfigError.at(
                f"config expands to more than {MAX_NODES} values (YAML aliases?)",
                _span(self.name, node),
            )
        return total


def _span(name: str, node: Node) -> Span:
    return Span(name, node.start_mark.line + 1, node.start_mark.column + 1)


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
        return _span(self.name, node)

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
        if isinstance(node, (MappingNode, SequenceNode)) and node.tag not in _PLAIN_TAGS:
            raise ConfigError.at(f"unsupported YAML tag {node.tag!r}", self.span_of(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        self.ranges[path] = (node.start_mark.index, node.end_mark.index)
        return self._scalar(node)

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                raise ConfigError.at(
                    "YAML merge keys ('<<') are not supported; write the keys out",
                    self.span_of(key_node),
                )
            if not isinstance(key_node, ScalarNode):
                raise ConfigError.at("mapping keys must be plain text", self.span_of(key_node))
            key = self._scalar(key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise ConfigError.at("mapping keys must be plain text", self.span_of(key_node))
            key = str(key)
            if key in out:
                raise ConfigError.at(f"duplicate key {key!r}", self.span_of(key_node))
            self.spans[(*path, key)] = self.span_of(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _scalar(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            raise ConfigError.at("expected a plain value here", self.span_of(node))
        try:
            value = self.scalars.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise ConfigError.at(f"invalid value: {exc.problem}", self.span_of(node)) from None
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ConfigError.at(
                f"unsupported YAML value of type {type(value).__name__} (tag {node.tag}); "
                "write it as text",
                self.span_of(node),
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError.at(
                f"{node.value!r} is not a finite number; NaN and infinity are not supported",
                self.span_of(node),
            )
        return value


def include_environments(data: dict[str, Any], source_map: SourceMap, config: Path) -> None:
    """Read ``environment_config_path`` (relative to the config) into ``environment_config``.

    The file holds what ``environment_config`` would (``environments: [...]``); its
    spans keep pointing into it, so an error names the environment file's line.
    """
    name = data.get("environment_config_path")
    if not isinstance(name, str) or "environment_config" in data:
        return  # absent, mistyped or doubled: validation says so
    path = config.parent / name
    if not path.is_file():
        raise ConfigError.at(
            f"environment_config_path: no such file {str(path)!r}",
            source_map.span(("environment_config_path",)),
        ).with_source(source_map.text, source_map.file)
    document = load_yaml(path)
    data["environment_config"] = document.data
    del data["environment_config_path"]
    for key, span in document.source_map.spans.items():
        source_map.spans[("environment_config", *key)] = span
