"""synthc: a compiler and build system for LLM-generated training data.

Reads oumi synth configs, compiles them into a content-addressed task graph
and builds it incrementally against an on-disk cache::

    import synthc
    result = synthc.build("config.yaml", ["--num_samples", "50"])
    report = synthc.explain("config.yaml")    # what would run and why, sending nothing
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthc.cache.store import LocalStore, Record, Store
    from synthc.compiler.executors import ToolResult
    from synthc.compiler.explain import Explanation
    from synthc.compiler.graph import Graph
    from synthc.compiler.keys import KEY_VERSION, NodeId, NodeKey
    from synthc.compiler.lower import lower
    from synthc.compiler.plan import Plan, Status, plan
    from synthc.compiler.validate import Spec
    from synthc.errors import (
        BuildFailed,
        CacheError,
        ConfigError,
        Diagnostic,
        EngineError,
        Span,
        SynthError,
        UnsupportedFeature,
    )
    from synthc.pipeline import BuildResult, build, compile, explain, load, why

# Loaded on first use, so `synthc --help` and `import synthc` stay quick.
_EXPORTS = {
    "LocalStore": "synthc.cache.store",
    "Record": "synthc.cache.store",
    "Store": "synthc.cache.store",
    "Graph": "synthc.compiler.graph",
    "KEY_VERSION": "synthc.compiler.keys",
    "NodeId": "synthc.compiler.keys",
    "NodeKey": "synthc.compiler.keys",
    "lower": "synthc.compiler.lower",
    "Plan": "synthc.compiler.plan",
    "Status": "synthc.compiler.plan",
    "plan": "synthc.compiler.plan",
    "Spec": "synthc.compiler.validate",
    "BuildFailed": "synthc.errors",
    "CacheError": "synthc.errors",
    "ConfigError": "synthc.errors",
    "Diagnostic": "synthc.errors",
    "EngineError": "synthc.errors",
    "Span": "synthc.errors",
    "SynthError": "synthc.errors",
    "UnsupportedFeature": "synthc.errors",
    "BuildResult": "synthc.pipeline",
    "build": "synthc.pipeline",
    "compile": "synthc.pipeline",
    "explain": "synthc.pipeline",
    "why": "synthc.pipeline",
    "Explanation": "synthc.compiler.explain",
    "ToolResult": "synthc.compiler.executors",
    "load": "synthc.pipeline",
}

__all__ = [
    "KEY_VERSION",
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
    "Record",
    "Span",
    "Spec",
    "Status",
    "Store",
    "SynthError",
    "ToolResult",
    "UnsupportedFeature",
    "build",
    "compile",
    "explain",
    "load",
    "lower",
    "plan",
    "why",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'synthc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
