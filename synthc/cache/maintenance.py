"""Look after a cache: a LocalStore (or a remote that lists) in; its statistics, or a
smaller cache, out.

``stats`` reports entries, bytes and what the last build's lookups found per
tier (written by the layered store to ``last-build.json``). ``gc`` removes
records generated before a cut-off and then the oldest ones until the records
fit in a size, and compacts the SQLite file so the disk space comes back.
``remote_stats`` and ``remote_gc`` do the same on a shared directory or a bucket,
by when each record was written there.
"""

from __future__ import annotations

import datetime
import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthc.cache.layered import LAST_BUILD
from synthc.cache.remote import Listing
from synthc.cache.store import LocalStore
from synthc.core.records import Record

SIZE_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """``5GB``, ``500M``, ``2GiB``, ``1024`` → bytes (KB/MB/GB are powers of 1000, KiB… of 1024)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(I?)B?\s*", text.upper())
    if match is None:
        raise ValueError(f"not a size: {text!r} (try 5GB or 500MiB)")
    number, unit, binary = match.groups()
    scale = 1024 ** ("KMGT".index(unit) + 1) if binary and unit else SIZE_UNITS[unit]
    return int(float(number) * scale)


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s`` → seconds."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])\s*", text.lower())
    if match is None:
        raise ValueError(f"not an age: {text!r} (try 30d or 12h)")
    return float(match[1]) * AGE_UNITS[match[2]]


@dataclass
class CacheStats:
    directory: Path
    entries: int
    disk_bytes: int
    last_build: dict[str, Any] | None = None

    def tier_lines(self) -> list[str]:
        """One line per tier of the last build: lookups, hits and the hit rate."""
        if not self.last_build:
            return []
        lines = []
        for tier in self.last_build.get("tiers", []):
            lookups, hits = int(tier.get("lookups", 0)), int(tier.get("hits", 0))
            rate = f"{hits / lookups:.0%}" if lookups else "-"
            lines.append(f"{tier.get('name')}: {hits} hits of {lookups} lookups ({rate})")
        return lines


def stats(store: LocalStore) -> CacheStats:
    return CacheStats(store.directory, len(store), store.volume(), _last_build(store.directory))


def _last_build(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / LAST_BUILD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class GcResult:
    removed: int = 0
    kept: int = 0
    bytes_removed: int = 0
    bytes_kept: int = 0
    removed_keys: list[str] = field(default_factory=list)


def gc(
    store: LocalStore,
    *,
    max_size: int | None = None,
    older_than: float | None = None,
    now: float | None = None,
) -> GcResult:
    """Remove records generated more than ``older_than`` seconds ago, then the oldest
    until the rest take at most ``max_size`` bytes; unreadable records go first."""
    cutoff = None if older_than is None else (time.time() if now is None else now) - older_than
    result = _choose(sorted(_entries(store)), cutoff, max_size)  # oldest first
    for key in result.removed_keys:
        store.delete(key)
    return result


def _choose(
    entries: list[tuple[float, int, str]], cutoff: float | None, max_size: int | None
) -> GcResult:
    """Which of ``entries`` ((when, size, key), oldest first) go: those from before
    ``cutoff``, then the oldest until the rest fit in ``max_size`` bytes."""
    total = sum(size for _, size, _ in entries)
    result = GcResult()
    for when, size, key in entries:
        expired = cutoff is not None and when < cutoff
        too_big = max_size is not None and total > max_size
        if expired or too_big:
            total -= size
            result.removed += 1
            result.bytes_removed += size
            result.removed_keys.append(key)
        else:
            result.kept += 1
            result.bytes_kept += size
    return result


def _entries(store: LocalStore) -> list[tuple[float, int, str]]:
    found = []
    for key in store.iter_keys():
        data = store.get_bytes(key)
        try:
            created = Record.from_bytes(data).created if data is not None else -1.0
        except (ValueError, TypeError, RecursionError):
            created = -1.0  # unreadable: first to go
        found.append((created, len(data or b""), key))
    return found


@dataclass
class RemoteStats:
    name: str
    entries: int = 0
    bytes: int = 0
    oldest: datetime.datetime | None = None
    newest: datetime.datetime | None = None


def remote_stats(remote: Listing) -> RemoteStats:
    """How many records ``remote`` holds, their bytes, the oldest and newest write."""
    found = RemoteStats(remote.name)
    for entry in remote.entries():
        found.entries += 1
        found.bytes += entry.size
        found.oldest = min(found.oldest or entry.modified, entry.modified)
        found.newest = max(found.newest or entry.modified, entry.modified)
    return found


DELETE_BATCH = 1000  # keys per delete request (S3's limit for one request)


def remote_gc(
    remote: Listing,
    *,
    max_size: int | None = None,
    older_than: float | None = None,
    now: float | None = None,
) -> GcResult:
    """Remove the records written to ``remote`` more than ``older_than`` seconds ago,
    then the oldest until the rest take at most ``max_size`` bytes."""
    now = time.time() if now is None else now
    cutoff = None if older_than is None else now - older_than
    entries = sorted((e.modified.timestamp(), e.size, e.key) for e in remote.entries())
    result = _choose(entries, cutoff, max_size)
    doomed = result.removed_keys
    for start in range(0, len(doomed), DELETE_BATCH):
        remote.delete(doomed[start : start + DELETE_BATCH])
    return result


def compact(directory: Path) -> None:
    """Give the space of deleted records back to the file system (SQLite VACUUM).

    Call with the cache closed; diskcache keeps its index in ``cache.db``."""
    database = directory / "cache.db"
    if database.exists():
        connection = sqlite3.connect(database)
        try:
            connection.execute("VACUUM")
        finally:
            connection.close()
