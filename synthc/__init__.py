"""synthc: a compiler and build system for LLM-generated training data.

Reads oumi synth configs, compiles them into a content-addressed task graph
and builds it incrementally against an on-disk cache::

    import synthc
    result = synthc.build("config.yaml", {"num_samples": 50})   # or ["--num_samples", "50"]
    result.rows, result.to_pandas(), result.to_dataset()        # what it wrote
    report = synthc.explain("config.yaml")    # what would run and why, sending nothing
    synthc.preview("config.yaml", samples=5)  # the first 5 samples for real, then the cost
    synthc.build("config.yaml", batch=True)   # through the provider's batch API, half price
    synthc.build({"num_samples": 5, "strategy_params": {...}})  # a dict, or YAML/.synth text
    await synthc.abuild("config.yaml")        # from async code; build() works in Jupyter too
    synthc.export("config.yaml", format="messages")   # trainer-ready rows, from the cache
    synthc.push("config.yaml", "me/my-dataset")       # rows + dataset card to the Hub (HF_TOKEN)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthc.cache.store import LocalStore
    from synthc.compiler.graph import Graph
    from synthc.compiler.lower import lower
    from synthc.compiler.validate import Spec
    from synthc.core.errors import (
        BatchesPending,
        BuildFailed,
        CacheError,
        ConfigError,
        Diagnostic,
        EngineError,
        Span,
        SynthError,
        UnsupportedFeature,
    )
    from synthc.core.keys import KEY_VERSION, NodeId, NodeKey
    from synthc.core.messages import ToolResult
    from synthc.core.records import Record, Store
    from synthc.pipeline import (
        BuildResult,
        Preview,
        abuild,
        build,
        compile,
        explain,
        export,
        load,
        preview,
        push,
        why,
    )
    from synthc.planning.explain import Explanation
    from synthc.planning.plan import Plan, Status, plan

# Loaded on first use, so `synthc --help` and `import synthc` stay quick.
_EXPORTS = {
    "LocalStore": "synthc.cache.store",
    "Record": "synthc.core.records",
    "Store": "synthc.core.records",
    "Graph": "synthc.compiler.graph",
    "KEY_VERSION": "synthc.core.keys",
    "NodeId": "synthc.core.keys",
    "NodeKey": "synthc.core.keys",
    "lower": "synthc.compiler.lower",
    "Plan": "synthc.planning.plan",
    "Status": "synthc.planning.plan",
    "plan": "synthc.planning.plan",
    "Spec": "synthc.compiler.validate",
    "BatchesPending": "synthc.core.errors",
    "BuildFailed": "synthc.core.errors",
    "CacheError": "synthc.core.errors",
    "ConfigError": "synthc.core.errors",
    "Diagnostic": "synthc.core.errors",
    "EngineError": "synthc.core.errors",
    "Span": "synthc.core.errors",
    "SynthError": "synthc.core.errors",
    "UnsupportedFeature": "synthc.core.errors",
    "BuildResult": "synthc.pipeline",
    "Preview": "synthc.pipeline",
    "preview": "synthc.pipeline",
    "abuild": "synthc.pipeline",
    "build": "synthc.pipeline",
    "compile": "synthc.pipeline",
    "explain": "synthc.pipeline",
    "export": "synthc.pipeline",
    "push": "synthc.pipeline",
    "why": "synthc.pipeline",
    "Explanation": "synthc.planning.explain",
    "ToolResult": "synthc.core.messages",
    "load": "synthc.pipeline",
}

__all__ = [
    "KEY_VERSION",
    "BatchesPending",
    "BuildFailed",
    "BuildResult",
    "CacheError",
    "ConfigError",
    "Diagnostic",
    "EngineError",
    "Explanation",
    "Graph",
    "LocalStore",
    "NodeId",
    "NodeKey",
    "Plan",
    "Preview",
    "Record",
    "Span",
    "Spec",
    "Status",
    "Store",
    "SynthError",
    "ToolResult",
    "UnsupportedFeature",
    "abuild",
    "build",
    "compile",
    "explain",
    "export",
    "load",
    "lower",
    "plan",
    "preview",
    "push",
    "why",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'synthc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
