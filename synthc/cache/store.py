"""Store and fetch node results by key: a small Store interface and its local diskcache tier.

A :class:`Record` is the output of one node and its provenance (the canonical
request, the model the provider reported, token usage, latency, time). Records
are JSON, never pickle, and carry a version; an unreadable record is evicted
with a warning and counts as a miss, so it is regenerated. A damaged SQLite
file is moved aside with a warning and replaced by a fresh one holding every
record that could still be read (:mod:`synthc.cache.recover`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import diskcache

from synthc.errors import CacheError

RECORD_VERSION = 1
log = logging.getLogger("synthc.cache")
T = TypeVar("T")


@dataclass(frozen=True)
class Record:
    key: str
    text: str
    request: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    latency: float = 0.0
    created: float = 0.0
    version: int = RECORD_VERSION
    tool_calls: list[dict[str, str]] = field(default_factory=list)  # {id, name, arguments}

    def to_bytes(self) -> bytes:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}  # no deep copy
        if not self.tool_calls:
            del fields["tool_calls"]  # records without tool calls keep their old bytes
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Record:
        """Parse a stored record; raise ValueError if it is not one this synthc can read."""
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("not a record")
        if raw.get("version") != RECORD_VERSION:
            raise ValueError(f"record version {raw.get('version')!r}, expected {RECORD_VERSION}")
        if not isinstance(raw.get("text"), str) or not isinstance(raw.get("key"), str):
            raise ValueError("record without text")
        calls = raw.get("tool_calls", [])
        fields = ("id", "name", "arguments")
        if not isinstance(calls, list) or not all(
            isinstance(c, dict) and all(isinstance(c.get(k), str) for k in fields) for c in calls
        ):
            raise ValueError("record with malformed tool_calls")
        return cls(**raw)


class Lookup(Protocol):
    """What planning asks of a store: the record filed under a key, or None."""

    def get(self, key: str) -> Record | None: ...


class Store(Lookup, Protocol):
    def put(self, key: str, record: Record) -> None: ...

    def contains(self, key: str) -> bool: ...

    def close(self) -> None: ...


@runtime_checkable
class Tiered(Protocol):
    """A store with remote tiers behind its local one (:class:`synthc.cache.layered.LayeredStore`).

    Planning asks ``local_tier`` only, which is fast; the nodes that miss there
    are then looked up on the remotes with their round trips overlapping:
    together (``get_remote_many``) or one by one from an event loop, which goes
    on meanwhile (``fetch_remote``). A remote hit is checked, copied to the
    local tier and counted, exactly as ``get`` would.
    """

    local_tier: Lookup

    @property
    def has_remotes(self) -> bool: ...

    def get_remote_many(self, keys: Iterable[str]) -> dict[str, Record]: ...

    async def fetch_remote(self, key: str) -> Record | None: ...


def remote_tiers(store: Lookup) -> Tiered | None:
    """``store`` if it has remote tiers to ask after its local one; else None."""
    return store if isinstance(store, Tiered) and store.has_remotes else None


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
        """Write several records in one transaction (one commit, not one per record)."""
        encoded = [(key, record.to_bytes()) for key, record in items]

        def write(cache: Any) -> None:
            with cache.transact():
                for key, data in encoded:
                    cache.set(key, data)

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
