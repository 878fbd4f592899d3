"""maintenance and archive: sizes and ages, gc, stats, export/import with integrity checks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from synthc.cache.archive import export_records, import_records
from synthc.cache.maintenance import gc, parse_age, parse_size, stats
from synthc.cache.store import LocalStore
from synthc.core.errors import CacheError
from synthc.core.keys import node_key
from synthc.core.records import Record


def _record(i: int, created: float = 0.0) -> Record:
    request = {"messages": [["user", f"question {i}"]]}
    return Record(
        key=node_key("llm", request), text=f"answer {i}", request=request, created=created
    )


def _fill(directory: Path, n: int) -> list[Record]:
    records = [_record(i, created=1000.0 + i) for i in range(n)]
    store = LocalStore(directory)
    store.put_many([(r.key, r) for r in records])
    store.close()
    return records


@pytest.mark.parametrize(
    "text,expected",
    [("5GB", 5 * 10**9), ("500M", 500 * 10**6), ("2GiB", 2 * 1024**3), ("1024", 1024)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_age_and_bad_input() -> None:
    assert parse_age("30d") == 30 * 86400
    assert parse_age("12h") == 12 * 3600
    with pytest.raises(ValueError, match="not an age"):
        parse_age("soon")
    with pytest.raises(ValueError, match="not a size"):
        parse_size("big")


def test_gc_by_age_then_size(tmp_path: Path) -> None:
    records = _fill(tmp_path / "c", 10)
    store = LocalStore(tmp_path / "c")
    result = gc(store, older_than=5, now=1010.0)  # created 1000..1009: 1000..1004 are older
    assert (result.removed, result.kept) == (5, 5)
    size = len(records[0].to_bytes())
    result = gc(store, max_size=2 * size + 1)
    assert (result.removed, result.kept) == (3, 2)
    assert [store.get(r.key) for r in records[-2:]] == records[-2:]
    assert len(store) == 2
    store.close()


def test_export_import_round_trip_refuses_tampered(tmp_path: Path) -> None:
    records = _fill(tmp_path / "a", 4)
    source = LocalStore(tmp_path / "a")
    archive = tmp_path / "records.synthc.gz"
    assert export_records(source, [r.key for r in records[:3]] + ["0" * 32], archive) == (3, 1)
    source.close()
    lines = gzip.decompress(archive.read_bytes()).splitlines()
    forged = json.loads(lines[1])
    forged["text"], forged["request"] = "evil", {"messages": [["user", "other"]]}
    lines[1] = json.dumps(forged).encode()
    archive.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    target = LocalStore(tmp_path / "b")
    result = import_records(target, archive)
    assert (result.imported, result.already, result.refused) == (2, 0, 1)
    assert import_records(target, archive).already == 2
    assert [target.get(r.key) for r in records[1:3]] == records[1:3]
    assert target.get(records[0].key) is None
    assert stats(target).entries == 2
    target.close()


def test_import_refuses_a_file_that_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b'{"format": "something else"}\n'))
    store = LocalStore(tmp_path / "c")
    with pytest.raises(CacheError, match="not a synthc cache archive"):
        import_records(store, path)
    store.close()
