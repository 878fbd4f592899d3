"""Write a config mapping as canonical .synth text (``convert`` and ``fmt``), or as YAML.

to_synth(data, comments, source_map) -> str    statements in a fixed order, comments kept
to_yaml(data, comments, source_map)   -> str    oumi's key order, comments before each top key

Whatever the sugar cannot say (an unknown key, a value of the wrong shape) is written
as a plain ``key value`` setting, so every mapping converts and reads back the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synthc.compiler.source import PathKey, SourceMap, load_yaml
from synthc.compiler.synth.blocks import (
    SP,
    Line,
    _need,
    _Raw,
    combine,
    data,
    documents,
    environment,
    examples,
    generate,
    is_name,
    model,
    multiturn,
    passthrough,
    quality,
    sample,
    samples,
    transform,
    value,
)
from synthc.compiler.synth.source import load_synth
from synthc.core.errors import ConfigError

Comment = tuple[int, int, str]


@dataclass
class _Slot:
    line: Line
    before: list[str] = field(default_factory=list)
    after: str = ""


def to_synth(
    data: dict[str, Any], comments: list[Comment] | None = None, source_map: SourceMap | None = None
) -> str:
    """``data`` as canonical .synth text, with ``comments`` (line, col, text) placed near
    the statement they preceded in the file ``source_map`` describes."""
    slots = [_Slot(line) for line in emit_statements(data)]
    header, rest = _split_header(comments or [], source_map)
    tail = _place(slots, rest, source_map)
    out = [*header, ""] if header and slots else list(header)
    for slot in slots:
        text = slot.line.text
        indent = " " * (len(text) - len(text.lstrip(" "))) if text else ""
        out += [indent + c for c in slot.before]
        out.append(text + (f"  {slot.after}" if slot.after else ""))
    if tail:
        out += ["", *tail]
    return "\n".join(out).rstrip("\n") + "\n"


def _split_header(
    comments: list[Comment], source_map: SourceMap | None
) -> tuple[list[str], list[Comment]]:
    """Comments above the first line of content stay at the top of the file."""
    first = _first_content_line(source_map)
    header = [c[2] for c in comments if c[0] < first]
    return header, [c for c in comments if c[0] >= first]


def _first_content_line(source_map: SourceMap | None) -> int:
    if source_map is None:
        return 1 << 30
    lines = [s.line for p, s in source_map.spans.items() if p and s.line > 0]
    return min(lines, default=1 << 30)


def _place(slots: list[_Slot], comments: list[Comment], source_map: SourceMap | None) -> list[str]:
    """Attach each comment to the line written from what it annotated: a comment after code
    trails the line written from the deepest value on its line; a comment on a line of its
    own goes before the line written from the next thing in the file. Return the rest."""
    if source_map is None:
        return [c[2] for c in comments]
    by_line: dict[int, list[PathKey]] = {}
    for path, span in source_map.spans.items():
        if path and span.line > 0:
            by_line.setdefault(span.line, []).append(path)
    left: list[str] = []
    for line, col, text in comments:
        if _code_before(source_map.text, line, col) and line in by_line:
            slot = _owner(slots, max(by_line[line], key=len))
            if slot is not None and not slot.after and "\n" not in slot.line.text:
                slot.after = text
                continue
            if slot is not None:
                slot.before.append(text)
                continue
        below = [n for n in by_line if n > line]
        slot = _owner(slots, min(by_line[min(below)], key=len)) if below else None
        if slot is None:
            left.append(text)
        else:
            slot.before.append(text)
    return left


def _owner(slots: list[_Slot], path: PathKey) -> _Slot | None:
    """The slot written from ``path``: the one tagged with its longest prefix, else the
    first tagged with a path inside it."""
    best: tuple[int, _Slot] | None = None
    for slot in slots:
        for tag in slot.line.paths:
            if path[: len(tag)] == tag and (best is None or len(tag) > best[0]):
                best = (len(tag), slot)
    if best is not None:
        return best[1]
    for slot in slots:
        if any(tag[: len(path)] == path for tag in slot.line.paths):
            return slot
    return None


def _code_before(text: str, line: int, col: int) -> bool:
    lines = text.splitlines()
    return 1 <= line <= len(lines) and lines[line - 1][: col - 1].strip() != ""


# --- statements -------------------------------------------------------------------------

Emitter = Callable[[Any, PathKey], list[Line]]
KINDS: tuple[tuple[str, Emitter], ...] = (
    ("input_examples", examples),
    ("input_data", data),
    ("input_documents", documents),
    ("sampled_attributes", sample),
    ("combination_sampling", combine),
    ("generated_attributes", generate),
    ("transformed_attributes", transform),
    ("multiturn_attributes", multiturn),
)


def emit_statements(data: dict[str, Any]) -> list[Line]:
    """Every statement of ``data`` in canonical order, blank lines between groups."""
    statements: list[tuple[str, list[Line]]] = []
    head = samples(data)
    used = {"num_samples", "output_path"} if head and "->" in head[0].text else set()
    used |= {"num_samples"} if head else set()
    statements += [("header", head)] if head else []
    tails = ("inference_config", "environment_config", "strategy_params")
    gates: Statements = []  # the quality block comes last
    for name, item in data.items():
        if name == "synthc":
            settings, gates = _synthc(item)
            statements += settings
        elif name not in used and name not in tails:
            statements.append(("header", [raw(name, item)]))
    for name, emit in (("inference_config", _model), ("environment_config", _envs)):
        if name in data:
            statements += _or_raw(name, data[name], emit)
    if "strategy_params" in data:
        statements += _or_raw("strategy_params", data["strategy_params"], _params)
    return _spaced(statements + gates)


def raw(name: str, item: Any) -> Line:
    if not is_name(name):
        raise ConfigError.at(f"cannot write the key {name!r} in .synth (it is not a plain name)")
    return Line(f"{name} {value(item, '')}", ((name,),))


Statements = list[tuple[str, list[Line]]]


def _or_raw(name: str, item: Any, emit: Callable[[Any], Statements]) -> Statements:
    try:
        return emit(item)
    except _Raw:
        return [("raw", [raw(name, item)])]


def _synthc(settings: Any) -> tuple[Statements, Statements]:
    """``synthc`` as header statements (its settings as they are) and its quality gates
    as a ``quality`` block."""
    whole: Statements = [("header", [raw("synthc", settings)])]
    if not isinstance(settings, dict) or "quality" not in settings:
        return whole, []
    rest = {k: v for k, v in settings.items() if k != "quality"}
    try:
        gates: Statements = [("quality", quality(settings["quality"]))]
    except _Raw:
        return whole, []
    return ([("header", [raw("synthc", rest)])] if rest else []), gates


def _model(ic: Any) -> Statements:
    lines = model(ic)
    return [("model", lines)] if lines else []


def _envs(config: Any) -> Statements:
    _need(isinstance(config, dict) and set(config) == {"environments"})
    envs = config["environments"]
    _need(isinstance(envs, list) and bool(envs))
    base = ("environment_config", "environments")
    return [("environment", environment(env, (*base, i))) for i, env in enumerate(envs)]


def _params(params: Any) -> Statements:
    _need(isinstance(params, dict))
    _need(set(params) <= {kind for kind, _ in KINDS} | {"passthrough_attributes"})
    out: Statements = []
    for kind, emit in KINDS:
        items = params.get(kind)
        if kind in params:
            _need(isinstance(items, list) and bool(items))
        for i, item in enumerate(items or []):
            out.append((kind, emit(item, (*SP, kind, i))))
    if "passthrough_attributes" in params:
        names = params["passthrough_attributes"]
        _need(isinstance(names, list) and bool(names))
        out.append(("passthrough", passthrough(names, (*SP, "passthrough_attributes"))))
    return out


def _spaced(statements: Statements) -> list[Line]:
    out: list[Line] = []
    previous: tuple[str, int] | None = None
    for kind, lines in statements:
        single = len(lines) == 1 and "\n" not in lines[0].text
        if previous is not None and not (
            (kind == previous[0] and single and previous[1] == 1)
            or {kind, previous[0]} <= {"header"}
        ):
            out.append(Line(""))
        out += lines
        previous = (kind, 1 if single else 0)
    return out


# --- YAML -----------------------------------------------------------------------------

_TOP_ORDER = ("strategy", "num_samples", "output_path", "seed")
_BOTTOM_ORDER = ("strategy_params", "environment_config", "inference_config")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value.rstrip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(
    data: dict[str, Any], comments: list[Comment] | None = None, source_map: SourceMap | None = None
) -> str:
    """``data`` as YAML in oumi's key order; comments go before the top-level key they were in."""
    keys = _yaml_order(data)
    header, rest = _split_header(comments or [], source_map)
    chunks = {key: [] for key in keys}  # type: dict[str, list[str]]
    starts = [(_line_of(source_map, key), key) for key in keys]
    for line, _, text in rest:
        owner = [key for start, key in sorted(starts) if start <= line]
        target = owner[-1] if owner else keys[0] if keys else None
        if target is not None:
            chunks[target].append(text)
    out = [*header, ""] if header else []
    for key in keys:
        out += chunks[key]
        dumped = yaml.dump(
            {key: data[key]}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
        )
        out.append(dumped.rstrip("\n"))
        if isinstance(data[key], (dict, list)):
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _yaml_order(data: dict[str, Any]) -> list[str]:
    top = [k for k in _TOP_ORDER if k in data]
    bottom = [k for k in _BOTTOM_ORDER if k in data]
    return top + [k for k in data if k not in top and k not in bottom] + bottom


def _line_of(source_map: SourceMap | None, key: str) -> int:
    span = source_map.spans.get((key,)) if source_map else None
    return span.line if span else 0


# --- comments in YAML text --------------------------------------------------------------

_HASH = re.compile(r"(?:^|(?<=\s))#")


def yaml_comments(text: str, source_map: SourceMap) -> list[Comment]:
    """Every ``#`` comment in a YAML text (not inside a string), as (line, col, text)."""
    inside = sorted(source_map.ranges.values())
    found: list[Comment] = []
    offset = 0
    for number, line in enumerate(text.split("\n"), start=1):
        for match in _HASH.finditer(line):
            at = offset + match.start()
            if not any(start <= at < end for start, end in inside):
                found.append((number, match.start() + 1, line[match.start() :].rstrip()))
                break
        offset += len(line) + 1
    return found


# --- entry points for the CLI -------------------------------------------------------------


def convert(path: Path) -> str:
    """The other form of the config at ``path``: a .synth file as YAML, YAML as .synth."""
    if path.suffix == ".synth":
        doc = load_synth(path)
        return to_yaml(doc.data, doc.comments, doc.source_map)
    yaml_doc = load_yaml(path)
    comments = yaml_comments(yaml_doc.text, yaml_doc.source_map)
    return to_synth(yaml_doc.data, comments, yaml_doc.source_map)


def formatted(path: Path) -> tuple[str, str]:
    """The .synth file at ``path`` as written and in canonical layout."""
    doc = load_synth(path)
    return doc.text, to_synth(doc.data, doc.comments, doc.source_map)
