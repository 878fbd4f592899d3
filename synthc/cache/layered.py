"""Stack cache tiers: a local store and remotes in; one Store that reads and writes through out.

``get`` asks the local tier, then each remote in order; a remote hit is
checked (its canonical request must hash to its key) and copied to the local
tier. ``put`` writes locally and queues the record for every remote; a
background thread pushes it, so the build never waits on the network. A
remote that fails is a warning, never a failed build: after
:data:`MAX_ERRORS` failures in a row it is switched off for the rest of the
run. Per-tier lookups and hits are counted for the summary and
``synthc cache stats``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synthc.cache.pusher import Pusher, Tier
from synthc.cache.remote import Remote, open_remote
from synthc.cache.store import LocalStore, Record
from synthc.cache.writer import WriteBehind
from synthc.compiler.keys import node_key

LOCAL = "local"
REMOTE_ENV = "SYNTHC_REMOTE_CACHE"
READONLY_ENV = "SYNTHC_REMOTE_CACHE_READONLY"
LAST_BUILD = "last-build.json"  # in the local cache directory: what the last build's lookups found
log = logging.getLogger("synthc.cache")


def checked(key: str, data: bytes, source: str) -> Record | None:
    """The record in ``data`` if this synthc reads it and its request hashes to ``key``."""
    try:
        record = Record.from_bytes(data)
        actual = node_key("llm", record.request)
    except (ValueError, TypeError, RecursionError) as exc:
        log.warning("ignoring unreadable record %s from %s (%s)", key, source, exc)
        return None
    if record.key != key or actual != key:
        log.warning(
            "refusing record %s from %s: its request hashes to %s (misfiled or tampered); "
            "it will be regenerated",
            key,
            source,
            actual,
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
        self._pusher = Pusher(self.tiers) if self.tiers and not readonly else None

    def get(self, key: str) -> Record | None:
        self.lookups[LOCAL] += 1
        record: Record | None = self.local.get(key)
        if record is not None:
            self.hits[LOCAL] += 1
            return record
        for tier in self.tiers:
            if tier.down:
                continue
            self.lookups[tier.name] += 1
            data = tier.fetch(key)
            record = checked(key, data, tier.name) if data is not None else None
            if record is not None:
                self.local.put(key, record)
                self.hits[tier.name] += 1
                return record
        return None

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
        """Finish pushing (bounded wait), record this run's lookups, close every tier."""
        try:
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
    local = LocalStore(directory)
    store = LayeredStore(WriteBehind(local) if write_behind else local, opened, readonly=readonly)
    if record_stats:
        store.stats_file = directory / LAST_BUILD
    return store
