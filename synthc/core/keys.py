"""Hash canonical JSON into node keys; derive per-sample seeds.

A key is ``xxh3_128`` over canonical JSON (sorted keys, no spaces, UTF-8) of
the parts that decide a node's output, plus :data:`KEY_VERSION`. Never
``str(dict)``, never pickle: the same parts give the same key on every machine.
"""

from __future__ import annotations

import json
import math
import re
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
    key ever made hashed. orjson writes the same bytes several times faster, except
    for a number with a short exponent (``1e-7`` where Python writes ``1e-07``), for
    what it cannot write (non-``str`` keys, huge integers, subclasses of ``str`` or
    ``int``), and for NaN and infinities, which it writes as null where ``json.dumps``
    refuses them: those values go to ``json.dumps``.
    """
    try:
        text = orjson.dumps(value, option=_ORJSON)
    except TypeError:
        return _json(value)
    if _EXPONENT.search(text) or (b"null" in text and _non_finite(value)):
        return _json(value)
    return text


_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS
_EXPONENT = re.compile(rb"[0-9]e[-+][0-9]")  # in a number, or (rarely) in a string


def _non_finite(value: Any) -> bool:
    """Whether ``value`` holds a NaN or an infinity anywhere."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is float and not math.isfinite(item):
            return True
        if type(item) is list or type(item) is tuple:
            stack.extend(item)
        elif type(item) is dict:
            stack.extend(item.values())
    return False


def _json(value: Any) -> bytes:
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
