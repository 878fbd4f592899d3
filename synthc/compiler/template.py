"""Parse oumi ``{placeholder}`` templates into pieces, and render them against a sample.

oumi formats templates with ``str.format_map``; synthc reads the same syntax
(``{id}``, ``{id.description}``, ``{id.parent.name}``, ``{src[0].field}``,
``{{``/``}}`` for literal braces, ``!r`` conversions and ``:spec`` format specs)
with its own scanner, so a placeholder can never reach Python attributes:
only the accessors listed here resolve.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_FIELD = re.compile(
    r"(?P<root>[^.\[\]!:{}]+)(?P<access>(?:\.[^.\[\]!:{}]+|\[[^\[\]{}]*\])*)"
    r"(?:!(?P<conv>[rsa]))?(?::(?P<spec>[^{}]*))?\Z"
)
_ACCESSOR = re.compile(r"\.([^.\[\]]+)|\[([^\]]*)\]")


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; ``offset`` is where, in the text."""

    def __init__(self, message: str, offset: int = 0, placeholder: str = ""):
        super().__init__(message)
        self.offset = offset
        self.placeholder = placeholder


@dataclass(frozen=True)
class Placeholder:
    """One ``{...}`` in a template."""

    root: str
    accessors: tuple[str | int, ...]
    conversion: str | None
    spec: str
    text: str  # as written, braces included
    offset: int  # where it starts in the template


@dataclass(frozen=True)
class Template:
    pieces: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.pieces if isinstance(p, Placeholder))

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.root for p in self.placeholders))


@dataclass(frozen=True)
class SampledValue:
    """A sampled attribute's drawn value: renders as its name, as in oumi."""

    attribute_id: str
    attribute_name: str
    attribute_description: str
    id: str
    name: str
    description: str

    def __str__(self) -> str:
        return self.name


_SAMPLED_ACCESSORS: dict[tuple[str | int, ...], str] = {
    (): "name",
    ("name",): "name",
    ("description",): "description",
    ("id",): "id",
    ("attribute_id",): "attribute_id",
    ("parent",): "attribute_name",
    ("parent", "name"): "attribute_name",
    ("parent", "description"): "attribute_description",
    ("parent", "id"): "attribute_id",
}
SAMPLED_ACCESSOR_NAMES = tuple(
    ".".join(map(str, k)) for k in _SAMPLED_ACCESSORS if k and k != ("attribute_id",)
)


def parse_template(text: str) -> Template:
    """Split ``text`` into literal strings and placeholders."""
    pieces: list[str | Placeholder] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "{}" and text.startswith(char * 2, i):
            literal.append(char)
            i += 2
        elif char == "}":
            raise TemplateError("single '}' in text: write '}}' for a literal brace", i)
        elif char == "{":
            end = text.find("}", i + 1)
            if end == -1 or "{" in text[i + 1 : end]:
                raise TemplateError("unclosed '{': write '{{' for a literal brace", i)
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append(_placeholder(text[i : end + 1], i))
            i = end + 1
        else:
            literal.append(char)
            i += 1
    if literal:
        pieces.append("".join(literal))
    return Template(tuple(pieces))


def _placeholder(text: str, offset: int) -> Placeholder:
    inner = text[1:-1]
    match = _FIELD.match(inner.strip())
    if not inner.strip() or match is None or any(q in match["root"] for q in "'\""):
        raise TemplateError(
            f"cannot read placeholder {text}: expected {{attribute}}, {{attribute.field}} "
            "or {source[0].field} (write {{ and }} for literal braces)",
            offset,
            text,
        )
    root = match["root"]
    if root.isdigit():
        raise TemplateError(
            f"placeholder {text} must name an attribute, not a position", offset, text
        )
    accessors = tuple(_accessor(a, b) for a, b in _ACCESSOR.findall(match["access"] or ""))
    spec = match["spec"] or ""
    widest = max((int(n) for n in re.findall(r"\d+", spec)), default=0)
    if widest > MAX_FORMAT_WIDTH:  # a width or precision: would pad a prompt to that size
        raise TemplateError(
            f"format spec in {text} asks for {widest:,} characters; at most "
            f"{MAX_FORMAT_WIDTH:,} are allowed",
            offset,
            text,
        )
    return Placeholder(root, accessors, match["conv"], spec, text, offset)


def _accessor(name: str, index: str) -> str | int:
    if name:
        return name
    stripped = index.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        return stripped[1:-1]  # a quoted key stays text, even "['0']"
    if re.fullmatch(r"-?\d+", stripped):
        return int(stripped)
    return stripped


def accessor_error(value: Any, accessors: tuple[str | int, ...]) -> str | None:
    """Why ``accessors`` cannot apply to values like ``value``, or None if they can."""
    try:
        _resolve(value, accessors)
    except TemplateError as exc:
        return str(exc)
    return None


def render(template: Template, values: Mapping[str, Any]) -> str:
    """Fill ``template`` from ``values`` (attribute id → value)."""
    out: list[str] = []
    for piece in template.pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        if piece.root not in values:
            raise TemplateError(f"no value for placeholder {piece.text}", piece.offset, piece.text)
        try:
            value = _resolve(values[piece.root], piece.accessors)
        except TemplateError as exc:
            raise TemplateError(f"{piece.text}: {exc}", piece.offset, piece.text) from None
        out.append(_finish(value, piece) if piece.conversion or piece.spec else _text(value))
    return "".join(out)


_FORMATTABLE = (str, int, float, bool)
MAX_FORMAT_WIDTH = 10_000  # width or precision in a placeholder's format spec


def _finish(value: Any, piece: Placeholder) -> str:
    """Apply ``!r``/``!s``/``!a`` then ``:spec`` as ``str.format`` does; a spec applies to
    the value itself when it is a plain number or text (``{score:.2f}``), else to its text."""
    converted: Any = value
    if piece.conversion == "r":
        converted = repr(value)
    elif piece.conversion == "a":
        converted = ascii(value)
    elif piece.conversion == "s" or not isinstance(value, _FORMATTABLE):
        converted = _text(value)
    try:
        return format(converted, piece.spec)
    except (ValueError, TypeError) as exc:
        raise TemplateError(
            f"bad format spec in {piece.text}: {exc}", piece.offset, piece.text
        ) from None


def _resolve(value: Any, accessors: tuple[str | int, ...]) -> Any:
    """The value ``accessors`` lead to: a sampled value's text, or a plain value."""
    if isinstance(value, SampledValue):
        field = _SAMPLED_ACCESSORS.get(accessors)
        if field is None:
            allowed = ", ".join(f".{n}" for n in SAMPLED_ACCESSOR_NAMES)
            raise TemplateError(f"a sampled attribute has no {_dotted(accessors)}; use {allowed}")
        return str(getattr(value, field))
    for i, step in enumerate(accessors):
        value = _step(value, step, accessors[:i])
    return value


def _step(value: Any, step: str | int, before: tuple[str | int, ...]) -> Any:
    if isinstance(value, list) and isinstance(step, int):
        if -len(value) <= step < len(value):
            return value[step]
        raise TemplateError(f"index [{step}] is out of range (there are {len(value)} items)")
    if isinstance(value, dict) and isinstance(step, str) and step in value:
        return value[step]
    if isinstance(value, dict):
        raise TemplateError(f"no field {step!r}; fields are {', '.join(map(str, value))}")
    kind = "text" if isinstance(value, str) else type(value).__name__
    raise TemplateError(f"{_dotted((*before, step))} cannot be read from {kind}")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    return str(value)


def _dotted(accessors: tuple[str | int, ...]) -> str:
    return "".join(f"[{a}]" if isinstance(a, int) else f".{a}" for a in accessors)
