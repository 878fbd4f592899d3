"""Find the Python functions that run tools, without importing them: a name in, a reference out.

A tool's ``executor`` names a function as ``module.function`` (``ehr_db.lookup_patient``,
``mypkg.tools.lookup``) or as ``path/to/file.py:function``. A module is looked
for first as a file beside the config (``ehr_db.py``, ``mypkg/tools.py``), then
among installed packages. Nothing is read from environment variables: the
config says where its code lives, so a build is reproducible from the config
and its directory.

Compiling only reads the module's source: it checks that the function is
defined there and takes a digest of what decides its results (the module's text
with the bodies of the config's *other* executors left out, so editing one
executor reruns its own calls and nobody else's). The runtime imports and calls
it (:mod:`synthc.runtime.tools`).

An executor is called with keyword arguments, as oumi 0.9 calls them: ``arguments``
(the tool call's validated arguments) and, depending on the environment,
``context`` (a ``sqlite3.Connection`` in a database environment) or ``state`` (a
deep copy of the conversation's state in a simulated environment whose
``state_params`` has an ``initial_state``); in any other simulated environment it
gets ``arguments`` alone. It returns the tool's output (any JSON value) or a
:class:`synthc.ToolResult`; the output must match the tool's ``output_schema``, and
only a stateful simulated environment takes an ``updated_state``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from synthc.core.keys import digest


class ExecutorError(Exception):
    """The executor named in a config cannot be found; the message says why."""


@dataclass(frozen=True)
class ExecutorRef:
    """Where an executor lives and a digest of the source that decides its results."""

    name: str  # as the config wrote it
    path: Path  # the module's file
    function: str
    digest: str = ""
    where: str = ""  # file:line:col of the config's ``executor:``, for the runtime's messages


def find_executor(name: str, config_dir: Path) -> ExecutorRef:
    """The function ``name`` designates, looked up beside the config first; its module is
    read, not imported."""
    if ":" in name:
        file_part, _, function = name.rpartition(":")
        path = (config_dir / file_part).resolve()
        if not path.is_file():
            raise ExecutorError(f"no file {file_part!r} (looked in {config_dir})")
    else:
        module_name, _, function = name.rpartition(".")
        if not module_name:
            raise ExecutorError("name it as module.function or path/to/file.py:function")
        path = _module_file(module_name, config_dir)
    if function not in _functions(path):
        raise ExecutorError(f"{path.name} defines no function {function!r}")
    return ExecutorRef(name, path, function)


def with_digests(refs: Iterable[ExecutorRef]) -> dict[str, ExecutorRef]:
    """Each reference (by name) with its digest: its module's source less the other
    executors of that module, so an edit to one leaves the others' keys alone."""
    refs = list(refs)
    out: dict[str, ExecutorRef] = {}
    for ref in refs:
        siblings = {r.function for r in refs if r.path == ref.path and r.function != ref.function}
        out[ref.name] = replace(ref, digest=digest(_source_without(ref.path, siblings)))
    return out


def import_module(ref: ExecutorRef) -> ModuleType:
    """The module ``ref`` lives in, imported afresh under a name private to synthc (edits
    are picked up by the next build); ExecutorError saying how when it fails."""
    unique = hashlib.sha256(str(ref.path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"_synthc_executors_{unique}", ref.path)
    if spec is None or spec.loader is None:
        raise ExecutorError(f"cannot import {ref.path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module failed while importing: say how
        raise ExecutorError(
            f"{ref.where}: importing {ref.path} failed: {type(exc).__name__}: {exc}"
        ) from None
    return module


def _module_file(module_name: str, config_dir: Path) -> Path:
    relative = Path(*module_name.split("."))
    for candidate in (config_dir / f"{relative}.py", config_dir / relative / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise ExecutorError(f"no module {module_name!r} ({exc})") from None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ExecutorError(
            f"no {relative}.py beside the config ({config_dir}) and no installed Python "
            f"module {module_name!r}"
        )
    return Path(spec.origin)


def _functions(path: Path) -> set[str]:
    """The names of the functions ``path`` defines at its top level."""
    return {
        node.name
        for node in _parse(path).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _source_without(path: Path, functions: set[str]) -> str:
    """``path``'s source with the top-level definitions of ``functions`` left out."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for node in sorted(_parse(path).body, key=lambda n: n.lineno, reverse=True):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in functions:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            del lines[first - 1 : node.end_lineno]
    return "".join(lines)


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise ExecutorError(f"cannot read {path}: {exc}") from None
