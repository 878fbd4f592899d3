"""Apply oumi-style command-line overrides to a config mapping before validation.

Takes the arguments after the config (``--num_samples 50``, ``--a.b=value``,
``--a[0].b value``, ``--a.0.b value``), or from Python a mapping of the same paths
to values, and returns a new mapping with each value set, plus spans that point
errors at the override that wrote the value.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from synthc.compiler.source import PathKey, SourceMap, dotted, plain_value
from synthc.core.errors import ConfigError, Span
from synthc.core.redact import MASK, looks_secret

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Override:
    """One ``--path value`` pair from the command line."""

    path: PathKey
    value: Any
    text: str  # as the user typed it, for error messages

    @property
    def span(self) -> Span:
        return Span(f"override {self.text}", 0, 0)


def parse_overrides(args: Sequence[str]) -> list[Override]:
    """Turn ``["--a.b", "1", "--c=x"]`` into overrides; values are read as YAML scalars."""
    out: list[Override] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError.at(
                f"expected an override like --num_samples 50, got {arg!r}",
                Span("command line", 0, 0),
            )
        name, eq, raw = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError.at(
                    f"override {arg} has no value (write {arg} VALUE or {arg}=VALUE)",
                    Span("command line", 0, 0),
                )
            i += 1
            raw = args[i]
        shown = MASK if looks_secret(name) else raw  # error messages quote ``text``
        text = f"--{name} {shown}" if not eq else f"--{name}={shown}"
        out.append(Override(_parse_path(name, text), _parse_value(raw, text), text))
        i += 1
    return out


def overrides_from(values: Mapping[str, Any]) -> list[Override]:
    """Overrides from a mapping of paths to values (``{"num_samples": 50,
    "strategy_params.generated_attributes[0].id": "q"}``), the values taken as they are."""
    out = []
    for name, value in values.items():
        if not isinstance(name, str):
            raise ConfigError.at(
                f"an override's path is text like 'num_samples', not {name!r}",
                Span("overrides", 0, 0),
            )
        text = f"{name}={MASK if looks_secret(name) else repr(value)}"
        out.append(Override(_parse_path(name.removeprefix("--"), text), value, text))
    return out


def _parse_path(name: str, text: str) -> PathKey:
    parts: list[str | int] = []
    pos = 0
    for match in _SEGMENT.finditer(name):
        key, index = match.groups()
        # a name follows a "." (or starts the path); an index follows directly
        if name[pos : match.start()] != ("." if parts and index is None else ""):
            break
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(int(key) if key.isdecimal() else key)  # "¹" is a digit, not a number
        pos = match.end()
    if pos != len(name) or not parts or isinstance(parts[0], int):
        raise ConfigError.at(f"cannot read the path {name!r}", Span(f"override {text}", 0, 0))
    return tuple(parts)


def _parse_value(raw: str, text: str) -> Any:
    """The value as YAML reads it (``50`` → int, ``true`` → bool), with the config's rules;
    text that is not valid YAML stays text."""
    if not raw.strip():
        return raw
    try:
        return plain_value(raw, f"override {text}")
    except yaml.YAMLError:
        return raw
    except ConfigError as exc:
        message = "; ".join(d.message for d in exc.diagnostics)
        raise ConfigError.at(message, Span(f"override {text}", 0, 0)) from None


def apply_overrides(
    data: dict[str, Any], source_map: SourceMap, overrides: Sequence[Override]
) -> tuple[dict[str, Any], SourceMap]:
    """Return a copy of ``data`` with every override set, and spans for what they wrote."""
    result = copy.deepcopy(data)
    spans = dict(source_map.spans)
    for override in overrides:
        _set(result, override)
        for end in range(1, len(override.path) + 1):
            prefix = override.path[:end]
            if end == len(override.path) or prefix not in spans:
                spans[prefix] = override.span
        _forget_below(spans, override.path)
    ranges = {k: v for k, v in source_map.ranges.items() if k in spans and spans[k].line}
    return result, SourceMap(source_map.file, spans, ranges, source_map.text)


def _forget_below(spans: dict[PathKey, Span], path: PathKey) -> None:
    for key in [k for k in spans if len(k) > len(path) and k[: len(path)] == path]:
        del spans[key]


def _set(root: dict[str, Any], override: Override) -> None:
    node: Any = root
    path = override.path
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, dict):
            key = str(part)
            if last:
                node[key] = override.value
            else:
                if node.get(key) is None:  # missing or empty (``key:``): create it
                    node[key] = [] if isinstance(path[depth + 1], int) else {}
                node = node[key]
        elif isinstance(node, list):
            index = _list_index(node, part, path[:depth], override)
            if last:
                node[index] = override.value
            else:
                node = node[index]
        else:
            where = dotted(path[:depth]) or "the config"
            raise ConfigError.at(
                f"cannot set {dotted(path)}: {where} is a plain value, not a mapping or list",
                override.span,
            )


def _list_index(node: list[Any], part: str | int, prefix: PathKey, override: Override) -> int:
    if not isinstance(part, int):
        raise ConfigError.at(
            f"{dotted(prefix)} is a list: index it with [0]..[{len(node) - 1}], not {part!r}",
            override.span,
        )
    if part >= len(node):
        valid = f"[0]..[{len(node) - 1}]" if node else "nothing (it is empty)"
        raise ConfigError.at(
            f"{dotted(prefix)}[{part}] does not exist: the list has {len(node)} "
            f"item(s), so valid indexes are {valid}",
            override.span,
        )
    return part
