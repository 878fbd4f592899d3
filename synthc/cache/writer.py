"""Write records to a store from a background thread, many per transaction: a Store in, a Store out.

A build's hot loop should not wait for SQLite. ``WriteBehind.put`` queues the
record and returns; a writer thread commits whatever has queued up in one
transaction (group commit), usually within a millisecond. Reads see queued
records at once. A record still queued when the process is killed is lost
like a request in flight; ``put`` waits while ``MAX_PENDING`` records are
queued, so a kill loses at most that many answers beyond those in flight
(tests/reliability/test_crash.py measures it). ``close`` waits until
everything queued is written.
A write that fails is raised by the next ``put``, ``get`` or ``close``.
``queued`` counts puts and ``settled`` the first of them the writer has finished
with (committed, or failed), so a reader can tell when a given put is on disk
(:mod:`synthc.cache.claims` waits for that before it lets another build look).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from synthc.core.errors import CacheError
from synthc.core.records import Record

MAX_BATCH = 512
GATHER = 0.005  # seconds the writer waits for more records before it commits
MAX_PENDING = 64  # queued, not yet committed records before put() waits for the writer


class WriteBehind:
    """Wraps a store that has ``put_many``; reads go to the queue first, then the store."""

    def __init__(self, store: Any):
        self.store = store
        self._pending: dict[str, Record] = {}
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified when the writer commits
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self.queued = 0  # records put so far
        self.settled = 0  # of those, in put order, how many the writer has finished with
        self._thread = threading.Thread(
            target=self._write_loop, name="synthc-cache-writer", daemon=True
        )
        self._thread.start()

    def get(self, key: str) -> Record | None:
        self._raise_if_failed()
        with self._lock:
            record = self._pending.get(key)
        return record if record is not None else self.store.get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Record]:
        """The records of ``keys`` queued or stored, by key; the store is asked once."""
        self._raise_if_failed()
        with self._lock:
            queued = {key: self._pending[key] for key in keys if key in self._pending}
        rest = [key for key in keys if key not in queued]
        return {**self.store.get_many(rest), **queued} if rest else queued

    def contains(self, key: str) -> bool:
        with self._lock:
            if key in self._pending:
                return True
        return bool(self.store.contains(key))

    def put(self, key: str, record: Record) -> None:
        self._raise_if_failed()
        with self._room:
            while len(self._pending) >= MAX_PENDING and self._thread.is_alive():
                self._room.wait(timeout=1.0)
            self._pending[key] = record
            self.queued += 1
            self._queue.put(key)  # under the lock: queue order is ``queued`` order

    def close(self) -> None:
        """Write everything queued, stop the thread and close the store."""
        self._queue.put(None)
        self._thread.join()
        self.store.close()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            if isinstance(error, CacheError):
                raise error
            raise CacheError(f"cannot write to the cache: {error}") from error

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            keys = [self._queue.get()]
            deadline = time.monotonic() + GATHER
            while len(keys) < MAX_BATCH and keys[-1] is not None:
                try:
                    keys.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            stop = None in keys
            batch = [k for k in keys if k is not None]
            self._write(batch)
            self.settled += len(batch)  # the queue is first in, first out: puts in order

    def _write(self, keys: list[str]) -> None:
        if not keys:
            return
        with self._lock:
            batch = [(k, self._pending[k]) for k in keys if k in self._pending]
        try:
            self.store.put_many(batch)
        except BaseException as exc:  # surfaced to the build thread on its next call
            self._error = exc
        finally:
            with self._room:
                for key, record in batch:
                    if self._pending.get(key) is record:
                        del self._pending[key]
                self._room.notify_all()
