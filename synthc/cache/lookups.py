"""Look keys up on the remote tiers from a pool of threads: keys in, futures of records out.

A build plans against the local tier only; each node that misses there is
looked up on the remotes here, so its round trip overlaps the others' and the
event loop goes on sending requests meanwhile. The pool's :data:`LOOKUPS`
threads bound how many lookups are in flight at once: enough to hide a WAN
round trip (32 at 50 ms is 640 lookups a second), few enough for a small
server (each thread keeps one connection to each HTTP remote). A lookup
cancelled before it starts is skipped; ``close`` skips those still queued,
waits for those in flight (at most a remote's timeout) and closes every
thread's connections.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from synthc.cache.remote import Remote, env_setting
from synthc.core.records import Record

LOOKUPS = 32  # lookup threads, unless SYNTHC_REMOTE_CACHE_LOOKUPS says otherwise

LOOKUPS_ENV = "SYNTHC_REMOTE_CACHE_LOOKUPS"
_Item = tuple[str, "Future[Record | None]"]


def lookup_threads() -> int:
    """How many remote lookups a build keeps in flight."""
    return int(env_setting(LOOKUPS_ENV, LOOKUPS, minimum=1, whole=True))


class LookupPool:
    """Runs ``find(key)`` on up to ``threads`` threads; a future per key."""

    def __init__(
        self,
        find: Callable[[str], Record | None],
        remotes: Sequence[Remote],
        threads: int | None = None,
    ):
        if threads is None:
            threads = lookup_threads()
        self._find = find
        self._remotes = list(remotes)
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._loop, name=f"synthc-cache-lookup-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, key: str) -> Future[Record | None]:
        future: Future[Record | None] = Future()
        self._queue.put((key, future))
        return future

    def close(self) -> None:
        """Skip the lookups not started, wait for those in flight, close the connections."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].cancel()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _loop(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                key, future = item
                if not future.set_running_or_notify_cancel():
                    continue  # cancelled while queued
                try:
                    future.set_result(self._find(key))
                except BaseException as exc:  # raised to whoever waits on the future
                    future.set_exception(exc)
        finally:
            for remote in self._remotes:
                remote.close()  # this thread's connections
