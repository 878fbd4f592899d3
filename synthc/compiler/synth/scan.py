"""Find what a .synth text leaves open: a string, a triple-quoted string, a brace or bracket.

The parser only notices at the end of the file; this scan points at the opening.
"""

from __future__ import annotations

Position = tuple[int, int]
_CLOSERS = {"{": "}", "[": "]"}


def unclosed(text: str) -> tuple[Position, str] | None:
    """The position of the innermost opener left unclosed and a message, or None."""
    stack: list[tuple[int, str]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "#":
            i = _line_end(text, i)
        elif text.startswith('"""', i):
            end = text.find('"""', i + 3)
            if end == -1:
                return _at(text, i), 'this """ string is never closed'
            i = end + 3
        elif char == '"':
            closed = _string_end(text, i)
            if closed is None:
                return _at(text, i), (
                    'this string is never closed (a "..." string ends on its line; '
                    'use """...""" for text over several lines)'
                )
            i = closed
        else:
            if char in _CLOSERS:
                stack.append((i, char))
            elif char in "}]" and stack and _CLOSERS[stack[-1][1]] == char:
                stack.pop()
            i += 1
    if stack:
        at, char = stack[-1]
        return _at(text, at), f"this '{char}' is never closed (expected '{_CLOSERS[char]}')"
    return None


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
