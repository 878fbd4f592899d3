"""Hash canonical JSON into node keys; derive per-sample seeds.

A key is ``xxh3_128`` over canonical JSON (sorted keys, no spaces, UTF-8) of
the parts that decide a node's output, plus :data:`KEY_VERSION`. Never
``str(dict)``, never pickle: the same parts give the same key on every machine.
"""

from __future__ import annotations

import json
from typing import Any, NewType

import orjson
import xxhash

KEY_VERSION = 1

NodeKey = NewType("NodeKey", str)
"""A content checksum: 32 hex digits. Not to be confused with a NodeId."""

NodeId = NewType("NodeId", str)
"""A readable, stable node name such as ``answer[17]``."""


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys, no spaces and no NaN: one text per value.

    The text is ``json.dumps``'s (sorted keys, ``,`` and ``:``, UTF-8), which every
    key ever made hashed. orjson writes the same bytes several times faster for plain
    values: ``str`` keys, 64-bit integers, and floats that Python writes without an
    exponent (0, or 1e-4 <= |x| < 1e16; below that orjson writes ``0.00001`` where
    Python writes ``1e-05``). Anything else (such a float, NaN, a subclass of ``str``
    such as an enum) is written by ``json.dumps``, which refuses NaN.
    """
    if _plain(value):
        try:  # a non-str key or an integer beyond 64 bits: TypeError, and json.dumps
            return orjson.dumps(value, option=_ORJSON)
        except TypeError:
            pass
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _plain(value: Any) -> bool:
    """Whether every value in ``value`` is one orjson writes as ``json.dumps`` does (see
    canonical_json); its keys and integers orjson checks itself."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if item != 0 and not 1e-4 <= abs(item) < 1e16:  # NaN and infinities fail too
                return False
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is dict:
            stack.extend(item.values())
        else:
            return False
    return True


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
