"""Hash canonical JSON into node keys; derive per-sample seeds.

A key is ``xxh3_128`` over canonical JSON (sorted keys, no spaces, UTF-8) of
the parts that decide a node's output, plus :data:`KEY_VERSION`. Never
``str(dict)``, never pickle: the same parts give the same key on every machine.
"""

from __future__ import annotations

import json
from typing import Any, NewType

import xxhash

KEY_VERSION = 1

NodeKey = NewType("NodeKey", str)
"""A content checksum: 32 hex digits. Not to be confused with a NodeId."""

NodeId = NewType("NodeId", str)
"""A readable, stable node name such as ``answer[17]``."""


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys, no spaces and no NaN: one text per value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def node_key(kind: str, parts: dict[str, Any]) -> NodeKey:
    """The key of a node of ``kind`` made of ``parts``."""
    payload = {"kind": kind, "key_version": KEY_VERSION, "parts": parts}
    return NodeKey(xxhash.xxh3_128_hexdigest(canonical_json(payload)))


def digest(value: Any) -> str:
    """A short content hash of any JSON value, for manifests and reasons."""
    return xxhash.xxh3_64_hexdigest(canonical_json(value))


def bytes_digest(data: bytes) -> str:
    """A content hash of raw bytes (a file, a database image)."""
    return xxhash.xxh3_128_hexdigest(data)


def node_id(rule: str, sample: int) -> NodeId:
    return NodeId(f"{rule}[{sample}]")


def derive_seed(seed: int, sample: int, name: str) -> int:
    """A 63-bit seed for (``seed``, sample, ``name``), stable across machines."""
    return xxhash.xxh3_64_intdigest(f"{seed}\x1f{sample}\x1f{name}".encode()) >> 1


def unit_draw(seed: int, sample: int, name: str) -> float:
    """A uniform number in [0, 1) drawn for (``seed``, sample, ``name``).

    The top 53 bits of the hash, so the float is exact and never rounds up to 1.0.
    """
    return (xxhash.xxh3_64_intdigest(f"{seed}\x1e{sample}\x1e{name}".encode()) >> 11) / 2.0**53
