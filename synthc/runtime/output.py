"""Write a build's results, JSONL rows and the manifest, to temporary files renamed at the end.

Rows are written as oumi writes them (``jsonlines``: ``", "`` and ``": "``
separators, UTF-8, one object a line). Nothing replaces the output file until
the build is over, so a crash never leaves a half-written dataset behind; the
temporary file a killed build leaves is removed by the next build that commits.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from synthc.compiler.graph import Graph, LLMRule, Rule
from synthc.compiler.template import SampledValue
from synthc.core.errors import SynthError
from synthc.core.keys import KEY_VERSION
from synthc.planning.manifest import MANIFEST_VERSION
from synthc.planning.plan import SampleState, Status


class AtomicFile:
    """A text file written beside its destination and moved into place on commit."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file: IO[str] = self.tmp.open("w", encoding="utf-8")
        except OSError as exc:
            why = exc.strerror
            if any(p.exists() and not p.is_dir() for p in path.parents):
                why = "a parent of it is a file, not a directory"
            raise SynthError(f"cannot write {path}: {why}") from None

    def write(self, text: str) -> None:
        try:
            self.file.write(text)
        except OSError as exc:  # no space left, file too large...: say so, leave nothing behind
            self.abort()
            raise SynthError(f"cannot write {self.path}: {exc.strerror}") from None

    def commit(self, path: Path | None = None) -> None:
        """Move the file into place: at its destination, or at ``path`` instead."""
        target = path or self.path
        try:
            self.file.close()
            os.replace(self.tmp, target)
        except OSError as exc:
            self.abort()
            raise SynthError(f"cannot write {target}: {exc.strerror}") from None
        _remove_stale(self.path)
        self.path = target

    def abort(self) -> None:
        try:
            self.file.close()  # flushing may fail again (the disk is still full)
        except OSError:
            pass
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def partial_path(path: Path) -> Path:
    """Where a failed build's rows go when the output holds more: ``out.partial.jsonl``."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def count_rows(path: Path) -> int:
    """Lines in the JSONL file at ``path`` (0 if there is none), read in blocks."""
    try:
        with path.open("rb") as file:
            return sum(block.count(b"\n") for block in iter(lambda: file.read(1 << 20), b""))
    except OSError:
        return 0


def file_stamp(path: Path) -> tuple[int, int] | None:
    """What tells one version of the file at ``path`` from another: (mtime_ns, size)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of the JSONL file at ``path``."""
    try:
        with path.open("rb") as file:
            return [orjson.loads(line) for line in file if line.strip()]
    except OSError as exc:
        raise SynthError(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise SynthError(f"{path} is not JSONL: {exc}") from None


def _remove_stale(path: Path) -> None:
    """Delete temporary files of ``path`` whose writer (by the pid in the name) is gone."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process
        return True
    return True


def row_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) + "\n"


def manifest_header(graph: Graph, config: Path) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "key_version": KEY_VERSION,
        "config": str(config),
        "created": time.time(),
        "num_samples": graph.num_samples,
        "rules": {r.id: _rule_entry(r) for r in graph.rules},
    }


def _rule_entry(rule: Rule) -> dict[str, Any]:
    entry: dict[str, Any] = {"deps": list(rule.deps), "digest": rule.digest}
    if isinstance(rule, LLMRule):
        entry["messages"] = [[m.role, m.text] for m in rule.messages]
    return entry


def manifest_entries(graph: Graph, state: SampleState) -> list[dict[str, Any]]:
    """One entry per LLM node of the sample (multiturn steps included): its id, key, status
    and key parts."""
    entries = []
    llm = {r.id: r for r in graph.llm_rules}
    steps = [node.rule for name, node in state.nodes.items() if name not in llm]
    for rule in [*llm.values(), *steps]:
        node = state.nodes.get(rule.id)
        entry: dict[str, Any] = {
            "id": f"{rule.id}[{state.index}]",
            "sample": state.sample_key,
            "status": state.status.get(rule.id, Status.BLOCKED),
        }
        if node is not None:
            entry["key"] = node.key
            entry["parts"] = node.parts
        sampled = {d: v.id for d in rule.deps if isinstance(v := state.values.get(d), SampledValue)}
        if sampled:
            entry["sampled"] = sampled
        if rule.id in state.errors:
            entry["error"] = state.errors[rule.id]
        entries.append(entry)
    return entries


def manifest_line(entry: dict[str, Any]) -> str:
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE).decode()
