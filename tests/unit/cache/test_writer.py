"""writer: records read back at once, whether still queued or already committed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from synthc.cache.store import LocalStore
from synthc.cache.writer import WriteBehind
from synthc.core.records import Record


def _record(key: str) -> Record:
    return Record(key=key, text=f"text of {key}", request={"model": "m"}, model="m")


class Held(LocalStore):
    """A local store whose commits wait until the test lets them through."""

    def __init__(self, directory: Path):
        super().__init__(directory)
        self.release = threading.Event()

    def put_many(self, items: list[tuple[str, Record]]) -> None:
        self.release.wait(timeout=30)
        super().put_many(items)


def test_get_many_sees_queued_and_committed_records(tmp_path: Path) -> None:
    store = Held(tmp_path / "cache")
    store.release.set()
    writer = WriteBehind(store)
    stored = [f"{i:032x}" for i in range(3)]
    for key in stored:
        writer.put(key, _record(key))
    while writer.settled < len(stored):  # committed (the writer thread is not held)
        time.sleep(0.01)
    store.release.clear()
    queued = [f"{i:032x}" for i in range(3, 5)]
    for key in queued:
        writer.put(key, _record(key))  # held back: only the queue has them
    missing = "f" * 32
    asked = [missing, *stored, *queued, stored[0]]
    assert writer.get_many(asked) == {key: _record(key) for key in stored + queued}
    assert writer.settled == len(stored)  # the queued ones really were still queued
    assert store.get_many(queued) == {}
    store.release.set()
    writer.close()
    reopened = LocalStore(tmp_path / "cache")
    try:
        assert reopened.get_many(asked) == {key: _record(key) for key in stored + queued}
    finally:
        reopened.close()
