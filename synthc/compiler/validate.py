"""Validate a config mapping into a Spec: the typed config plus where each part was written.

Pydantic checks each part (:mod:`synthc.compiler.spec`); this module turns its
errors into diagnostics with spans and did-you-mean hints, and checks what
spans the whole config (attribute ids unique across every kind). All problems
are reported at once.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from synthc.compiler.source import PathKey, SourceMap, dotted
from synthc.compiler.spec import SynthesisConfig
from synthc.core.errors import ConfigError, Diagnostic, Span


@dataclass(frozen=True)
class Spec:
    """A validated config and the source it came from."""

    config: SynthesisConfig
    source_map: SourceMap
    path: Path
    text: str

    @property
    def name(self) -> str:
        """What errors call the config: its file, or ``<config>`` for one given as text."""
        return self.source_map.file

    def span(self, *path: str | int) -> Span | None:
        return self.source_map.span(path)

    def error(self, message: str, *path: str | int) -> ConfigError:
        return ConfigError.at(message, self.span(*path)).with_source(self.text, self.name)


def validate(data: dict[str, Any], source_map: SourceMap, text: str, path: Path) -> Spec:
    """Check ``data`` against the oumi schema; raise one ConfigError listing every problem."""
    problems = list(_duplicate_ids(data, source_map))
    try:
        config = SynthesisConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = _without_misspelled_missing(exc.errors(), data)
        problems += [_diagnostic(err, data, source_map) for err in errors]
    if problems:
        raise ConfigError(_in_order(problems), text) from None
    return Spec(config, source_map, path, text)


def _without_misspelled_missing(errors: list[Any], data: dict[str, Any]) -> list[Any]:
    """Drop "missing key X" where an unknown key beside it is a misspelling of X:
    the did-you-mean on the unknown key already says it."""
    suggested: set[tuple[PathKey, str]] = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            path = _data_path(tuple(err["loc"]), data)
            close = difflib.get_close_matches(str(path[-1]), _fields_at(path[:-1]), n=1, cutoff=0.6)
            suggested.update((path[:-1], c) for c in close)
    return [
        err
        for err in errors
        if err["type"] != "missing"
        or (_data_path(tuple(err["loc"]), data)[:-1], str(err["loc"][-1])) not in suggested
    ]


def _in_order(items: list[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats and sort by position, command-line overrides first."""
    unique = list(dict.fromkeys(items))
    return sorted(unique, key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))


def _diagnostic(err: Any, data: dict[str, Any], source_map: SourceMap) -> Diagnostic:
    path = _data_path(tuple(err["loc"]), data)
    kind = err["type"]
    where = path
    if kind == "extra_forbidden":
        message = f"unknown key {path[-1]!r}{_did_you_mean(path)}"
    elif kind == "missing":
        inside = f" in {dotted(path[:-1])}" if len(path) > 1 else ""
        message = f"missing required key {path[-1]!r}{inside}"
    elif kind == "enum":
        expected = re.findall(r"'([^']*)'", str(err["ctx"]["expected"]))
        got = err["input"]
        listing = ", ".join(expected[:-1]) + f" or {expected[-1]}" if expected else ""
        lowered = {e.lower(): e for e in expected}
        close = difflib.get_close_matches(str(got).lower(), list(lowered), n=1)
        hint = f" (did you mean {lowered[close[0]]!r}?)" if close else ""
        message = f"{dotted(path)}: {got!r} is not one of {listing}{hint}"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        where = _focus(path, message, data)
        if path:
            message = f"{dotted(path)}: {message}"
    return Diagnostic(message, source_map.span(where))


def _focus(path: PathKey, message: str, data: Any) -> PathKey:
    """A check on a whole model names the field it is about first ("retry_backoff_max must
    be ...", "possible_values[2].id ..."): point the span there when that field exists."""
    node = data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else _item(node, part)
    focused = path
    for name, index in _FIELD_PATH.findall(message.split(" ", 1)[0]):
        step: str | int = int(index) if index else name
        child = node.get(step) if isinstance(node, dict) else _item(node, step)
        if child is None:
            break
        focused, node = (*focused, step), child
    return focused


_FIELD_PATH = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _item(node: Any, part: str | int) -> Any:
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _data_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """Drop pydantic's union tags from ``loc`` so it names a path in the data."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and isinstance(part, str) and (part in node or last):
            path.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            path.append(part)
            node = node[part] if part < len(node) else None
    return tuple(path)


def _did_you_mean(path: PathKey) -> str:
    fields = _fields_at(path[:-1])
    if not fields:
        return ""
    close = difflib.get_close_matches(str(path[-1]), fields, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; expected one of: {', '.join(fields)}"


def _fields_at(path: PathKey) -> list[str]:
    model: Any = SynthesisConfig
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            return []
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_in(field.annotation)
    if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``X | None``, ``list[X]`` and the like, if any."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def attribute_ids(data: dict[str, Any]) -> Iterator[tuple[str, PathKey]]:
    """Every id a template can name, with the path that defines it (oumi's rules).

    Reads the raw mapping, skipping parts of the wrong shape, so duplicate ids are
    reported together with every other problem rather than after they are fixed.
    """
    params = data.get("strategy_params")
    if isinstance(params, dict):
        yield from _input_ids(params)
        yield from _attribute_ids(params)


def _input_ids(params: dict[str, Any]) -> Iterator[tuple[str, PathKey]]:
    base: PathKey = ("strategy_params",)
    for i, source in _items(params, "input_data"):
        mapping = _mapping(source.get("attribute_map"))
        for old, new in mapping.items():
            yield from _named(new, (*base, "input_data", i, "attribute_map", old))
        if _shots(source):
            yield from _named(source.get("id"), (*base, "input_data", i, "id"))
    for i, doc in _items(params, "input_documents"):
        seg = doc.get("segmentation_params")
        if isinstance(seg, dict):
            path: PathKey = (*base, "input_documents", i, "segmentation_params", "id")
            yield from _named(seg.get("id"), path)
        else:
            yield from _named(doc.get("id"), (*base, "input_documents", i, "id"))
    for i, source in _items(params, "input_examples"):
        examples = source.get("examples")
        if _shots(source):
            yield from _named(source.get("id"), (*base, "input_examples", i, "id"))
        elif isinstance(examples, list) and examples and isinstance(examples[0], dict):
            for key in examples[0]:
                yield from _named(key, (*base, "input_examples", i, "examples", 0, key))


def _attribute_ids(params: dict[str, Any]) -> Iterator[tuple[str, PathKey]]:
    base: PathKey = ("strategy_params",)
    for kind in _ATTRIBUTE_KINDS:
        for i, attr in _items(params, kind):
            yield from _named(attr.get("id"), (*base, kind, i, "id"))
            post = attr.get("postprocessing_params")
            if isinstance(post, dict) and post.get("id") != attr.get("id"):  # spec reports that
                yield from _named(post.get("id"), (*base, kind, i, "postprocessing_params", "id"))


_ATTRIBUTE_KINDS = (
    "sampled_attributes",
    "generated_attributes",
    "multiturn_attributes",
    "transformed_attributes",
)


def _items(params: dict[str, Any], kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
    items = params.get(kind)
    for i, item in enumerate(items if isinstance(items, list) else ()):
        if isinstance(item, dict):
            yield i, item


def _shots(source: dict[str, Any]) -> bool:
    shots = source.get("num_shots")
    return isinstance(shots, int) and shots > 1


def _named(name: Any, path: PathKey) -> Iterator[tuple[str, PathKey]]:
    if isinstance(name, str) and name:
        yield name, path


def _duplicate_ids(data: dict[str, Any], source_map: SourceMap) -> Iterator[Diagnostic]:
    reserved = {"target_turns", "current_turn"} | {
        f"{name}_plan"
        for _, attr in _items(_mapping(data.get("strategy_params")), "multiturn_attributes")
        for name, _ in _named(attr.get("id"), ())
    }
    seen: dict[str, PathKey] = {}
    for name, path in attribute_ids(data):
        if name in reserved:
            yield Diagnostic(
                f"{name!r} is reserved for multiturn synthesis; pick another id",
                source_map.span(path),
            )
        elif name in seen:
            first = source_map.span(seen[name])
            where = f" (first defined at {first})" if first else ""
            yield Diagnostic(f"duplicate attribute id {name!r}{where}", source_map.span(path))
        else:
            seen[name] = path


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
