"""The text inside .synth string literals: ``"..."`` with JSON escapes, ``\"\"\"...\"\"\"`` raw.

decode_string(literal)  -> str    a one-line string, escapes decoded
decode_long(literal)    -> str    a triple-quoted string, indentation stripped

A triple-quoted string keeps its text raw (no escapes). When the closing quotes sit
on their own line, their indentation is removed from every line and the text ends
with a newline (like YAML's ``|``); when they end the last line of text, the common
indentation of the lines is removed and there is no final newline. Both raise
:class:`TextError` with the offset (into the literal) of what is wrong.
"""

from __future__ import annotations

import json
import re

_LONG = re.compile(r'"""(?:[^"]|"(?!""))*"""')  # the grammar's LONG_STRING


class TextError(ValueError):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message = message
        self.offset = offset


def decode_string(literal: str) -> str:
    try:
        value = json.loads(literal, strict=False)
    except json.JSONDecodeError as exc:
        raise TextError(f"invalid escape in string: {exc.msg}", exc.pos) from None
    if not isinstance(value, str):  # pragma: no cover - the grammar only passes "..."
        raise TextError("expected a string", 0)
    return value


def decode_long(literal: str) -> str:
    raw = literal[3:-3]
    start = 3
    inline = not raw.startswith("\n")
    if not inline:
        raw, start = raw[1:], 4
    lines = raw.split("\n")
    offsets = _offsets(lines, start)
    first = lines.pop(0) if inline else None
    if inline:
        offsets.pop(0)
    if first is not None and not lines:
        return first
    own_line = bool(lines) and lines[-1].strip(" ") == "" and "\t" not in lines[-1]
    if own_line:
        indent = lines.pop()
        offsets.pop()
    else:
        indent = _common_indent(lines)
    body = [_dedent(line, indent, at) for line, at in zip(lines, offsets, strict=True)]
    out = ([first] if first is not None else []) + body
    if not out:
        return ""
    return "\n".join(out) + ("\n" if own_line else "")


def _offsets(lines: list[str], start: int) -> list[int]:
    offsets = []
    at = start
    for line in lines:
        offsets.append(at)
        at += len(line) + 1
    return offsets


def _common_indent(lines: list[str]) -> str:
    widths = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
    return " " * min(widths, default=0)


def _dedent(line: str, indent: str, at: int) -> str:
    lead = line[: len(line) - len(line.lstrip(" \t"))]
    if "\t" in lead:
        raise TextError(
            'a tab in the indentation of a """ string; indent with spaces', at + lead.index("\t")
        )
    if not line.strip():
        return line[len(indent) :] if len(line) > len(indent) else ""
    if not line.startswith(indent):
        raise TextError(
            f'this line is indented less than the closing """ ({len(indent)} spaces)',
            at + len(lead),
        )
    return line[len(indent) :]


SHORT = 60  # characters of JSON under which a multi-line text stays on one line


def encode(value: str, indent: str) -> str:
    """``value`` as a literal: triple-quoted (lines at ``indent``) when it has several lines
    and reads back the same, else one-line JSON (so is a short text without a final
    newline, such as a regex: ``"[^\\n?]+"`` reads better than a block)."""
    flat = json.dumps(value, ensure_ascii=False)
    short = not value.endswith("\n") and len(flat) <= SHORT
    if "\n" not in value.rstrip("\n") or '"""' in value or "\r" in value or short:
        return flat
    own_line = value.endswith("\n")
    lines = (value[:-1] if own_line else value).split("\n")
    inner = indent + "  "
    body = "\n".join(inner + line if line else "" for line in lines)
    literal = f'"""\n{body}' + (f'\n{inner}"""' if own_line else '"""')
    try:
        if _LONG.fullmatch(literal) and decode_long(literal) == value:
            return literal
    except TextError:
        pass
    return flat
