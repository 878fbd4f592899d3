"""Stack cache tiers: a local store and remotes in; one Store that reads and writes through out.

``get`` asks the local tier, then each remote in order; a remote hit is
checked (its canonical request must hash to its key) and copied to the local
tier. A build and ``explain`` ask in two steps instead (the ``Tiered``
protocol in :mod:`synthc.core.records`): the local tier while planning, then
the remotes for the local misses, many at once from a pool of threads
(:mod:`synthc.cache.lookups`), so round trips overlap and never stall the
build's event loop. ``put`` writes locally and queues the record for every
remote; a background thread pushes it, so the build never waits on the
network. A remote that fails is a warning, never a failed build: after
:data:`MAX_ERRORS` failures in a row it is switched off for the rest of the
run. Per-tier lookups and hits are counted for the summary and
``synthc cache stats``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from synthc.cache.lookups import LookupPool, lookup_threads
from synthc.cache.pusher import Pusher, Tier, push_wait
from synthc.cache.remote import Remote
from synthc.cache.remotes import open_remote
from synthc.cache.store import LocalStore
from synthc.cache.writer import WriteBehind
from synthc.core.records import Lookup, Record, get_many

LOCAL = "local"
REMOTE_ENV = "SYNTHC_REMOTE_CACHE"
READONLY_ENV = "SYNTHC_REMOTE_CACHE_READONLY"
LAST_BUILD = "last-build.json"  # in the local cache directory: what the last build's lookups found
log = logging.getLogger("synthc.cache")


def checked(key: str, data: bytes, source: str) -> Record | None:
    """The record in ``data`` if this synthc reads it and its request hashes to ``key``."""
    try:
        record = Record.from_bytes(data)
        made_for = record.hashes_to(key)
    except (ValueError, TypeError, RecursionError) as exc:
        log.warning("ignoring unreadable record %s from %s (%s)", key, source, exc)
        return None
    if not made_for:
        log.warning(
            "refusing record %s from %s: its request does not hash to its key (misfiled or "
            "tampered); it will be regenerated",
            key,
            source,
        )
        return None
    return record


class LayeredStore:
    """A Store over a local tier and zero or more remotes."""

    def __init__(self, local: Any, remotes: Sequence[Remote] = (), *, readonly: bool = False):
        self.local = local
        self.tiers = [Tier(remote) for remote in remotes]
        self.readonly = readonly
        self.lookups: Counter[str] = Counter()
        self.hits: Counter[str] = Counter()
        self.stats_file: Path | None = None
        self.local_tier: Lookup = _LocalTier(self)
        self._pusher = Pusher(self.tiers) if self.tiers and not readonly else None
        self._pool: LookupPool | None = None  # started by the first remote lookup
        self._counting = threading.Lock()  # remote lookups count from the pool's threads

    def get(self, key: str) -> Record | None:
        record = self.get_local(key)
        if record is None and self.tiers:
            record = self.get_remote(key)
        return record

    def get_local(self, key: str) -> Record | None:
        """The local tier's record of ``key``; remotes are not asked."""
        self.lookups[LOCAL] += 1
        record: Record | None = self.local.get(key)
        if record is not None:
            self.hits[LOCAL] += 1
        return record

    def get_many(self, keys: Sequence[str]) -> dict[str, Record]:
        """:meth:`get` for each of ``keys``: the local tier in one query, then the remotes
        for its misses with their round trips overlapping."""
        found = self.get_local_many(keys)
        if self.tiers:
            found.update(self.get_remote_many(key for key in keys if key not in found))
        return found

    def get_local_many(self, keys: Sequence[str]) -> dict[str, Record]:
        """:meth:`get_local` for each of ``keys``, in one query where the local tier can."""
        unique = list(dict.fromkeys(keys))
        found = get_many(self.local, unique)
        self.lookups[LOCAL] += len(unique)
        self.hits[LOCAL] += len(found)
        return found

    def get_remote(self, key: str) -> Record | None:
        """Ask each remote that is up, in order; copy a checked hit to the local tier."""
        record = self._ask_remotes(key)
        if record is not None:
            self.local.put(key, record)
        return record

    def _ask_remotes(self, key: str) -> Record | None:
        """The first checked record of ``key`` on a remote that is up; counted. The network
        and the check only, no local write: the lookup threads run this."""
        for tier in self.tiers:
            if tier.down:
                continue
            self._count(self.lookups, tier.name)
            data = tier.fetch(key)
            record = checked(key, data, tier.name) if data is not None else None
            if record is not None:
                self._count(self.hits, tier.name)
                return record
        return None

    @property
    def has_remotes(self) -> bool:
        return bool(self.tiers)

    async def fetch_remote(self, key: str) -> Record | None:
        """:meth:`get_remote`, its round trips on a lookup thread while the event loop goes on."""
        if all(tier.down for tier in self.tiers):
            return None
        record = await asyncio.wrap_future(self._lookup_pool().submit(key))
        if record is not None:
            self.local.put(key, record)
        return record

    def get_remote_many(self, keys: Iterable[str]) -> dict[str, Record]:
        """:meth:`get_remote` for each of ``keys``, round trips overlapping; the hits by key."""
        unique = list(dict.fromkeys(keys))
        if not unique or all(tier.down for tier in self.tiers):
            return {}
        pool = self._lookup_pool()
        futures = [(key, pool.submit(key)) for key in unique]
        found = {}
        for key, future in futures:
            record = future.result()
            if record is not None:
                self.local.put(key, record)
                found[key] = record
        return found

    def _lookup_pool(self) -> LookupPool:
        if self._pool is None:
            self._pool = LookupPool(self._ask_remotes, [tier.remote for tier in self.tiers])
        return self._pool

    def _count(self, counter: Counter[str], name: str) -> None:
        with self._counting:
            counter[name] += 1

    def put(self, key: str, record: Record) -> None:
        self.local.put(key, record)
        if self._pusher is not None:
            self._pusher.push(key, record.to_bytes())

    def contains(self, key: str) -> bool:
        return bool(self.local.contains(key)) or any(t.has(key) for t in self.tiers)

    def remote_hits(self) -> dict[str, int]:
        """Hits served by each remote tier, by its name."""
        return {t.name: self.hits[t.name] for t in self.tiers if self.hits[t.name]}

    def close(self) -> None:
        """Finish lookups and pushes (bounded waits), record the lookups, close every tier."""
        try:
            if self._pool is not None:
                self._pool.close()
            if self._pusher is not None:
                self._pusher.close()
            self._write_stats()
        finally:
            try:
                self.local.close()
            finally:
                for tier in self.tiers:
                    tier.remote.close()

    def _write_stats(self) -> None:
        if self.stats_file is None:
            return
        tiers = [LOCAL] + [t.name for t in self.tiers]
        data = {
            "finished": time.time(),
            "tiers": [{"name": n, "lookups": self.lookups[n], "hits": self.hits[n]} for n in tiers],
            "pushed": self._pusher.pushed if self._pusher else 0,
            "push_failures": self._pusher.failed if self._pusher else 0,
        }
        try:
            self.stats_file.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            log.warning("cannot record cache statistics in %s (%s)", self.stats_file, exc)


class _LocalTier:
    """A layered store as planning sees it: its local tier only, counted the same way."""

    def __init__(self, store: LayeredStore):
        self._store = store

    def get(self, key: str) -> Record | None:
        return self._store.get_local(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Record]:
        return self._store.get_local_many(keys)


def remote_urls(
    explicit: Sequence[str] | str | None, configured: Sequence[str] | str | None
) -> list[str]:
    """The remotes to use: the command line's, else ``SYNTHC_REMOTE_CACHE``, else the config's."""
    for source in (explicit, os.environ.get(REMOTE_ENV), configured):
        urls = _as_list(source)
        if urls:
            return urls
    return []


def _as_list(value: Sequence[str] | str | None) -> list[str]:
    if value is None:
        return []
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    return [item for item in items if item]


def readonly_setting(explicit: bool | None, configured: bool) -> bool:
    """``--remote-cache-readonly``, else ``SYNTHC_REMOTE_CACHE_READONLY``, else the config's."""
    if explicit:
        return True
    env = os.environ.get(READONLY_ENV, "").strip().lower()
    if env:
        return env not in ("0", "false", "no", "off")
    return configured


def open_store(
    directory: Path,
    remotes: Sequence[str] = (),
    *,
    readonly: bool = False,
    write_behind: bool = False,
    record_stats: bool = False,
) -> LayeredStore:
    """The local cache at ``directory`` with ``remotes`` behind it."""
    opened = [open_remote(url) for url in remotes]
    if opened:  # the remotes' settings from the environment, refused now if malformed
        push_wait()
        lookup_threads()
    local = LocalStore(directory)
    store = LayeredStore(WriteBehind(local) if write_behind else local, opened, readonly=readonly)
    if record_stats:
        store.stats_file = directory / LAST_BUILD
    return store
