"""Build a JSON value that validates against a JSON schema, deterministically from a salt.

The fake server answers structured-output requests and tool calls with these
values. What is covered: ``type`` (one or a list), ``properties`` (every one,
required or not), ``required``, ``items``, ``prefixItems``, ``minItems`` and
``maxItems`` (one or two items otherwise), ``enum`` and ``const`` (the first
value), ``oneOf`` and ``anyOf`` (the first branch), ``allOf`` (merged),
``$ref`` into the same document (``#/$defs/...``), string lengths and the
common formats, number bounds. ``pattern`` and ``not`` are not honoured.

Strings are ``<property>-<n>-<salt>``: array items differ by ``n`` and requests
by salt, so ``uniqueItems`` holds and replies can be told apart.
"""

from __future__ import annotations

import math
from typing import Any

import xxhash

MAX_DEPTH = 12  # below this (or once a $ref recurs), optional properties and items are left out
FORMATS = {
    "date": "2024-01-15",
    "date-time": "2024-01-15T10:00:00Z",
    "time": "10:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
}


def schema_instance(schema: Any, salt: str = "") -> Any:
    """A value valid against ``schema``; the same schema and salt give the same value."""
    return _Builder(schema, salt).build(schema, "value", 0, 0)


class _Builder:
    def __init__(self, root: Any, salt: str):
        self.root = root
        self.tag = xxhash.xxh64_hexdigest(salt.encode())[:6]
        self.spread = int(self.tag, 16) % 2  # 0 or 1 extra array item
        self.refs: list[str] = []  # the $refs followed on the way to the value being built

    def build(self, schema: Any, name: str, index: int, depth: int) -> Any:
        if depth > 4 * MAX_DEPTH:
            raise ValueError(f"the schema requires values nested over {4 * MAX_DEPTH} deep")
        if not isinstance(schema, dict):  # `true` (anything) or a schema we cannot read
            return self.string({}, name, index)
        schema, refs = self.flatten(schema)
        if any(ref in self.refs for ref in refs):  # recursion: only what is required from here
            depth = max(depth, MAX_DEPTH)
        self.refs += refs
        try:
            return self.value(schema, name, index, depth)
        finally:
            del self.refs[len(self.refs) - len(refs) :]

    def value(self, schema: dict[str, Any], name: str, index: int, depth: int) -> Any:
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        kind = _kind(schema)
        if kind == "object":
            return self.object(schema, index, depth)
        if kind == "array":
            return self.array(schema, name, index, depth)
        if kind in ("integer", "number"):
            return _number(schema, index, kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self.string(schema, name, index)

    def flatten(self, schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """``schema`` with ``$ref`` followed, ``allOf`` merged and the first
        ``oneOf``/``anyOf`` branch merged in; and the refs it followed."""
        refs: list[str] = []
        for _ in range(MAX_DEPTH):
            if "$ref" in schema:
                refs.append(schema["$ref"])
                rest = {k: v for k, v in schema.items() if k != "$ref"}
                schema = _merge(rest, self.resolve(schema["$ref"]))
            elif schema.get("allOf"):
                rest = {k: v for k, v in schema.items() if k != "allOf"}
                for part in schema["allOf"]:
                    rest = _merge(rest, part if isinstance(part, dict) else {})
                schema = rest
            elif schema.get("oneOf") or schema.get("anyOf"):
                key = "oneOf" if schema.get("oneOf") else "anyOf"
                rest = {k: v for k, v in schema.items() if k != key}
                first = schema[key][0]
                schema = _merge(rest, first if isinstance(first, dict) else {})
            else:
                return schema, refs
        raise ValueError(f"schema references nest deeper than {MAX_DEPTH} levels")

    def resolve(self, ref: str) -> dict[str, Any]:
        """The schema a local ``$ref`` (``#/$defs/Name``, any JSON pointer) points at."""
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, not {ref!r}")
        node: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        if not isinstance(node, dict):
            raise ValueError(f"$ref {ref!r} is not a schema object")
        return node

    def object(self, schema: dict[str, Any], index: int, depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        names = list(properties) if depth < MAX_DEPTH else []
        names += [n for n in required if n not in names]
        return {n: self.build(properties.get(n, {}), n, index, depth + 1) for n in names}

    def array(self, schema: dict[str, Any], name: str, index: int, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems") or []
        low = int(schema.get("minItems", 0))
        count = max(low, 1 + self.spread if depth < MAX_DEPTH else low, len(prefix))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items", {})
        item_name = name[:-1] if name.endswith("s") and len(name) > 1 else name
        schemas = [prefix[i] if i < len(prefix) else items for i in range(count)]
        return [self.build(s, item_name, index + i, depth + 1) for i, s in enumerate(schemas)]

    def string(self, schema: dict[str, Any], name: str, index: int) -> str:
        text = FORMATS.get(str(schema.get("format")), f"{name}-{index + 1}-{self.tag}")
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        text = text.ljust(low, "x")
        return text[: int(high)] if high is not None else text


def _kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _number(schema: dict[str, Any], index: int, integer: bool) -> int | float:
    """``index + 1`` (integers) or ``index + 1.5``, moved inside the schema's bounds."""
    value: float = index + (1 if integer else 1.5)
    low, high = schema.get("minimum"), schema.get("maximum")
    if schema.get("exclusiveMinimum") is not None:
        low = schema["exclusiveMinimum"] + (1 if integer else 0.5)
    if schema.get("exclusiveMaximum") is not None:
        high = schema["exclusiveMaximum"] - (1 if integer else 0.5)
    if low is not None:
        value = max(value, math.ceil(low) if integer else low)
    if high is not None:
        value = min(value, math.floor(high) if integer else high)
    return int(value) if integer else float(value)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Two schemas as one: properties and required lists united, other keys from ``extra``."""
    merged = {**base, **extra}
    if "properties" in base and "properties" in extra:
        merged["properties"] = {**base["properties"], **extra["properties"]}
    if "required" in base and "required" in extra:
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    return merged
