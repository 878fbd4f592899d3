"""Write a built dataset in the shape a trainer loads: the cache in, a file out, no request sent.

Every sample is planned against the cache as a build would plan it; a sample
whose every node is cached gives its row (the row a build writes), and the row
is written in the chosen format:

- ``messages``: ``{"messages": [...]}`` a line, from one conversation attribute
  (a multiturn attribute or a CHAT transform), with ``"tools"`` when the
  conversation was offered tools: what TRL's ``SFTTrainer`` (conversational
  format) and oumi's ``text_sft_jsonl`` both load;
- ``sharegpt``: ``{"conversations": [{"from": "human", "value": ...}, ...]}`` a
  line (``system``, ``human``, ``gpt``; a tool call is ``function_call``, its
  result ``observation``; tools as JSON text in ``"tools"``), LLaMA-Factory's form;
- ``parquet``: every column of the rows, in one Parquet file (through
  ``datasets``, which brings pyarrow); an empty mapping is stored as null, since
  Parquet has no struct without fields.

With ``provenance`` each row gains ``synthc_nodes``: the key of every node that
made it, by node id, for tracing a row back to its requests (``synthc explain
--why``). Samples not in the cache yet are counted, not built.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthc.compiler.graph import Graph
from synthc.core.errors import SynthError
from synthc.core.records import Lookup
from synthc.planning.derive import build_row
from synthc.planning.formats.rows import is_conversation
from synthc.planning.plan import SampleState, Status, plan
from synthc.runtime.output import AtomicFile

FORMATS = ("messages", "sharegpt", "parquet")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}


@dataclass
class Exported:
    path: Path
    format: str
    rows: int
    missing: int  # samples not (wholly) in the cache: not exported
    conversation: str | None  # the attribute the messages came from


def export(
    graph: Graph,
    store: Lookup,
    fmt: str,
    path: Path,
    *,
    conversation: str | None = None,
    provenance: bool = False,
) -> Exported:
    """Write ``graph``'s cached rows to ``path`` as ``fmt``; sends nothing."""
    if fmt not in FORMATS:
        raise SynthError(f"unknown export format {fmt!r}: expected {', '.join(FORMATS)}")
    missing = written = 0
    table: list[dict[str, Any]] | None = [] if fmt == "parquet" else None  # Parquet: at once
    lines = None if table is not None else AtomicFile(path)  # JSONL: a line per row, as met
    column = conversation

    def visit(state: SampleState) -> None:
        nonlocal missing, written, column
        if not _complete(state):
            missing += 1
            return
        row = build_row(graph, state.values)
        if provenance:
            row["synthc_nodes"] = {
                f"{rule}[{state.index}]": n.key for rule, n in state.nodes.items()
            }
        written += 1
        if table is not None:
            table.append(row)
            return
        assert lines is not None
        column = column or _conversation_column(row)
        lines.write(json.dumps(_line(fmt, row, column, provenance), ensure_ascii=False) + "\n")

    try:
        plan(graph, store, visit)
        if lines is not None and column is None:
            raise SynthError("nothing to export: no sample is in the cache yet (build first)")
    except BaseException:
        if lines is not None:
            lines.abort()
        raise
    if table is not None:
        _write_parquet(table, path)
    else:
        assert lines is not None
        lines.commit()
    return Exported(path, fmt, written, missing, column)


def _complete(state: SampleState) -> bool:
    return state.ok and all(s in (Status.CACHED, Status.GENERATED) for s in state.status.values())


def _conversation_column(row: dict[str, Any]) -> str:
    """The one column of ``row`` holding a conversation; an error naming them when there
    are several or none."""
    found = [name for name, value in row.items() if is_conversation(value)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SynthError(
            "no column holds a conversation ({'messages': [...]}, from a multiturn attribute "
            f"or a CHAT transform); the rows have {', '.join(row)}"
        )
    raise SynthError(f"several columns hold conversations ({', '.join(found)}): choose one")


def _line(fmt: str, row: dict[str, Any], column: str, provenance: bool) -> dict[str, Any]:
    value = row.get(column)
    if not is_conversation(value):
        raise SynthError(f"column {column!r} holds no conversation; the rows have {', '.join(row)}")
    messages = [_message(m) for m in value["messages"]]
    out: dict[str, Any]
    if fmt == "messages":
        out = {"messages": messages}
        if value.get("tools"):
            out["tools"] = value["tools"]
    else:
        out = {"conversations": [turn for m in messages for turn in _sharegpt(m)]}
        if value.get("tools"):
            out["tools"] = json.dumps(value["tools"], ensure_ascii=False)
    if provenance:
        out["synthc_nodes"] = row["synthc_nodes"]
    return out


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """A message as both trainers read it: role and content (text, never null), and a
    tool call's or tool result's fields as written."""
    out = {"role": message["role"], "content": message.get("content") or ""}
    for key in ("tool_calls", "tool_call_id"):
        if message.get(key) is not None:
            out[key] = message[key]
    return out


def _sharegpt(message: dict[str, Any]) -> Iterator[dict[str, str]]:
    role = message["role"]
    if role == "assistant" and message.get("tool_calls"):
        if message["content"]:
            yield {"from": "gpt", "value": message["content"]}
        for call in message["tool_calls"]:
            function = call.get("function", {})
            value = {"name": function.get("name"), "arguments": _arguments(function)}
            yield {"from": "function_call", "value": json.dumps(value, ensure_ascii=False)}
        return
    yield {"from": SHAREGPT_ROLES.get(role, role), "value": message["content"]}


def _arguments(function: dict[str, Any]) -> Any:
    """A call's arguments as JSON, or the text the model wrote when it is not JSON."""
    text = function.get("arguments") or "{}"
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _storable(value: Any) -> Any:
    """``value`` with every empty mapping as null: Parquet has no struct without fields
    (a CHAT transform's ``metadata`` is ``{}`` unless the config sets some)."""
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()} if value else None
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        datasets = importlib.import_module("datasets")
    except ImportError:
        raise SynthError("--format parquet needs datasets: pip install 'synthc[data]'") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    datasets.Dataset.from_list([_storable(row) for row in rows]).to_parquet(str(tmp))
    tmp.replace(path)
