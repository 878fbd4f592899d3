"""Claim node keys across the builds that share a cache directory: a key in; send it, or its record.

Nothing is claimed while a build is alone on its cache directory: it registers
(:mod:`synthc.cache.registry`) and a watcher thread looks for other live builds
every :data:`TICK` seconds. Sending then costs a set insertion per node.

Once another build is there, every node is claimed before it is sent: a
symlink ``<cache>/claims/<key>`` whose target is the holder's build id, made
with ``symlink()``, which fails if the name exists. The holder sends the
request, puts the record and lets go of the claim only once the record is
committed, so whoever takes the claim next finds the record: a build that
finds a key claimed waits (polling every :data:`POLL` seconds), takes the claim
when it is let go, and reads the record instead of sending. A claim whose
holder is dead (its registration is unlocked) or older than :data:`MAX_AGE`
is taken over: a failed, cancelled or killed holder costs the waiter a wait,
never the node. A build that has met another looks each node up in the local
cache again before sending it, even once alone again: the other may have
made it after this build planned it, and left.

The handshake: when a build sees a new peer it claims every node it has in
flight unclaimed, waits until every record it had already received is
committed, then acknowledges the peer. A build sends nothing claimed until
every peer has acknowledged it, or :data:`ACK_TIMEOUT` has passed (then a node
the silent peer had in flight may be requested twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Protocol

from synthc.cache.registry import Registry
from synthc.cache.writer import WriteBehind
from synthc.core.records import Record

if sys.platform != "win32":
    import fcntl

CLAIMS = "claims"  # the claims, under the cache directory
GUARD = ".takeover"  # flock'd while a stale claim is removed, so only one build replaces it
TICK = 0.1  # seconds between looks at the other builds
POLL = 0.05  # seconds between looks at a claim another build holds
ACK_TIMEOUT = 5.0  # seconds to wait for a new peer's acknowledgement
MAX_AGE = 3600.0  # seconds after which a claim counts as abandoned, even if its holder lives
log = logging.getLogger("synthc.cache")


class Local(Protocol):
    """The local tier: where a claim's record is read once its holder has committed it."""

    def get(self, key: str) -> Record | None: ...


class Claims:
    """This build's claims on one cache directory; see the module's docstring."""

    def __init__(
        self, directory: Path, registry: Registry, local: Local, guard: int, siblings: str = ""
    ):
        self.directory = directory
        self.registry = registry
        self.id = registry.id
        self._siblings = f"{siblings}." if siblings else None  # ids of builds that are not peers
        self._local = local
        self._writes = local if isinstance(local, WriteBehind) else None
        self._guard = guard
        self._guarding = threading.Lock()
        self._lock = threading.Lock()  # the state below; the watcher thread shares it
        self._shared = False
        self._met = False  # another build has shared the directory with us at some point
        self._unacknowledged = False  # a peer has not yet acknowledged us (nor timed out)
        self._live: frozenset[str] = frozenset()
        self._seen: dict[str, float] = {}  # peer → when it was first seen
        self._unclaimed: set[str] = set()  # sent while alone, answer not yet put
        self._held: set[str] = set()  # claimed, in flight
        self._releasing: deque[tuple[int, str]] = deque()  # (put number, key): after commit
        self._acks_due: list[tuple[int, str]] = []  # (put number, peer): after commit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="synthc-claims", daemon=True)

    @classmethod
    def open(cls, cache_dir: Path, local: Local, *, siblings: str = "") -> Claims | None:
        """Register on ``cache_dir`` and start watching; None where claims cannot work.

        ``siblings`` names a group of processes that never need the same node (the shards
        of one build whose samples share none): they do not count as each other's peers,
        so among themselves they claim nothing, while any other build is still met.
        """
        registry = Registry.join(cache_dir, siblings)
        if registry is None:
            return None
        try:
            directory = cache_dir / CLAIMS
            directory.mkdir(exist_ok=True)
            guard = os.open(directory / GUARD, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            log.debug("cannot claim nodes in %s (%s)", cache_dir, exc)
            registry.leave()
            return None
        claims = cls(directory, registry, local, guard, siblings)
        claims._tick()  # see the builds already running before sending anything
        claims._thread.start()
        return claims

    @property
    def shared(self) -> bool:
        """Another live build shares the cache directory (as of the last look)."""
        return self._shared

    async def claim(self, key: str) -> Record | None:
        """None: send ``key``'s request (and call :meth:`release` after putting its record).
        A record: another build made it meanwhile; use it and send nothing."""
        with self._lock:
            shared, met = self._shared, self._met
            if not shared:
                self._unclaimed.add(key)
        if not shared:  # a build that has left may have made it after we looked
            return self._made_meanwhile(key) if met else None
        while self._unacknowledged:
            await asyncio.sleep(POLL)
        while True:
            taken = self._take(key)
            if taken is None:  # claims do not work here after all: send, as without them
                return None
            if taken:
                record = self._local.get(key)
                if record is not None:
                    self._let_go([key])
                return record
            await asyncio.sleep(POLL)

    def _made_meanwhile(self, key: str) -> Record | None:
        record = self._local.get(key)
        if record is not None:
            self.release(key)
        return record

    def release(self, key: str) -> None:
        """``key``'s record is put (or it failed): let others have it once that is on disk."""
        with self._lock:
            if key in self._unclaimed:
                self._unclaimed.discard(key)
                return
            if key not in self._held:
                return
            self._held.discard(key)
            self._releasing.append((self._queued(), key))
        self._release_due()

    def close(self) -> None:
        """Stop watching, let go of every claim, leave the registry. Call after the
        store is closed (every record committed). Closing twice does nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            keys = self._held | {key for _, key in self._releasing}
            self._held.clear()
            self._releasing.clear()
        try:
            self._let_go(keys)
        finally:
            os.close(self._guard)
            self.registry.leave()

    # --- claiming (the build's event loop) -------------------------------------

    def _take(self, key: str) -> bool | None:
        """True: we hold ``key`` now; False: another build does; None: cannot claim."""
        path = self.directory / key
        for _ in range(2):
            try:
                os.symlink(self.id, path)
            except FileExistsError:
                holder = _read(path)
                if holder is not None and holder[0] == self.id:
                    break  # ours still (sent again before the first claim was let go)
                if holder is not None and not self._remove_stale(path, *holder):
                    return False
                continue
            except OSError as exc:
                log.debug("cannot claim %s (%s); sending it unclaimed", key, exc)
                return None
            break
        else:
            return False
        with self._lock:
            self._held.add(key)
        return True

    def _remove_stale(self, path: Path, holder: str, made: float) -> bool:
        """Remove the claim at ``path`` (made at ``made``) if ``holder`` is dead or the
        claim too old; True if it was removed (by us or by another build doing the same)."""
        young = time.time() - made < MAX_AGE
        if young and (holder in self._live or self.registry.is_live(holder)):
            return False
        with self._guarding:  # flock excludes other processes, not our other thread
            fcntl.flock(self._guard, fcntl.LOCK_EX)
            try:  # under the guard nobody else can have replaced it since we read it
                if _read(path) == (holder, made):
                    path.unlink()
            finally:
                fcntl.flock(self._guard, fcntl.LOCK_UN)
        return True

    def _let_go(self, keys: set[str] | list[str]) -> None:
        with self._lock:
            self._held.difference_update(keys)
        for key in keys:
            path = self.directory / key
            try:
                if os.readlink(path) == self.id:
                    path.unlink()
            except OSError:
                pass  # gone already, or taken over as too old

    def _queued(self) -> int:
        return self._writes.queued if self._writes is not None else 0

    def _settled(self) -> int:
        return self._writes.settled if self._writes is not None else 0

    def _release_due(self) -> None:
        """Let go of the claims whose records the writer has committed."""
        settled = self._settled()
        due = []
        with self._lock:
            while self._releasing and self._releasing[0][0] <= settled:
                key = self._releasing.popleft()[1]
                if key not in self._held:  # not claimed again meanwhile
                    due.append(key)
        self._let_go(due)

    # --- watching (a thread) ----------------------------------------------------

    def _watch(self) -> None:
        self._sweep()
        while not self._stop.wait(TICK):
            self._tick()

    def _tick(self) -> None:
        try:
            peers = self.registry.peers()
        except OSError as exc:
            log.debug("cannot look for other builds (%s)", exc)
            return
        if self._siblings is not None:
            peers = {p: acked for p, acked in peers.items() if not p.startswith(self._siblings)}
        now = time.monotonic()
        with self._lock:
            for peer in peers.keys() - self._seen.keys():
                self._meet(peer, now)
            for gone in self._seen.keys() - peers.keys():
                del self._seen[gone]
            self._live = frozenset(peers)
            self._shared = bool(peers)
            self._unacknowledged = any(
                self.id not in acked and now - self._seen[peer] < ACK_TIMEOUT
                for peer, acked in peers.items()
            )
        self._acknowledge_due()
        self._release_due()

    def _meet(self, peer: str, now: float) -> None:
        """A new peer (the lock is held): claim what we sent alone, and acknowledge the
        peer once every record we have put so far is committed."""
        self._seen[peer] = now
        self._met = True
        for key in list(self._unclaimed):
            try:
                os.symlink(self.id, self.directory / key)
            except OSError:
                continue  # the peer claimed it first (it did not wait for us): both send
            self._unclaimed.discard(key)
            self._held.add(key)
        self._acks_due.append((self._queued(), peer))

    def _acknowledge_due(self) -> None:
        settled, due = self._settled(), []
        for entry in self._acks_due:
            if entry[0] > settled:
                due.append(entry)
            else:
                try:
                    self.registry.acknowledge(entry[1])
                except OSError as exc:
                    log.debug("cannot acknowledge build %s (%s)", entry[1], exc)
        self._acks_due = due

    def _sweep(self) -> None:
        """Remove the claims dead builds left behind (a SIGKILL leaves its claims)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            if name.startswith(".") or self._stop.is_set():
                continue
            path = self.directory / name
            holder = _read(path)
            if holder is not None and holder[0] != self.id:
                with contextlib.suppress(OSError):
                    self._remove_stale(path, *holder)


def _read(path: Path) -> tuple[str, float] | None:
    """The holder of the claim at ``path`` and when it was made; None if there is none."""
    try:
        return os.readlink(path), os.lstat(path).st_mtime
    except OSError:
        return None
