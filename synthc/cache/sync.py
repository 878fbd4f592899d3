"""Sync one build's records with the remotes: keys and a layered store in, counts out.

``push`` sends the local records of the given keys (a build's manifest) to every
remote that lacks them. ``pull`` walks a graph against the layered store, as a
build would but sending nothing: every node a remote can answer is checked and
copied to the local tier, including nodes whose prompt depends on another
pulled answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from synthc.cache.layered import LOCAL, LayeredStore

if TYPE_CHECKING:
    from synthc.compiler.graph import Graph


@dataclass
class PushResult:
    pushed: dict[str, int] = field(default_factory=dict)  # remote name → records sent
    present: dict[str, int] = field(default_factory=dict)  # remote name → already there
    failed: dict[str, int] = field(default_factory=dict)
    missing: int = 0  # keys with no local record


def push(store: LayeredStore, keys: Iterable[str]) -> PushResult:
    """Send each key's local record to every remote that does not have it yet."""
    result = PushResult()
    for tier in store.tiers:
        result.pushed[tier.name] = result.present[tier.name] = result.failed[tier.name] = 0
    for key in dict.fromkeys(keys):
        record = store.local.get(key)
        if record is None:
            result.missing += 1
            continue
        data = record.to_bytes()
        for tier in store.tiers:
            if tier.has(key):
                result.present[tier.name] += 1
            elif tier.store(key, data):
                result.pushed[tier.name] += 1
            else:
                result.failed[tier.name] += 1
    return result


@dataclass
class PullResult:
    pulled: dict[str, int]  # remote name → records copied to the local cache
    local: int  # nodes the local cache already had
    missing: int  # nodes no tier has: a build would send them


def pull(store: LayeredStore, graph: Graph) -> PullResult:
    """Copy every node of ``graph`` that a remote has (and the local tier lacks) to local."""
    from synthc.planning.plan import Status, plan

    result = plan(graph, store)
    missing = result.total(Status.RUN) + result.total(Status.BLOCKED)
    return PullResult(store.remote_hits(), store.hits[LOCAL], missing)
