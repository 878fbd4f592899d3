"""Find what a .synth text leaves open (a string, a brace or bracket) or nests too deep.

The parser only notices an unclosed opener at the end of the file; this scan
points at the opening. Nesting is checked before parsing, which recurses per level.
"""

from __future__ import annotations

from collections.abc import Iterator

Position = tuple[int, int]
_CLOSERS = {"{": "}", "[": "]"}


def unclosed(text: str) -> tuple[Position, str] | None:
    """The position of the innermost opener left unclosed and a message, or None."""
    stack: list[tuple[int, str]] = []
    for at, mark in _marks(text):
        if mark == '"""':
            return _at(text, at), 'this """ string is never closed'
        if mark == '"':
            return _at(text, at), (
                'this string is never closed (a "..." string ends on its line; '
                'use """...""" for text over several lines)'
            )
        if mark in _CLOSERS:
            stack.append((at, mark))
        elif stack and _CLOSERS[stack[-1][1]] == mark:
            stack.pop()
    if stack:
        at, char = stack[-1]
        return _at(text, at), f"this '{char}' is never closed (expected '{_CLOSERS[char]}')"
    return None


def too_deep(text: str, limit: int) -> Position | None:
    """Where ``text``'s braces and brackets first nest deeper than ``limit``, or None (the
    parser and its transformer recurse once per level: this is checked before them)."""
    depth = 0
    for at, mark in _marks(text):
        if mark in _CLOSERS:
            depth += 1
            if depth > limit:
                return _at(text, at)
        elif mark in "}]":
            depth = max(0, depth - 1)
    return None


def _marks(text: str) -> Iterator[tuple[int, str]]:
    """The braces and brackets outside comments and strings, in order, with their index;
    a string never closed is the last mark (``"`` or ``\"\"\"``)."""
    i = 0
    while i < len(text):
        char = text[i]
        if char == "#":
            i = _line_end(text, i)
        elif text.startswith('"""', i):
            end = text.find('"""', i + 3)
            if end == -1:
                yield i, '"""'
                return
            i = end + 3
        elif char == '"':
            closed = _string_end(text, i)
            if closed is None:
                yield i, '"'
                return
            i = closed
        else:
            if char in "{}[]":
                yield i, char
            i += 1


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end == -1 else end


def _string_end(text: str, i: int) -> int | None:
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
        elif text[j] == '"':
            return j + 1
        elif text[j] == "\n":
            return None
        else:
            j += 1
    return None


def _at(text: str, index: int) -> Position:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1
