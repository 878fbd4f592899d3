"""Validate a config mapping into a Spec: the typed config plus where each part was written.

Pydantic checks each part (:mod:`synthc.compiler.spec`); this module turns its
errors into diagnostics with spans and did-you-mean hints, and checks what
spans the whole config (attribute ids unique across every kind). All problems
are reported at once.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from synthc.compiler.source import PathKey, SourceMap, dotted
from synthc.compiler.spec import SynthesisConfig
from synthc.errors import ConfigError, Diagnostic, Span


@dataclass(frozen=True)
class Spec:
    """A validated config and the source it came from."""

    config: SynthesisConfig
    source_map: SourceMap
    path: Path
    text: str

    def span(self, *path: str | int) -> Span | None:
        return self.source_map.span(path)

    def error(self, message: str, *path: str | int) -> ConfigError:
        return ConfigError.at(message, self.span(*path)).with_source(self.text)


def validate(data: dict[str, Any], source_map: SourceMap, text: str, path: Path) -> Spec:
    """Check ``data`` against the oumi schema; raise one ConfigError listing every problem."""
    try:
        config = SynthesisConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [_diagnostic(err, data, source_map) for err in exc.errors()]
        raise ConfigError(_in_order(problems), text) from None
    problems = list(_duplicate_ids(config, source_map))
    if problems:
        raise ConfigError(problems, text)
    return Spec(config, source_map, path, text)


def _in_order(items: list[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats and sort by position, command-line overrides first."""
    unique = list(dict.fromkeys(items))
    return sorted(unique, key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))


def _diagnostic(err: Any, data: dict[str, Any], source_map: SourceMap) -> Diagnostic:
    path = _data_path(tuple(err["loc"]), data)
    kind = err["type"]
    if kind == "extra_forbidden":
        message = f"unknown key {path[-1]!r}{_did_you_mean(path)}"
    elif kind == "missing":
        where = f" in {dotted(path[:-1])}" if len(path) > 1 else ""
        message = f"missing required key {path[-1]!r}{where}"
    elif kind == "enum":
        expected = str(err["ctx"]["expected"]).replace("'", "")
        got = err["input"]
        close = difflib.get_close_matches(str(got).lower(), expected.lower().split(", "), n=1)
        hint = f" (did you mean {close[0].upper()!r}?)" if close else ""
        message = f"{dotted(path)}: {got!r} is not one of {expected}{hint}"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        if path:
            message = f"{dotted(path)}: {message}"
    return Diagnostic(message, source_map.span(path))


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


def attribute_ids(config: SynthesisConfig) -> Iterator[tuple[str, PathKey]]:
    """Every id a template can name, with the path that defines it (oumi's rules)."""
    params = config.strategy_params
    base: PathKey = ("strategy_params",)
    for i, data in enumerate(params.input_data or ()):
        for old, new in (data.attribute_map or {}).items():
            yield new, (*base, "input_data", i, "attribute_map", old)
        if data.num_shots and data.num_shots > 1 and data.id:
            yield data.id, (*base, "input_data", i, "id")
    for i, doc in enumerate(params.input_documents or ()):
        seg = doc.segmentation_params
        yield (
            (seg.id, (*base, "input_documents", i, "segmentation_params", "id"))
            if seg
            else (
                doc.id,
                (*base, "input_documents", i, "id"),
            )
        )
    for i, source in enumerate(params.input_examples or ()):
        if source.num_shots and source.num_shots > 1 and source.id:
            yield source.id, (*base, "input_examples", i, "id")
        else:
            for key in source.examples[0]:
                yield key, (*base, "input_examples", i, "examples", 0, key)
    for kind in (
        "sampled_attributes",
        "generated_attributes",
        "multiturn_attributes",
        "transformed_attributes",
    ):
        for i, attr in enumerate(getattr(params, kind) or ()):
            yield attr.id, (*base, kind, i, "id")
            post = getattr(attr, "postprocessing_params", None)
            if post is not None:
                yield post.id, (*base, kind, i, "postprocessing_params", "id")


def _duplicate_ids(config: SynthesisConfig, source_map: SourceMap) -> Iterator[Diagnostic]:
    reserved = {"target_turns", "current_turn"} | {
        f"{m.id}_plan" for m in config.strategy_params.multiturn_attributes or ()
    }
    seen: dict[str, PathKey] = {}
    for name, path in attribute_ids(config):
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
