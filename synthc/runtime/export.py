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
  Parquet has no struct without fields;
- ``hf-dir``: a folder to publish on the Hugging Face Hub: the rows as a build
  writes them in ``data/train.jsonl`` and, when they hold one conversation, the
  ``messages`` rows in ``messages/train.jsonl``; the caller adds the dataset card
  (``README.md``) that names both as configs (``synthc push`` uploads the folder).

With ``provenance`` each row gains ``synthc_nodes``: the key of every node that
made it, by node id, for tracing a row back to its requests (``synthc explain
--why``). Samples not in the cache yet are counted, not built. The result counts
the tokens the exported rows' nodes took (each node once), for the card.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthc.compiler.graph import Graph
from synthc.core.errors import SynthError
from synthc.core.records import Lookup
from synthc.planning.derive import build_row
from synthc.planning.formats.rows import is_conversation
from synthc.planning.plan import SampleState, Status, TokenTally, plan
from synthc.runtime.output import AtomicFile, row_line

FORMATS = ("messages", "sharegpt", "parquet", "hf-dir")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}
HF_ROWS = "data/train.jsonl"  # in an hf-dir: the rows, as a build writes them
HF_MESSAGES = "messages/train.jsonl"  # ... and the conversation as messages rows


@dataclass
class Exported:
    path: Path
    format: str
    rows: int
    missing: int  # samples not (wholly) in the cache: not exported
    conversation: str | None  # the attribute the messages came from
    tokens: tuple[int, int] = (0, 0)  # input, output: what the exported rows' nodes took
    first: dict[str, dict[str, Any]] = field(default_factory=dict)  # hf-dir: file → first row
    rejected: int = 0  # slots whose every attempt a quality gate refused: no row


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
    sink: _Sink = (
        _Parquet(path)
        if fmt == "parquet"
        else _HfDir(path, conversation)
        if fmt == "hf-dir"
        else _Lines(path, fmt, conversation)
    )
    tokens = TokenTally(graph)
    missing = refused = 0

    def visit(state: SampleState) -> None:
        nonlocal missing, refused
        if state.gave_up:  # every attempt of the slot failed a quality gate: no row
            refused += 1
            return
        if not _complete(state):
            missing += 1
            return
        row = build_row(graph, state.values)
        if provenance:
            row["synthc_nodes"] = {
                f"{rule}[{state.index}]": n.key for rule, n in state.nodes.items()
            }
        tokens.add(state)
        sink.add(row)

    try:
        plan(graph, store, visit)
        if not sink.rows and refused:
            raise SynthError(
                f"nothing to export: the quality gates rejected every attempt of {refused} "
                f"slot(s){f' and {missing} more are not built yet' if missing else ''} "
                "(see the build's .rejected.jsonl; synthc explain reports the gates)"
            )
        if not sink.rows:
            raise SynthError("nothing to export: no sample is in the cache yet (build first)")
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return Exported(
        path,
        fmt,
        sink.rows,
        missing,
        sink.column,
        (tokens.input, tokens.output),
        sink.first,
        refused,
    )


class _Sink:
    """Where exported rows go: a file (or a folder of them), put in place on commit."""

    rows = 0
    column: str | None = None  # the conversation the rows' messages came from
    first: dict[str, dict[str, Any]]

    def add(self, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class _Lines(_Sink):
    """``messages`` or ``sharegpt`` rows, a JSON line each, written as met."""

    def __init__(self, path: Path, fmt: str, conversation: str | None) -> None:
        self.file, self.fmt, self.column, self.first = AtomicFile(path), fmt, conversation, {}

    def add(self, row: dict[str, Any]) -> None:
        self.column = self.column or _conversation_column(row)
        self.file.write(json.dumps(_line(self.fmt, row, self.column), ensure_ascii=False) + "\n")
        self.rows += 1

    def commit(self) -> None:
        self.file.commit()

    def abort(self) -> None:
        self.file.abort()


class _Parquet(_Sink):
    """Every column of the rows in one Parquet file: held until the end, written at once."""

    def __init__(self, path: Path) -> None:
        self.path, self.first = path, {}
        self.table: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.table.append(row)
        self.rows += 1

    def commit(self) -> None:
        _write_parquet(self.table, self.path)

    def abort(self) -> None:
        pass


class _HfDir(_Sink):
    """A folder to publish: the rows as a build writes them (``data/train.jsonl``), and,
    where they hold one conversation (or ``conversation`` names it), the same rows as
    ``messages`` (``messages/train.jsonl``). The card (``README.md``) is the caller's."""

    def __init__(self, path: Path, conversation: str | None) -> None:
        if path.exists() and not path.is_dir():
            raise SynthError(f"cannot write {path}: hf-dir writes a folder and this is a file")
        self.path, self.column, self.first = path, conversation, {}
        self.data = AtomicFile(path / HF_ROWS)
        self.messages: AtomicFile | None = None

    def add(self, row: dict[str, Any]) -> None:
        if not self.rows:
            self.first[HF_ROWS] = row
            self.column = self.column or _only_conversation(row)
        self.data.write(row_line(row))  # the bytes a build writes
        if self.column is not None:
            line = _line("messages", row, self.column)
            if self.messages is None:
                self.messages = AtomicFile(self.path / HF_MESSAGES)
                self.first[HF_MESSAGES] = line
            self.messages.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.rows += 1

    def commit(self) -> None:
        self.data.commit()
        if self.messages is not None:
            self.messages.commit()
        else:  # a folder exported before from rows that had a conversation
            (self.path / HF_MESSAGES).unlink(missing_ok=True)

    def abort(self) -> None:
        self.data.abort()
        if self.messages is not None:
            self.messages.abort()


def _complete(state: SampleState) -> bool:
    """Whether ``state`` gives its slot's row: every node cached."""
    return state.ok and all(s in (Status.CACHED, Status.GENERATED) for s in state.status.values())


def _conversations(row: dict[str, Any]) -> list[str]:
    return [name for name, value in row.items() if is_conversation(value)]


def _only_conversation(row: dict[str, Any]) -> str | None:
    """The one column of ``row`` holding a conversation; None when there are several or none."""
    found = _conversations(row)
    return found[0] if len(found) == 1 else None


def _conversation_column(row: dict[str, Any]) -> str:
    """The one column of ``row`` holding a conversation; an error naming them when there
    are several or none."""
    found = _conversations(row)
    if len(found) == 1:
        return found[0]
    if not found:
        raise SynthError(
            "no column holds a conversation ({'messages': [...]}, from a multiturn attribute "
            f"or a CHAT transform); the rows have {', '.join(row)}"
        )
    raise SynthError(f"several columns hold conversations ({', '.join(found)}): choose one")


def _line(fmt: str, row: dict[str, Any], column: str) -> dict[str, Any]:
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
    if "synthc_nodes" in row:
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
