"""Say why a node must run: what is known of it now and in the last manifest in, named reasons out.

A small table of named checks, each one comparison, in the manner of dbt's
state selectors (``new``, ``modified.body``...). A node that must run gets
every check that fires; a node whose key is unchanged but whose result is not
in the cache gets ``missing``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from synthc.planning.manifest import Manifest
from synthc.planning.plan import Status

MAX_DIFF_LINES = 8


@dataclass(frozen=True)
class Reason:
    check: str  # new | failed | modified.model | modified.params | modified.template |
    #             modified.sampling | modified.upstream | modified.tool | missing
    detail: str


@dataclass(frozen=True)
class NodeFacts:
    """What the plan knows of one node that must run (its key only if its inputs are known)."""

    id: str
    rule: str
    sample: int
    key: str | None
    sample_key: str
    engine: str
    model: str
    params: dict[str, Any]
    template: str  # the rule's digest now
    messages: list[tuple[str, str]]  # the rule's templates now
    inputs: dict[str, str | None]  # dep → value digest; None while the upstream must run
    sampled: dict[str, str]  # sampled dep → value id
    upstream_running: tuple[str, ...]
    tool: dict[str, Any] | None = None  # an executor call: the parts of its key


Check = Callable[[NodeFacts, dict[str, Any], Manifest], str | None]


def _failed(facts: NodeFacts, old: dict[str, Any], manifest: Manifest) -> str | None:
    if old.get("status") != Status.FAILED:
        return None
    return f"failed last time: {old.get('error', 'unknown error')}"


def _model(facts: NodeFacts, old: dict[str, Any], manifest: Manifest) -> str | None:
    parts = old.get("parts") or {}
    before = f"{parts.get('engine')} {parts.get('model')}"
    now = f"{facts.engine} {facts.model}"
    return f"model {before} → {now}" if parts and before != now else None


def _params(facts: NodeFacts, old: dict[str, Any], manifest: Manifest) -> str | None:
    parts = old.get("parts")
    if not parts or parts.get("params") == facts.params:
        return None
    before, now = parts.get("params") or {}, facts.params
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    return "; ".join(f"{k} {before.get(k, 'default')} → {now.get(k, 'default')}" for k in changed)


def _template(facts: NodeFacts, old: dict[str, Any], manifest: Manifest) -> str | None:
    previous = manifest.rules.get(facts.rule, {})
    if not previous or previous.get("digest") == facts.template:
        return None
    return template_diff(manifest.rule_messages(facts.rule) or [], facts.messages, facts.rule)


def _sampling(facts: NodeFacts, old: dict[str, Any], manifest: Manifest) -> str | None:
    before = old.get("sampled") or {}
    inputs = (old.get("parts") or {}).get("inputs") or {}
    changed = []
    for attr, value in facts.sampled.items():
        if attr in before and before[attr] != value:
            changed.append(f"{attr} {before[attr]} → {value}")
        elif attr in inputs and inputs[attr] != facts.inputs.get(attr):
            changed.append(f"{attr} value {value} was redefined (name or description)")
    return "; ".join(changed) or None


def _upstream(facts: NodeFacts, old: dict[str, Any], manifest: Manifest) -> str | None:
    if facts.upstream_running:
        return f"upstream {', '.join(facts.upstream_running)} must run first"
    before = (old.get("parts") or {}).get("inputs") or {}
    changed = [
        dep
        for dep, now in facts.inputs.items()
        if dep not in facts.sampled and dep in before and before[dep] != now
    ]
    return f"upstream {', '.join(changed)} changed" if changed else None


def _tool(facts: NodeFacts, old: dict[str, Any], manifest: Manifest) -> str | None:
    """An executor call whose result may differ: its source or its environment edited."""
    before, now = old.get("parts") or {}, facts.tool or {}
    changed = []
    if before.get("executor") != now.get("executor"):
        changed.append(f"executor {now.get('executor_name')} edited")
    if before.get("env") != now.get("env"):
        changed.append("its environment edited")
    return f"tool result changed: {', '.join(changed)}" if changed else None


CHECKS: tuple[tuple[str, Check], ...] = (
    ("failed", _failed),
    ("modified.model", _model),
    ("modified.params", _params),
    ("modified.template", _template),
    ("modified.sampling", _sampling),
    ("modified.upstream", _upstream),
)
TOOL_CHECKS: tuple[tuple[str, Check], ...] = (
    ("failed", _failed),
    ("modified.tool", _tool),
    ("modified.upstream", _upstream),
)


def reasons(facts: NodeFacts, manifest: Manifest | None) -> list[Reason]:
    """Why the node described by ``facts`` must run, against the last build's ``manifest``."""
    old = manifest.nodes.get(facts.id) if manifest is not None else None
    if manifest is None or old is None:
        where = (
            "no previous build" if manifest is None else "the sample is new since the last build"
        )
        return [Reason("new", where)]
    checks = CHECKS if facts.tool is None else TOOL_CHECKS
    found = [
        Reason(name, detail) for name, check in checks if (detail := check(facts, old, manifest))
    ]
    if not found:
        same_key = facts.key is not None and facts.key == old.get("key")
        detail = "its result is not in this cache" if same_key else "its inputs changed"
        found.append(Reason("missing" if same_key else "modified.upstream", detail))
    return found


def template_diff(before: list[tuple[str, str]], now: list[tuple[str, str]], rule: str) -> str:
    """A short unified diff of a rule's messages, one ``role: text`` block per message."""
    old_lines = [f"{role}: {line}" for role, text in before for line in text.splitlines() or [""]]
    new_lines = [f"{role}: {line}" for role, text in now for line in text.splitlines() or [""]]
    diff = [
        f"{line[0]} {line[1:]}"
        for line in difflib.unified_diff(old_lines, new_lines, lineterm="", n=0)
        if not line.startswith(("---", "+++", "@@"))
    ]
    shown = diff[:MAX_DIFF_LINES]
    if len(diff) > len(shown):
        shown.append(f"… {len(diff) - len(shown)} more changed lines")
    return f"template of {rule} changed:\n" + "\n".join(shown)
