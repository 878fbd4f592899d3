"""Load the Python functions that run tools, from module paths a config names.

A tool's ``executor`` names a function as ``module.function`` (``ehr_db.lookup_patient``,
``mypkg.tools.lookup``) or as ``path/to/file.py:function``. A module is looked
for first as a file beside the config (``ehr_db.py``, ``mypkg/tools.py``), then
among installed packages. Nothing is read from environment variables: the
config says where its code lives, so a build is reproducible from the config
and its directory.

An executor is called with keyword arguments, as oumi 0.9 calls them: ``arguments``
(the tool call's validated arguments) and, depending on the environment,
``context`` (a ``sqlite3.Connection`` in a database environment) or ``state`` (a
deep copy of the conversation's state in a simulated environment whose
``state_params`` has an ``initial_state``); in any other simulated environment it
gets ``arguments`` alone. It returns the tool's output (any JSON value) or a
:class:`ToolResult`; the output must match the tool's ``output_schema``, and only
a stateful simulated environment takes an ``updated_state``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

Executor = Callable[..., Any]


@dataclass(frozen=True)
class ToolResult:
    """What an executor may return: the output, and for stateful tools the new state."""

    output: Any
    updated_state: Any = None


class ExecutorError(Exception):
    """The executor named in a config cannot be loaded; the message says why."""


def load_executor(name: str, config_dir: Path) -> Executor:
    """The function ``name`` designates, looked up beside the config first."""
    if ":" in name:
        file_part, _, attr = name.rpartition(":")
        path = (config_dir / file_part).resolve()
        if not path.is_file():
            raise ExecutorError(f"no file {file_part!r} (looked in {config_dir})")
        module = _from_file(path)
    else:
        module_name, _, attr = name.rpartition(".")
        if not module_name:
            raise ExecutorError("name it as module.function or path/to/file.py:function")
        module = _find_module(module_name, config_dir)
    function = getattr(module, attr, None)
    if not callable(function):
        raise ExecutorError(f"module {module.__name__!r} has no function {attr!r}")
    return function  # type: ignore[no-any-return]


def _find_module(module_name: str, config_dir: Path) -> ModuleType:
    relative = Path(*module_name.split("."))
    for candidate in (config_dir / f"{relative}.py", config_dir / relative / "__init__.py"):
        if candidate.is_file():
            return _from_file(candidate.resolve())
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ExecutorError(
            f"no {relative}.py beside the config ({config_dir}) and no importable module "
            f"{module_name!r} ({exc})"
        ) from None


def _from_file(path: Path) -> ModuleType:
    """Import ``path`` afresh under a name private to synthc (edits are picked up)."""
    unique = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"_synthc_executors_{unique}", path)
    if spec is None or spec.loader is None:
        raise ExecutorError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module failed while importing: say how
        raise ExecutorError(f"importing {path} failed: {type(exc).__name__}: {exc}") from None
    return module
