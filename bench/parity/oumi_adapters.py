"""Give oumi the executors synthc runs, under the names the configs use.

oumi resolves ``executor: ehr.list_patients`` through its registry first (then
as a dotted import), calls it with keyword ``arguments`` plus ``state`` or
``context``, and insists on its own ``ToolResult``. synthc's executors return
``synthc.ToolResult`` or plain JSON data. ``register()`` loads each module from
its file and registers a thin adapter per function as ``<alias>.<function>``,
so both tools run the very same code.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
EXAMPLE_EXECUTORS = HERE.parents[1] / "tests" / "oumi_examples" / "executors"

# alias the configs use -> the synthc-style module file
MODULES: dict[str, Path] = {
    "ehr": EXAMPLE_EXECUTORS / "ehr.py",
    "ehr_db": EXAMPLE_EXECUTORS / "ehr_db.py",
    "parity_tools": HERE / "executors" / "parity_tools.py",
}


@functools.cache
def register() -> None:
    """Register every public function of every module in MODULES (once per process)."""
    from oumi.core.registry import REGISTRY, RegistryType

    for alias, path in MODULES.items():
        module = _load(alias, path)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                REGISTRY.register(f"{alias}.{name}", RegistryType.TOOL_EXECUTOR, adapt(function))


def _load(alias: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_parity_exec_{alias}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def adapt(function: Callable[..., Any]) -> Callable[..., Any]:
    """An oumi executor that calls ``function`` and wraps its result in oumi's ToolResult."""
    from oumi.core.types.tool_call import ToolResult

    def executor(**kwargs: Any) -> ToolResult:
        result = function(**kwargs)
        if hasattr(result, "output") and hasattr(result, "updated_state"):
            return ToolResult(output=result.output, updated_state=result.updated_state)
        return ToolResult(output=result)

    executor.__name__ = function.__name__
    return executor
