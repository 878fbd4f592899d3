"""What the cache holds and how the layers above ask for it: a Record per node key, and the
Lookup / Store / Tiered protocols that planning and the runtime depend on.

A :class:`Record` is the output of one node and its provenance (the canonical
request, the model the provider reported, token usage, latency, time). Records
are JSON, never pickle, and carry a version. Three kinds share the shape:
``llm`` (a model's answer), ``tool`` (an executor's answer; ``state`` names the
environment state it left) and ``state`` (an environment state itself, the text
of a JSON value or of a base64 SQLite image).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

from synthc.core.keys import node_key

RECORD_VERSION = 1


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
    kind: str = "llm"  # "llm" | "tool" | "state": what made it, and how its key is hashed
    state: str = ""  # a tool record: the key of the environment state the call left
    build: str = ""  # the id of the build that made it (its manifest calls it generated)

    def to_bytes(self) -> bytes:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}  # no deep copy
        for name, default in _OMITTED:  # an LLM record without tool calls keeps its old bytes
            if fields[name] == default:
                del fields[name]
        return orjson.dumps(fields)

    def hashes_to(self, key: str) -> bool:
        """Whether this record was made for ``key``: its request hashes to it under its kind."""
        return self.key == key == node_key(self.kind, self.request)

    @classmethod
    def from_bytes(cls, data: bytes) -> Record:
        """Parse a stored record; raise ValueError if it is not one this synthc can read."""
        raw = orjson.loads(data)
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
        if raw.get("kind", "llm") not in KINDS or not isinstance(raw.get("state", ""), str):
            raise ValueError(f"record of unknown kind {raw.get('kind')!r}")
        if not isinstance(raw.get("build", ""), str):
            raise ValueError("record with a malformed build id")
        return cls(**raw)


def is_record_of(data: bytes, key: str) -> bool:
    """Whether ``data`` is a record this synthc reads whose request hashes to ``key``."""
    try:
        return Record.from_bytes(data).hashes_to(key)
    except (ValueError, TypeError, KeyError, RecursionError):
        return False


KINDS = ("llm", "tool", "state")
_OMITTED: tuple[tuple[str, Any], ...] = (
    ("tool_calls", []),
    ("kind", "llm"),
    ("state", ""),
    ("build", ""),
)


class Lookup(Protocol):
    """What planning asks of a store: the record filed under a key, or None."""

    def get(self, key: str) -> Record | None: ...


@runtime_checkable
class ManyLookup(Lookup, Protocol):
    """A lookup that answers many keys in one call (one query, not one per key)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, Record]: ...


def get_many(store: Lookup, keys: Sequence[str]) -> dict[str, Record]:
    """The records of those ``keys`` that ``store`` has, by key: in one call where the
    store can, else one ``get`` per key."""
    if isinstance(store, ManyLookup):
        return store.get_many(keys)
    found = {}
    for key in dict.fromkeys(keys):
        record = store.get(key)
        if record is not None:
            found[key] = record
    return found


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
