"""Guard remotes and push to them in the background: Remotes in, failures turned into warnings out.

A :class:`Tier` wraps a remote so that an error is logged once and the tier is
switched off after :data:`MAX_ERRORS` failures in a row (a remote that is down
costs a build a few refused connections, not one timeout per node). A
:class:`Pusher` owns threads that PUT queued records to every tier; ``close``
waits for it, but never longer than :data:`PUSH_WAIT` seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence

from synthc.cache.remote import ReadOnlyRemote, Remote, RemoteError, env_setting

MAX_ERRORS = 3
PUSH_WAIT = 60.0  # seconds, unless SYNTHC_REMOTE_CACHE_PUSH_WAIT says otherwise
PUSH_WAIT_ENV = "SYNTHC_REMOTE_CACHE_PUSH_WAIT"
log = logging.getLogger("synthc.cache")


def push_wait() -> float:
    """Seconds a build waits at its end for the remote to take what it made."""
    return env_setting(PUSH_WAIT_ENV, PUSH_WAIT, minimum=0)


class Tier:
    """A remote whose failures are warnings; off for the rest of the run after a few in a row."""

    def __init__(self, remote: Remote):
        self.remote = remote
        self.name = remote.name
        self.down = False
        self.read_only = False  # it refused a write it lets us read: no more pushes
        self._errors = 0
        self._warned = False
        self._lock = threading.Lock()

    def fetch(self, key: str) -> bytes | None:
        try:
            data = self.remote.get(key)
        except RemoteError as exc:
            self._failed("read from", exc)
            return None
        self._ok()
        return data

    def has(self, key: str) -> bool:
        if self.down:
            return False
        try:
            found = self.remote.contains(key)
        except RemoteError as exc:
            self._failed("read from", exc)
            return False
        self._ok()
        return found

    def store(self, key: str, data: bytes) -> bool:
        if self.down or self.read_only:
            return False
        try:
            self.remote.put(key, data)
        except ReadOnlyRemote as exc:
            with self._lock:
                first, self.read_only = not self.read_only, True
            if first:
                log.warning(
                    "%s; reading from it, not pushing to it for the rest of this run "
                    "(synthc.remote_cache_readonly: true says so in the config)",
                    exc,
                )
            return False
        except RemoteError as exc:
            self._failed("push to", exc)
            return False
        self._ok()
        return True

    def _ok(self) -> None:
        with self._lock:
            self._errors = 0

    def _failed(self, what: str, exc: RemoteError) -> None:
        with self._lock:
            self._errors += 1
            first, self._warned = not self._warned, True
            switch_off = self._errors >= MAX_ERRORS and not self.down
            self.down = self.down or switch_off
        if first:
            log.warning("cannot %s the remote cache (%s); the build goes on without it", what, exc)
        if switch_off:
            log.warning(
                "remote cache %s failed %d times in a row: not used for the rest of this run",
                self.name,
                MAX_ERRORS,
            )


class Pusher:
    """PUTs queued records to every tier from a few background threads (round trips overlap)."""

    def __init__(self, tiers: Sequence[Tier]):
        self.tiers = list(tiers)
        threads = max(tier.remote.concurrency for tier in self.tiers)
        self.pushed = 0
        self.failed = 0
        self._count = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[str, bytes] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._loop, name=f"synthc-cache-pusher-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def push(self, key: str, data: bytes) -> None:
        self._queue.put((key, data))

    def close(self, wait: float | None = None) -> None:
        """Let the queue drain for at most ``wait`` seconds; warn about what was not pushed."""
        if wait is None:
            wait = push_wait()
        deadline = time.monotonic() + wait
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            log.warning(
                "gave up waiting for the remote cache after %.0fs; about %d records were not "
                "pushed (run `synthc cache push CONFIG` later)",
                wait,
                self._queue.qsize(),
            )
        elif self.failed:
            log.warning(
                "%d records could not be pushed to the remote cache; they are in the local "
                "cache (run `synthc cache push CONFIG` when the remote is back)",
                self.failed,
            )

    def _loop(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                key, data = item
                for tier in self.tiers:
                    done = tier.store(key, data)
                    with self._count:
                        self.pushed += done
                        self.failed += not done
        finally:
            for tier in self.tiers:
                tier.remote.close()  # this thread's connections
