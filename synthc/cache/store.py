"""Store and fetch node results by key: a small Store interface and its local diskcache tier.

A :class:`Record` is the output of one node and its provenance (the canonical
request, the model the provider reported, token usage, latency, time). Records
are JSON, never pickle, and carry a version; an unreadable record is evicted
with a warning and counts as a miss, so it is regenerated. A damaged SQLite
file is moved aside with a warning and replaced by a fresh one holding every
record that could still be read (:mod:`synthc.cache.recover`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import diskcache
from diskcache.core import MODE_RAW

from synthc.core.errors import CacheError
from synthc.core.records import Record

log = logging.getLogger("synthc.cache")
T = TypeVar("T")


class LocalStore:
    """Records in a diskcache directory; safe for several processes at once."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._recovering = threading.Lock()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._cache = self._open()
        except (OSError, sqlite3.Error) as exc:
            if not _corrupt(exc):
                raise CacheError(f"cannot open the cache at {directory}: {exc}") from None
            self._cache = None
            self._recover(None, exc)

    def _open(self) -> Any:
        return diskcache.Cache(
            str(self.directory),
            disk=_StrictDisk,
            eviction_policy="none",
            size_limit=2**62,
            statistics=False,
            tag_index=False,
            sqlite_synchronous=1,
        )

    def _recover(self, failed: Any, exc: BaseException) -> None:
        """Replace the damaged database ``failed`` (unless another thread already did)."""
        from synthc.cache.recover import rebuild

        with self._recovering:
            if self._cache is not failed:
                return
            log.warning("the cache database in %s is damaged (%s)", self.directory, exc)
            if failed is not None:
                failed.close()
            try:
                self._cache, moved, rescued = rebuild(self.directory, self._open)
            except (OSError, sqlite3.Error) as again:
                raise CacheError(f"cannot repair the cache at {self.directory}: {again}") from None
            log.warning(
                "moved it to %s and kept the %d records that could still be read; "
                "the others will be regenerated",
                moved.name,
                rescued,
            )

    def _guarded(self, operation: Callable[[Any], T], doing: str) -> T:
        """``operation(cache)``; a damaged database is repaired and the operation retried once."""
        cache = self._cache
        try:
            return operation(cache)
        except (OSError, sqlite3.Error) as exc:
            if not _corrupt(exc):
                raise CacheError(f"cannot {doing} the cache at {self.directory}: {exc}") from None
            self._recover(cache, exc)
        try:
            return operation(self._cache)
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot {doing} the cache at {self.directory}: {exc}") from None

    def get(self, key: str) -> Record | None:
        try:
            data = self._guarded(lambda cache: cache.get(key), "read")
        except CacheError:
            raise
        except Exception as exc:  # diskcache could not decode the value (a garbled pickle)
            self._evict(key, exc)
            return None
        return self._checked(key, data)

    def get_many(self, keys: Sequence[str]) -> dict[str, Record]:
        """The records of those ``keys`` that are here, by key: one query per 500 keys.

        Rows kept inline (every record ``put_many`` writes) are read straight from the
        query; any other row (a value file, a value diskcache would decode) through
        :meth:`get`, so a missing file or a garbled value is handled exactly as there.
        """
        unique = list(dict.fromkeys(keys))
        rows = self._guarded(lambda cache: _select_in(cache, _SELECT_MANY, unique), "read")
        found: dict[str, Record] = {}
        for key, mode, value in rows:
            record = self._checked(key, value) if mode == MODE_RAW else self.get(key)
            if record is not None:
                found[key] = record
        return found

    def _checked(self, key: str, data: Any) -> Record | None:
        """The record ``data`` holds if it is one, filed under ``key``; else evicted."""
        if data is None:
            return None
        try:
            if not isinstance(data, bytes):
                raise TypeError(f"stored value is {type(data).__name__}, not bytes")
            record = Record.from_bytes(data)
            if record.key != key:
                raise ValueError(f"record filed under another key ({record.key})")
            return record
        except (ValueError, TypeError, RecursionError) as exc:
            self._evict(key, exc)
            return None

    def _evict(self, key: str, reason: Exception) -> None:
        log.warning("evicting unreadable cache record %s (%s); it will be regenerated", key, reason)
        self._guarded(lambda cache: cache.delete(key), "write to")

    def put(self, key: str, record: Record) -> None:
        data = record.to_bytes()
        self._guarded(lambda cache: cache.set(key, data), "write to")

    def put_many(self, items: list[tuple[str, Record]]) -> None:
        """Write several records in one transaction: one upsert statement for them all.

        The rows are diskcache's own (a ``str`` key, the value inline), so every reader
        and maintenance command sees them as if ``Cache.set`` had written them; its
        triggers keep the count and size. A value file an older row pointed to is
        removed once the transaction commits, as ``Cache.set`` would. A record too
        large to keep inline goes through ``Cache.set``, into a value file.
        """
        encoded = [(key, record.to_bytes()) for key, record in items]

        def write(cache: Any) -> None:
            now, inline = time.time(), cache.disk_min_file_size
            rows = [(key, now, now, data) for key, data in encoded if len(data) < inline]
            large = [(key, data) for key, data in encoded if len(data) >= inline]
            with cache.transact():
                stale = _value_files(cache, [key for key, *_ in rows])
                cache._con.executemany(_UPSERT, rows)
                for key, data in large:
                    cache.set(key, data)
            for name in stale:
                cache._disk.remove(name)

        self._guarded(write, "write to")

    def contains(self, key: str) -> bool:
        return bool(self._guarded(lambda cache: key in cache, "read"))

    def close(self) -> None:
        self._cache.close()

    # Maintenance (synthc cache stats / gc / export): not part of the Store interface.

    def iter_keys(self) -> Iterator[str]:
        """Every key in the cache, in no particular order."""
        for key in self._guarded(lambda cache: list(cache.iterkeys()), "read"):
            if isinstance(key, str):
                yield key

    def get_bytes(self, key: str) -> bytes | None:
        """The stored bytes of ``key``, unparsed; None when missing or not bytes."""
        try:
            data = self._cache.get(key)
        except Exception:  # a garbled value: maintenance skips it, get() evicts it
            return None
        return data if isinstance(data, bytes) else None

    def delete(self, key: str) -> None:
        self._guarded(lambda cache: cache.delete(key), "write to")

    def __len__(self) -> int:
        return int(self._guarded(len, "read"))

    def volume(self) -> int:
        """Bytes the cache takes on disk."""
        return int(self._cache.volume())


_SELECT_MANY = "SELECT key, mode, value FROM Cache WHERE raw = 1"
_SELECT_FILES = "SELECT filename FROM Cache WHERE raw = 1 AND filename IS NOT NULL"
KEYS_PER_QUERY = 500  # SQLite allows at most 999 parameters

# a record as diskcache stores a str key and bytes kept inline (raw key, MODE_RAW value)
_UPSERT = (
    "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, "
    "size, mode, filename, value) VALUES (?, 1, ?, NULL, ?, 0, NULL, 0, 1, NULL, ?) "
    "ON CONFLICT (key, raw) DO UPDATE SET store_time = excluded.store_time, "
    "expire_time = NULL, access_time = excluded.access_time, size = 0, mode = 1, "
    "filename = NULL, value = excluded.value"
)


def _select_in(cache: Any, select: str, keys: list[str]) -> list[tuple[Any, ...]]:
    """The rows of ``select`` (a query ending in its WHERE conditions) whose key is one of
    ``keys``, :data:`KEYS_PER_QUERY` keys a query."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        rows += cache._con.execute(f"{select} AND key IN ({marks})", chunk)
    return rows


def _value_files(cache: Any, keys: list[str]) -> list[str]:
    """The value files the rows of ``keys`` point to now (large values diskcache wrote)."""
    return [name for (name,) in _select_in(cache, _SELECT_FILES, keys)]


class MissingValueFile(Exception):
    """A record diskcache lists whose value file is gone (deleted, or a half-copied cache)."""


class _StrictDisk(diskcache.Disk):  # type: ignore[misc]
    """diskcache's Disk, but a missing value file is an error, not a silent miss, so it is
    evicted with a warning in the same lookup (no second query on every miss)."""

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        try:
            return super().fetch(mode, filename, value, read)
        except OSError:
            raise MissingValueFile("its value file is missing") from None


def _corrupt(exc: BaseException) -> bool:
    from synthc.cache.recover import is_corrupt

    return is_corrupt(exc)


def default_cache_dir(config_path: Path, override: str | None = None) -> Path:
    """``--cache-dir``, else ``SYNTHC_CACHE_DIR``, else ``.synthc/cache`` beside the config."""
    chosen = override or os.environ.get("SYNTHC_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser()
    return config_path.resolve().parent / ".synthc" / "cache"
