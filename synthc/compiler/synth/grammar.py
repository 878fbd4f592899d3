"""Parse .synth text into a lark tree; a syntax error becomes a ConfigError in words.

parse(text, name) -> (Tree, comments)   comments: (line, column, text) of every ``#``

The grammar (synth.lark, package data) is loaded once. Errors point at the
offending token and say what was expected ("expected a role — system, user,
assistant, tool —, 'postprocess' or '}'"); an unclosed brace or string points
at where it was opened.
"""

from __future__ import annotations

import contextvars
import difflib
import functools
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from synthc.compiler.source import MAX_DEPTH
from synthc.compiler.synth.scan import too_deep, unclosed
from synthc.core.errors import ConfigError, Span

Comment = tuple[int, int, str]
_comments: contextvars.ContextVar[list[Comment]] = contextvars.ContextVar("synth_comments")

ROLES = ("SYSTEM", "USER", "ASSISTANT", "TOOL")
VALUES = ("STRING", "LONG_STRING", "NUMBER", "NAME", "TRUE", "FALSE", "NULL", "LBRACE", "LSQB")
STATEMENTS = (
    "SAMPLES", "MODEL", "EXAMPLES", "DATA", "DOCUMENTS", "SAMPLE", "COMBINE", "GENERATE",
    "_STRING_KW", "LIST", "DICT", "CHAT", "MULTITURN", "ENVIRONMENT", "PASSTHROUGH", "QUALITY",
)  # fmt: skip
_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": "a string",
    "NUMBER": "a number",
    "$END": "the end of the file",
}


def _on_comment(token: Token) -> Token:
    found = _comments.get(None)
    if found is not None:
        found.append((token.line or 0, token.column or 0, str(token)))
    return token


@functools.cache
def parser() -> Lark:
    """The .synth parser, built once from the packaged grammar."""
    return Lark.open_from_package(
        "synthc.compiler.synth",
        "synth.lark",
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        lexer_callbacks={"COMMENT": _on_comment},
    )


def parse(text: str, name: str) -> tuple[Tree[Token], list[Comment]]:
    """Parse ``text`` (from the file ``name``); raise ConfigError on a syntax error."""
    deep = too_deep(text, MAX_DEPTH)
    if deep is not None:
        message = f"config nests deeper than {MAX_DEPTH} levels"
        raise ConfigError.at(message, Span(name, *deep)).with_source(text)
    found: list[Comment] = []
    reset = _comments.set(found)
    try:
        return parser().parse(text), found
    except UnexpectedInput as exc:
        raise syntax_error(exc, text, name).with_source(text) from None
    finally:
        _comments.reset(reset)


def syntax_error(exc: UnexpectedInput, text: str, name: str) -> ConfigError:
    """A lark error as ``file:line:col: message`` with what was expected, in words."""
    opened = unclosed(text)
    if opened is not None and _left_open(exc):
        (line, col), message = opened
        return ConfigError.at(message, Span(name, line, col))
    span = Span(name, max(exc.line, 1), max(exc.column, 1))
    if isinstance(exc, UnexpectedCharacters):
        at = exc.pos_in_stream or 0
        char = text[at] if at < len(text) else ""
        hint = " (strings use double quotes)" if char == "'" else ""
        return ConfigError.at(f"unexpected character {char!r}{hint}", span)
    if not isinstance(exc, UnexpectedToken):
        return ConfigError.at("unexpected end of file", span)
    expected = set(exc.accepts or exc.expected)
    if set(STATEMENTS) <= expected:
        unknown = _unknown_statement(text, exc.line, name)
        if unknown is not None:
            return unknown
    found = _found(exc.token)
    hint = ""
    if exc.token.type in ROLES and not expected & set(ROLES):
        hint = " (messages belong in generate, chat and multiturn blocks)"
    return ConfigError.at(f"unexpected {found}{hint}; expected {describe(expected)}", span)


def _left_open(exc: UnexpectedInput) -> bool:
    """The parser stopped at the end, at a bad character, or at a statement inside a block:
    what is left open explains it better than the token it stopped at."""
    if isinstance(exc, (UnexpectedEOF, UnexpectedCharacters)):
        return True
    if isinstance(exc, UnexpectedToken):
        expected = set(exc.accepts or exc.expected)
        return exc.token.type == "$END" or (
            exc.token.type in STATEMENTS
            and "RBRACE" in expected
            and not set(STATEMENTS) <= expected
        )
    return False


def _unknown_statement(text: str, line: int, name: str) -> ConfigError | None:
    """At the top level, a line that starts with an unknown word is a misspelled statement."""
    lines = text.splitlines()
    source = lines[line - 1] if 1 <= line <= len(lines) else ""
    word = source.split(maxsplit=1)[0] if source.strip() else ""
    keywords = [_literal(s).strip("'") for s in STATEMENTS]
    if not word.isidentifier() or word in keywords:
        return None
    close = difflib.get_close_matches(word, keywords, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    span = Span(name, line, len(source) - len(source.lstrip()) + 1)
    message = f"unknown statement {word!r}{hint}; expected one of: {', '.join(keywords)}"
    return ConfigError.at(message, span)


def _found(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    if token.type in ("STRING", "LONG_STRING"):
        return "string"
    if token.type == "NUMBER":
        return f"number {token}"
    if token.type == "NAME":
        return f"name {str(token)!r}"
    return f"'{token}'"


def describe(expected: Any) -> str:
    """A set of terminal names in words: "a role — system, user —, a string or '}'"."""
    names = set(expected)
    parts: list[str] = []
    if names >= set(STATEMENTS):
        parts.append("a statement — " + ", ".join(_literal(n) for n in STATEMENTS) + " —")
        parts.append("a setting name")
        names -= {*STATEMENTS, "NAME"}
    if names >= set(VALUES):
        parts.append("a value (string, number, true, false, null, name, [list] or {object})")
        names -= set(VALUES)
    roles = [r for r in ROLES if r in names]
    if len(roles) > 1:
        parts.append("a role — " + ", ".join(r.lower() for r in roles) + " —")
        names -= set(roles)
    words = sorted({_WORDS.get(n) or _literal(n) for n in names}, key=_order)
    return _join([*parts, *words])


def _order(word: str) -> tuple[int, str]:
    return (1 if word.startswith("'") else 0, word)


def _literal(name: str) -> str:
    try:
        pattern = parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return f"'{pattern.value}'" if pattern.type == "str" else name.lower()


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts) or "nothing"
    return ", ".join(parts[:-1]) + " or " + parts[-1]
