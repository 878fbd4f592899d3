"""Read the manifest a build left behind: a path in, the previous build's nodes by id out.

The manifest (written by :mod:`synthc.runtime.output`) is JSON lines: a header
with every rule's dependencies, digest and message templates, then one entry
per LLM node with its key, status and the parts its key was made of. A
missing or unreadable manifest is no previous build, not an error.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from synthc.core.keys import KEY_VERSION

MANIFEST_VERSION = 1
log = logging.getLogger("synthc.manifest")


@dataclass(frozen=True)
class Manifest:
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # node id → entry
    num_samples: int = 0

    def rule_messages(self, rule_id: str) -> list[tuple[str, str]] | None:
        messages = self.rules.get(rule_id, {}).get("messages")
        return [(str(role), str(text)) for role, text in messages] if messages else None


def load_manifest(path: Path) -> Manifest | None:
    """The manifest at ``path``, or None when there is none this synthc can read."""
    try:
        with path.open(encoding="utf-8") as lines:
            header = json.loads(next(lines))
            if header.get("manifest_version") != MANIFEST_VERSION:
                return None
            if header.get("key_version") != KEY_VERSION:
                return None  # keys are not comparable: every node is new
            nodes = {}
            for line in lines:
                entry = orjson.loads(line)
                nodes[entry["id"]] = entry
    except (OSError, StopIteration):
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable manifest %s (%s)", path, exc)
        return None
    return Manifest(header.get("rules", {}), nodes, int(header.get("num_samples", 0)))
