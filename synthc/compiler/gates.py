"""Quality gates: ``synthc.quality`` in, the checks a sample's row must pass out.

A validator checks one attribute's value as the row holds it (a regular
expression that must or must not match, bounds on its length in characters or
in the tokens the engine reported for it, that it parses as JSON or validates
against a JSON Schema, a Python predicate); a filter is a condition over the
row, ``name op literal``, where ``name`` may reach into a JSON value
(``verdict.score >= 4``, the text parsed when it is a string) and ``op`` is one
of ``>= <= > < == !=``. Dedup compares a row's texts with the kept rows of
earlier slots (:class:`Seen`): exactly, once normalised, or nearly (MinHash LSH).
A row that fails one is rejected and its slot drawn again (see
:func:`synthc.planning.plan.next_attempt`), or first, for a validator with
``retries``, its attribute alone. Gates decide which rows are kept, never what a
node sends, so they are in no node key: changing a threshold sends nothing for
the rows already made.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from synthc.compiler.executors import ExecutorError, ExecutorRef, find_executor, import_module
from synthc.compiler.spec import QualitySettings, Validator
from synthc.core.errors import Diagnostic, SynthError

OPERATORS = (">=", "<=", "==", "!=", ">", "<")
_FILTER = re.compile(
    r"^\s*(?P<name>[A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>.+?)\s*$"
)


class GateError(SynthError):
    """A quality gate could not decide (a predicate raised, or could not be imported)."""


Tokens = dict[str, int]  # per generated attribute: the tokens the engine reported for it


@dataclass(frozen=True)
class Check:
    """One check of a validator, named as the summary reports it (``answer: min_chars 20``).
    ``retries``: draws of the attribute alone (next draw seed) before the row is rejected."""

    attribute: str
    kind: str  # regex | not_regex | min_chars | max_chars | min_tokens | max_tokens | json
    #            | json_schema | predicate | verdict
    param: Any
    retries: int = 0

    @property
    def name(self) -> str:
        if self.kind == "verdict":
            return f"{self.attribute}: usable verdict (score {self.param[0]} to {self.param[1]})"
        if self.kind == "predicate":
            return f"{self.attribute}: predicate {self.param.name}"
        shown = (
            ""
            if self.kind in ("json", "json_schema")
            else f" '{self.param}'"
            if "regex" in self.kind
            else f" {self.param}"
        )
        return f"{self.attribute}: {self.kind}{shown}"

    def passes(self, row: dict[str, Any], tokens: Tokens | None = None) -> bool:
        value = row.get(self.attribute)
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        kind = self.kind
        if kind == "regex":
            return re.search(self.param, text) is not None
        if kind == "not_regex":
            return re.search(self.param, text) is None
        if kind in ("min_chars", "max_chars"):
            return _within(kind, len(text), int(self.param))
        if kind in ("min_tokens", "max_tokens"):
            # the engine's count of the reply; characters / 4 where it reported none
            count = (tokens or {}).get(self.attribute) or -(-len(text) // 4)
            return _within(kind, count, int(self.param))
        if kind == "verdict":
            return usable_verdict(value, *self.param)
        if kind == "json_schema":
            found = _json(value)
            return found is not _MISSING and _schema_validator(self.param).is_valid(found)
        if kind == "predicate":
            return _predicate(self.param)(value, row)
        return _json(value) is not _MISSING


def _within(kind: str, count: int, bound: int) -> bool:
    return count >= bound if kind.startswith("min") else count <= bound


@cache
def _schema_validator(schema: str) -> Any:
    """A validator for the JSON Schema ``schema`` (its JSON text), made once."""
    loaded = json.loads(schema)
    return jsonschema.validators.validator_for(loaded)(loaded)


_PREDICATES: dict[tuple[ExecutorRef, int], Callable[[Any, dict[str, Any]], bool]] = {}


def _predicate(ref: ExecutorRef) -> Callable[[Any, dict[str, Any]], bool]:
    """The predicate ``ref`` names, imported once per version of its file (an edit is
    picked up, in a notebook too), wrapped so that what it raises is a GateError naming it."""
    try:
        version = ref.path.stat().st_mtime_ns
    except OSError as exc:
        raise GateError(f"predicate {ref.name}: cannot read {ref.path}: {exc}") from None
    found = _PREDICATES.get((ref, version))
    if found is None:
        try:
            function = getattr(import_module(ref), ref.function)
        except ExecutorError as exc:
            raise GateError(f"predicate {ref.name}: {exc}") from None

        def found(value: Any, row: dict[str, Any]) -> bool:
            try:
                return bool(function(value, row))
            except Exception as exc:  # the user's predicate failed: say where
                raise GateError(
                    f"{ref.where}: predicate {ref.name} raised {type(exc).__name__}: {exc}"
                ) from None

        _PREDICATES[(ref, version)] = found
    return found


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

    def passes(self, row: dict[str, Any], tokens: Tokens | None = None) -> bool:
        found: Any = row.get(self.path[0], _MISSING)
        for part in self.path[1:]:
            found = _json(found)
            found = found.get(part, _MISSING) if isinstance(found, dict) else _MISSING
        if found is _MISSING:
            return False
        return _compare(found, self.op, self.value)


@dataclass(frozen=True)
class Near:
    """Near-duplicate dedup of one attribute: MinHash of its normalised text's character
    ``shingle``-grams, a duplicate when its estimated Jaccard similarity with a kept
    row's reaches ``threshold``."""

    attribute: str
    threshold: float
    shingle: int = 5

    @property
    def name(self) -> str:
        return f"near-dup {self.attribute} ({self.threshold:g})"


PERMUTATIONS = 128  # MinHash permutations: the estimate's error is about 1/sqrt(128)


@dataclass(frozen=True)
class Gates:
    """What every kept row passes, in order; ``max_attempts`` draws per slot; the
    attributes (``dedup``) whose text no two kept rows may share, and those (``near``)
    no two kept rows may nearly share."""

    max_attempts: int
    checks: tuple[Check | Filter, ...]
    dedup: tuple[str, ...] = ()
    near: tuple[Near, ...] = ()

    def failing(self, row: dict[str, Any], tokens: Tokens | None = None) -> Check | Filter | None:
        """The first gate ``row`` fails; None when it passes them all."""
        return next((c for c in self.checks if not c.passes(row, tokens)), None)

    @property
    def dedups(self) -> bool:
        return bool(self.dedup or self.near)

    def seen(self) -> Seen:
        """An empty record of the kept rows, for dedup in slot order."""
        return Seen(self)


def _normal(value: Any) -> str:
    """What dedup compares of a value: its text case folded, runs of spaces as one, ends
    stripped."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return " ".join(text.casefold().split())


@dataclass
class Seen:
    """The kept rows so far, as dedup compares them: their normalised texts, hashed, and a
    MinHash LSH index per near-dedup attribute. Fed in slot order, it decides the same
    duplicates on every run."""

    gates: Gates
    exact: set[str] = field(default_factory=set)
    _indexes: dict[Near, Any] = field(default_factory=dict)  # near-dedup gate → its MinHashLSH
    _hashes: dict[str, Any] = field(default_factory=dict)  # LSH key → the kept row's MinHash
    _kept: int = 0

    def duplicate(self, row: dict[str, Any]) -> str | None:
        """The dedup gate ``row`` fails against the rows kept so far (by name), or None;
        a row that passes is kept (added)."""
        prints = {name: self._print(name, row.get(name)) for name in self.gates.dedup}
        same = next((name for name, found in prints.items() if found in self.exact), None)
        if same is not None:
            return f"dedup {same}"
        hashes = {near: self._minhash(near, row.get(near.attribute)) for near in self.gates.near}
        for near, minhash in hashes.items():
            index = self._index(near)
            for key in index.query(minhash):
                if self._hashes[key].jaccard(minhash) >= near.threshold:
                    return near.name
        self.exact.update(prints.values())
        for near, minhash in hashes.items():
            key = f"{near.name}\x1f{near.shingle}\x1f{self._kept}"
            self._hashes[key] = minhash
            self._index(near).insert(key, minhash)
        self._kept += 1
        return None

    @staticmethod
    def _print(name: str, value: Any) -> str:
        return f"{name}\x1f{hashlib.blake2b(_normal(value).encode(), digest_size=16).hexdigest()}"

    def _index(self, near: Near) -> Any:
        index = self._indexes.get(near)  # each gate its own: its threshold sets the bands
        if index is None:
            lsh = _datasketch().MinHashLSH
            index = lsh(threshold=near.threshold, num_perm=PERMUTATIONS)
            self._indexes[near] = index
        return index

    @staticmethod
    def _minhash(near: Near, value: Any) -> Any:
        text = _normal(value)
        grams = {text[k : k + near.shingle] for k in range(max(1, len(text) - near.shingle + 1))}
        minhash = _datasketch().MinHash(num_perm=PERMUTATIONS, seed=1)
        minhash.update_batch([g.encode() for g in sorted(grams)])
        return minhash


NEEDS_DATASKETCH = "needs datasketch: pip install 'synthc[quality]'"


def _datasketch() -> Any:
    try:
        import datasketch
    except ImportError:  # compile_gates said so already, unless it went since
        raise GateError(f"near-duplicate dedup {NEEDS_DATASKETCH}") from None
    return datasketch


def compile_gates(
    quality: QualitySettings | None,
    columns: set[str],
    span: Any,
    *,
    generated: set[str] = frozenset(),  # type: ignore[assignment]
    config_dir: Path = Path("."),
    temperature: float = 1.0,
) -> tuple[Gates | None, list[Diagnostic]]:
    """``quality`` as gates over rows with ``columns`` (``generated``: the attributes a
    model writes, which token bounds and retries need); ``span(*path)`` locates a
    setting. The problems come back as diagnostics, all at once."""
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
        needs_model = [
            name
            for name in ("min_tokens", "max_tokens", "retries")
            if getattr(validator, name) and validator.attribute not in generated
        ]
        if needs_model:
            message = (
                f"validators: {needs_model[0]} needs an attribute a model generates; "
                f"{validator.attribute!r} is not one ({_listed(generated)})"
            )
            problems.append(Diagnostic(message, span(*where, needs_model[0])))
            continue
        if validator.retries and temperature <= 0:
            message = "validators: retries draw again, which needs a temperature above 0"
            problems.append(Diagnostic(message, span(*where, "retries")))
            continue
        try:
            checks += _checks(validator, config_dir, span(*where, "predicate"))
        except ExecutorError as exc:
            problems.append(Diagnostic(f"validators: predicate: {exc}", span(*where, "predicate")))
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
    exact, near = _dedup(quality, columns, span, problems)
    return Gates(quality.max_attempts, tuple(checks), exact, near), problems


def _dedup(
    quality: QualitySettings, columns: set[str], span: Any, problems: list[Diagnostic]
) -> tuple[tuple[str, ...], tuple[Near, ...]]:
    """``quality.dedup`` as the attributes deduplicated exactly and those nearly."""
    exact: list[str] = []
    near: list[Near] = []
    for i, entry in enumerate(quality.dedup):
        if entry.attribute not in columns:
            message = f"dedup: no column {entry.attribute!r} in the rows ({_listed(columns)})"
            problems.append(Diagnostic(message, span("synthc", "quality", "dedup", i)))
        elif entry.near is not None and importlib.util.find_spec("datasketch") is None:
            message = f"dedup: near-duplicate dedup {NEEDS_DATASKETCH}"
            problems.append(Diagnostic(message, span("synthc", "quality", "dedup", i, "near")))
        elif entry.near is not None:
            near.append(Near(entry.attribute, entry.near, entry.shingle))
        else:
            exact.append(entry.attribute)
    return tuple(dict.fromkeys(exact)), tuple(dict.fromkeys(near))


def _checks(validator: Validator, config_dir: Path, where: Any) -> list[Check]:
    kinds = ("regex", "not_regex", "min_chars", "max_chars", "min_tokens", "max_tokens")
    found = [
        Check(validator.attribute, kind, getattr(validator, kind), validator.retries)
        for kind in kinds
        if getattr(validator, kind) is not None
    ]
    if validator.parses:
        found.append(Check(validator.attribute, "json", True, validator.retries))
    if validator.json_schema is not None:
        schema = json.dumps(validator.json_schema, sort_keys=True)
        found.append(Check(validator.attribute, "json_schema", schema, validator.retries))
    if validator.predicate is not None:
        ref = find_executor(validator.predicate, config_dir)
        ref = ExecutorRef(ref.name, ref.path, ref.function, where=str(where or ""))
        found.append(Check(validator.attribute, "predicate", ref, validator.retries))
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
