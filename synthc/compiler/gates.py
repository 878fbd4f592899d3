"""Quality gates: ``synthc.quality`` in, the checks a sample's row must pass out.

A validator checks one attribute's value as the row holds it (a regular
expression that must or must not match, bounds on its length in characters,
that it parses as JSON); a filter is a condition over the row, ``name op
literal``, where ``name`` may reach into a JSON value (``verdict.score >= 4``,
the text parsed when it is a string) and ``op`` is one of ``>= <= > < == !=``.
A row that fails one is rejected and its slot drawn again (see
:func:`synthc.planning.plan.next_attempt`). Gates decide which rows are kept,
never what a node sends, so they are in no node key: changing a threshold
sends nothing for the rows already made.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from synthc.compiler.spec import QualitySettings, Validator
from synthc.core.errors import Diagnostic

OPERATORS = (">=", "<=", "==", "!=", ">", "<")
_FILTER = re.compile(
    r"^\s*(?P<name>[A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>.+?)\s*$"
)


@dataclass(frozen=True)
class Check:
    """One check of a validator, named as the summary reports it (``answer: min_chars 20``)."""

    attribute: str
    kind: str  # regex | not_regex | min_chars | max_chars | json | verdict
    param: Any

    @property
    def name(self) -> str:
        if self.kind == "verdict":
            return f"{self.attribute}: usable verdict (score {self.param[0]} to {self.param[1]})"
        shown = (
            ""
            if self.kind == "json"
            else f" {self.param!r}"
            if "regex" in self.kind
            else f" {self.param}"
        )
        return f"{self.attribute}: {self.kind}{shown}"

    def passes(self, row: dict[str, Any]) -> bool:
        value = row.get(self.attribute)
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if self.kind == "regex":
            return re.search(self.param, text) is not None
        if self.kind == "not_regex":
            return re.search(self.param, text) is None
        if self.kind == "min_chars":
            return len(text) >= int(self.param)
        if self.kind == "max_chars":
            return len(text) <= int(self.param)
        if self.kind == "verdict":
            return usable_verdict(value, *self.param)
        return _json(value) is not _MISSING


@dataclass(frozen=True)
class Filter:
    """``name op literal`` over a row (``name`` dotted into a JSON value)."""

    text: str
    path: tuple[str, ...]
    op: str
    value: Any

    @property
    def name(self) -> str:
        return f"filter {self.text!r}"

    def passes(self, row: dict[str, Any]) -> bool:
        found: Any = row.get(self.path[0], _MISSING)
        for part in self.path[1:]:
            found = _json(found)
            found = found.get(part, _MISSING) if isinstance(found, dict) else _MISSING
        if found is _MISSING:
            return False
        return _compare(found, self.op, self.value)


@dataclass(frozen=True)
class Gates:
    """What every kept row passes, in order; ``max_attempts`` draws per slot; and the
    attributes (``dedup``) whose text no two kept rows may share."""

    max_attempts: int
    checks: tuple[Check | Filter, ...]
    dedup: tuple[str, ...] = ()

    def rejection(self, row: dict[str, Any]) -> str | None:
        """The first gate ``row`` fails, by name; None when it passes them all."""
        for check in self.checks:
            if not check.passes(row):
                return check.name
        return None

    def fingerprints(self, row: dict[str, Any]) -> dict[str, str]:
        """What exact dedup compares of ``row``: per attribute, its text normalised
        (case folded, runs of spaces as one, ends stripped), hashed."""
        prints = {}
        for name in self.dedup:
            value = row.get(name)
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            normal = " ".join(text.casefold().split())
            prints[name] = (
                f"{name}\x1f{hashlib.blake2b(normal.encode(), digest_size=16).hexdigest()}"
            )
        return prints


def compile_gates(
    quality: QualitySettings | None, columns: set[str], span: Any
) -> tuple[Gates | None, list[Diagnostic]]:
    """``quality`` as gates over rows with ``columns``; ``span(*path)`` locates a setting.
    The problems come back as diagnostics, all at once."""
    if quality is None:
        return None, []
    # a judge's reply that is no verdict (no integer score in range) rejects its row
    checks: list[Check | Filter] = [
        Check(judge.id, "verdict", (judge.min_score, judge.max_score)) for judge in quality.judges
    ]
    problems: list[Diagnostic] = []
    for i, validator in enumerate(quality.validators):
        where = ("synthc", "quality", "validators", i)
        if validator.attribute not in columns:
            message = (
                f"validators: no column {validator.attribute!r} in the rows ({_listed(columns)})"
            )
            problems.append(Diagnostic(message, span(*where, "attribute")))
            continue
        checks += _checks(validator)
    for i, text in enumerate(quality.filters):
        where = ("synthc", "quality", "filters", i)
        try:
            condition = parse_filter(text)
        except ValueError as exc:
            problems.append(Diagnostic(f"filters: {exc}", span(*where)))
            continue
        if condition.path[0] not in columns:
            message = f"filters: no column {condition.path[0]!r} in the rows ({_listed(columns)})"
            problems.append(Diagnostic(message, span(*where)))
            continue
        checks.append(condition)
    for i, name in enumerate(quality.dedup):
        if name not in columns:
            message = f"dedup: no column {name!r} in the rows ({_listed(columns)})"
            problems.append(Diagnostic(message, span("synthc", "quality", "dedup", i)))
    dedup = tuple(dict.fromkeys(quality.dedup))
    return Gates(quality.max_attempts, tuple(checks), dedup), problems


def _checks(validator: Validator) -> list[Check]:
    found = [
        Check(validator.attribute, kind, getattr(validator, kind))
        for kind in ("regex", "not_regex", "min_chars", "max_chars")
        if getattr(validator, kind) is not None
    ]
    if validator.parses:
        found.append(Check(validator.attribute, "json", True))
    return found


def parse_filter(text: str) -> Filter:
    """``text`` as a :class:`Filter`; ValueError saying what was expected."""
    matched = _FILTER.match(text)
    if matched is None:
        raise ValueError(
            f"expected NAME OP VALUE (OP one of {' '.join(OPERATORS)}), e.g. 'score >= 4'; "
            f"got {text!r}"
        )
    literal = matched["value"]
    try:
        value = json.loads(literal)
    except ValueError:
        if literal[:1] == "'" and literal[-1:] == "'" and len(literal) > 1:
            value = literal[1:-1]
        else:
            raise ValueError(
                f"{literal!r} is not a value: write a number, true, false, null or a quoted string"
            ) from None
    if isinstance(value, (dict, list)):
        raise ValueError(f"{literal!r}: compare with a number, a string, true, false or null")
    return Filter(text.strip(), tuple(matched["name"].split(".")), matched["op"], value)


class _Missing:
    pass


_MISSING: Any = _Missing()


def _json(value: Any) -> Any:
    """``value`` as JSON: a string parsed (``_MISSING`` when it is not JSON), else itself."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return _MISSING


def usable_verdict(value: Any, low: int, high: int) -> bool:
    """Whether ``value`` is a judge's verdict: JSON with an integer ``score`` from ``low``
    to ``high``."""
    verdict = _json(value)
    score = verdict.get("score") if isinstance(verdict, dict) else None
    return isinstance(score, int) and not isinstance(score, bool) and low <= score <= high


def _compare(found: Any, op: str, value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(found, str):
        try:
            found = float(found.strip())
        except ValueError:
            return False
    if op in ("==", "!="):
        return (found == value) is (op == "==")
    if isinstance(found, bool) or (
        not isinstance(found, type(value))
        and not (isinstance(found, (int, float)) and isinstance(value, (int, float)))
    ):
        return False
    try:
        if op == ">=":
            return bool(found >= value)
        if op == "<=":
            return bool(found <= value)
        return bool(found > value) if op == ">" else bool(found < value)
    except TypeError:
        return False


def _listed(columns: set[str]) -> str:
    return ", ".join(sorted(columns)) or "none"
