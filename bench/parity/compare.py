"""Compare what the two tools wrote for one case.

Rows are normalized first: every ``conversation_id`` is dropped (oumi draws a
uuid) and dict key order is ignored (canonical JSON with sorted keys).

``exact``: the row lists must be equal, in order.

``draws``: each row gets a draw signature: the values of the sampled attributes
and input columns present in the row, the number of user messages of each
multiturn conversation, the round-robin position (row index modulo the source
size) of an input source whose columns the row does not show, and the row index
when an environment's grounding is seeded (oumi draws it from ``seed + index``).
Rows of a signature both tools produced must be the same set of rows. "same"
needs at least one shared signature and no disagreement. When a random draw is
hidden from the rows (a sampled attribute that passthrough drops), rows of a
signature cannot be paired, so only their shapes are compared (keys, value
types, list lengths and roles; texts ignored): "same (shape)". So are all rows,
grouped by conversation length only, when no signature is shared at all.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Row = dict[str, Any]
KEEP_TEXT = {"role", "type"}  # string fields whose value a shape keeps


@dataclass
class Verdict:
    result: str  # same / same (shape) / different / inconclusive
    detail: str = ""
    pair: tuple[Any, Any] | None = None  # the first differing rows, for -v


@dataclass
class DrawSpec:
    keys: set[str] = field(default_factory=set)
    shot_ids: set[str] = field(default_factory=set)
    multiturn: list[str] = field(default_factory=list)
    round_robin: list[tuple[str, int]] = field(default_factory=list)  # hidden sources
    use_index: bool = False
    hidden: list[str] = field(default_factory=list)  # random draws rows do not show


def canonical(value: Any) -> str:
    return json.dumps(strip_ids(value), sort_keys=True, ensure_ascii=False)


def strip_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_ids(v) for k, v in value.items() if k != "conversation_id"}
    if isinstance(value, list):
        return [strip_ids(v) for v in value]
    return value


def compare(mode: str, oumi: list[Row], synthc: list[Row], spec: DrawSpec) -> Verdict:
    if mode == "exact":
        return compare_exact(oumi, synthc)
    return compare_draws(oumi, synthc, spec)


def compare_exact(oumi: list[Row], synthc: list[Row]) -> Verdict:
    for index, (a, b) in enumerate(zip(oumi, synthc, strict=False)):  # lengths: below
        if canonical(a) != canonical(b):
            return Verdict("different", f"row {index} differs", (strip_ids(a), strip_ids(b)))
    if len(oumi) != len(synthc):
        index = min(len(oumi), len(synthc))
        extra = [*oumi, None][index], [*synthc, None][index]
        return Verdict("different", f"{len(oumi)} vs {len(synthc)} rows", extra)
    reordered = sum(1 for a, b in zip(oumi, synthc, strict=True) if _ordered(a) != _ordered(b))
    order = f"; key order differs in {reordered}" if reordered else "; same key order"
    return Verdict("same", f"{len(oumi)} rows equal{order}")


def _ordered(row: Row) -> str:
    return json.dumps(strip_ids(row), ensure_ascii=False)


def compare_draws(oumi: list[Row], synthc: list[Row], spec: DrawSpec) -> Verdict:
    if len(oumi) != len(synthc):
        return Verdict("different", f"{len(oumi)} vs {len(synthc)} rows")
    if spec.hidden:  # texts are not compared, so index-seeded grounding does not matter
        spec = DrawSpec(
            spec.keys, spec.shot_ids, spec.multiturn, spec.round_robin, False, spec.hidden
        )
    left, right = group(oumi, spec), group(synthc, spec)
    shared = sorted(set(left) & set(right))
    view = shape if spec.hidden else canonical_row
    hidden = f"; hidden draws {', '.join(spec.hidden)}: shapes only" if spec.hidden else ""
    detail = f"{len(shared)} shared of {len(left)}/{len(right)} signatures{hidden}"
    if not shared and oumi and synthc and spec.keys | spec.shot_ids:
        # too many possible draws for the samples: compare the shapes of all rows,
        # grouped by conversation length only
        coarse = DrawSpec(multiturn=spec.multiturn, hidden=["(no shared signature)"])
        verdict = compare_draws(oumi, synthc, coarse)
        verdict.detail = f"no shared draw signature ({detail}); {verdict.detail}"
        return verdict
    if not shared:
        return Verdict("inconclusive", f"no shared draw signature ({detail})")
    for signature in shared:
        a = {canonical(view(r)): r for r in left[signature]}
        b = {canonical(view(r)): r for r in right[signature]}
        if set(a) != set(b):
            only_a = [r for k, r in a.items() if k not in b]
            only_b = [r for k, r in b.items() if k not in a]
            first_a = strip_ids(only_a[0]) if only_a else None
            first_b = strip_ids(only_b[0]) if only_b else None
            return Verdict(
                "different", f"signature {signature} disagrees; {detail}", (first_a, first_b)
            )
    exact = sum(1 for s in shared if _same_rows(left[s], right[s]))
    if spec.hidden:
        return Verdict("same (shape)", f"{detail}; {exact} with equal rows")
    return Verdict("same", detail)


def _same_rows(a: list[Row], b: list[Row]) -> bool:
    return {canonical(r) for r in a} == {canonical(r) for r in b}


def canonical_row(row: Row) -> Row:
    return row


def group(rows: list[Row], spec: DrawSpec) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[signature(row, index, spec)].append(row)
    return groups


def signature(row: Row, index: int, spec: DrawSpec) -> str:
    parts: dict[str, Any] = {}
    for key, value in row.items():
        base = key.split("[", 1)[0]
        if key in spec.keys or base in spec.shot_ids:
            parts[key] = value
    for attr in spec.multiturn:
        conversation = row.get(attr)
        messages = conversation.get("messages") if isinstance(conversation, dict) else None
        if isinstance(messages, list):
            parts[f"{attr}#users"] = sum(1 for m in messages if m.get("role") == "user")
    for source, size in spec.round_robin:
        parts[f"{source}#position"] = index % size
    if spec.use_index:
        parts["#index"] = index
    return canonical(parts)


def shape(value: Any, key: str = "") -> Any:
    """The structure of ``value``: texts become "str", except roles and types."""
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items() if k != "conversation_id"}
    if isinstance(value, list):
        return [shape(v, key) for v in value]
    if isinstance(value, str):
        return value if key in KEEP_TEXT else "str"
    return type(value).__name__


# --- the draw spec of a config ----------------------------------------------------------


def draw_spec(config: dict[str, Any], case_dir: Path) -> DrawSpec:
    params = config.get("strategy_params") or {}
    passthrough = params.get("passthrough_attributes")
    shown = _shown(passthrough)
    spec = DrawSpec()
    for attr in params.get("sampled_attributes") or []:
        spec.keys.add(attr["id"])
        if len(attr.get("possible_values") or []) > 1 and not shown(attr["id"]):
            spec.hidden.append(attr["id"])
    sources = [*(params.get("input_examples") or []), *(params.get("input_data") or [])]
    for number, source in enumerate(sources):
        _add_source(spec, source, number, case_dir, shown)
    for attr in params.get("multiturn_attributes") or []:
        spec.multiturn.append(attr["id"])
        if attr.get("min_turns") != attr.get("max_turns") and not shown(attr["id"]):
            spec.hidden.append(attr["id"])
    for env in (config.get("environment_config") or {}).get("environments") or []:
        grounding = env.get("grounding")
        if grounding and grounding.get("seed") is not None:
            spec.use_index = True
        elif grounding:
            spec.hidden.append(f"{env.get('id')}.grounding")
    return spec


def _shown(passthrough: list[str] | None) -> Any:
    if not passthrough:
        return lambda key: True
    roots = {p.split("[", 1)[0] for p in passthrough}
    return lambda key: key in roots


def _add_source(
    spec: DrawSpec, source: dict[str, Any], number: int, case_dir: Path, shown: Any
) -> None:
    shots = source.get("num_shots")
    if shots and shots > 1:
        spec.shot_ids.add(source["id"])
        if not shown(source["id"]):
            spec.hidden.append(source["id"])
        return
    columns = _columns(source, case_dir)
    spec.keys.update(columns)
    size = len(source["examples"]) if "examples" in source else _rows(source, case_dir)
    if size > 1 and not all(shown(c) for c in columns):
        spec.round_robin.append((f"source{number}", size))


def _columns(source: dict[str, Any], case_dir: Path) -> list[str]:
    if "examples" in source:
        return list(source["examples"][0])
    path = case_dir / source["path"]
    if path.suffix == ".csv":
        header = path.read_text().splitlines()[0].split(",")
    else:
        header = list(json.loads(path.read_text().splitlines()[0]))
    renames = source.get("attribute_map")
    return [renames[c] for c in header if c in renames] if renames else header


def _rows(source: dict[str, Any], case_dir: Path) -> int:
    lines = [x for x in (case_dir / source["path"]).read_text().splitlines() if x.strip()]
    return len(lines) - 1 if source["path"].endswith(".csv") else len(lines)


def first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """Where ``a`` and ``b`` first differ: a dotted path and the two values there."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in a or key not in b:
                return f"{path}.{key}".lstrip("."), a.get(key, "<absent>"), b.get(key, "<absent>")
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b, strict=False)):  # lengths: below
            found = first_difference(x, y, f"{path}[{index}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{path} (length {len(a)} vs {len(b)})", a[len(b) :], b[len(a) :]
        return None
    return None if a == b else (path.lstrip(".") or "<row>", a, b)
