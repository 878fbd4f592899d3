"""Run tool executors: a tool node in; the tool message it answers and the state it leaves out.

The only place synthc imports and calls a config's executors. A call starts from
the environment state its node names: the environment's initial state (a
database built from ``schema_sql`` + ``seed_sql`` or read from ``db_path``, a
stateful environment's ``initial_state``) or a state an earlier call left,
read back from the cache. A call that changes the state leaves a new one, stored
as a ``state`` record under the key of its content, before the call's own record
names it; so a conversation resumes from any cached step and nothing is replayed.

Executors run one at a time in a worker thread (user code need not be
thread-safe, and the event loop goes on meanwhile). Whatever an executor or its
environment raises comes back to the model as ``{"error": "Tool '<id>' raised:
..."}``, oumi 0.9's words; only a state that cannot be found or an executor that
cannot be imported fails the node.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from synthc.compiler.executors import ExecutorError, ExecutorRef, import_module
from synthc.compiler.tools import Environment, Tool, ToolError, raised, validation_text
from synthc.core.keys import bytes_digest, canonical_json, node_key
from synthc.core.messages import ToolResult
from synthc.core.records import Lookup, Record
from synthc.planning.conversation import Ran
from synthc.planning.plan import ToolNode


class ToolRunError(Exception):
    """A tool node that cannot be run at all (its state or its executor is missing)."""


@dataclass(frozen=True)
class ToolAnswer:
    """What running a node gave: the conversation's view, its record and a new state's."""

    ran: Ran
    record: Record
    state: Record | None  # the new state the call left, to store before ``record``


class ToolRunner:
    """Runs tool nodes against the states in ``store``; counts the executor calls."""

    def __init__(self, store: Lookup, build: str = ""):
        self.store = store
        self.build = build  # stamped on the records it makes
        self.calls = 0  # executor calls made: a cached conversation makes none
        self._modules: dict[Path, ModuleType] = {}
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, node: ToolNode) -> ToolAnswer:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="synthc-tools")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run_now, node)

    def run_now(self, node: ToolNode) -> ToolAnswer:
        """Run ``node`` in this thread (the executor, then its records)."""
        started = time.perf_counter()
        function = self._function(node.tool)
        state = _State.load(node.env, node.state, self.store)
        self.calls += 1
        try:
            output, after = _call(node, function, state)
            content = output if isinstance(output, str) else json.dumps(output)
        except Exception as exc:  # the model is told, as oumi tells it
            content, after = json.dumps({"error": raised(node.tool, exc)}), None
        new = after.record(node.env) if after is not None else None
        state_key = new.key if new is not None else node.state
        record = Record(
            key=node.key,
            text=content,
            request=node.canonical(),
            model=f"executor {node.tool.executor.name if node.tool.executor else ''}",
            latency=time.perf_counter() - started,
            created=time.time(),
            kind="tool",
            state=state_key or "",
            build=self.build,
        )
        return ToolAnswer(Ran(content, state_key), record, new)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _function(self, tool: Tool) -> Callable[..., Any]:
        ref = tool.executor
        if ref is None:
            raise ToolRunError(f"tool {tool.id!r} has no executor")
        if ref.path not in self._modules:
            self._modules[ref.path] = _import(ref)
        function = getattr(self._modules[ref.path], ref.function, None)
        if not callable(function):
            raise ToolRunError(f"{ref.path.name} has no function {ref.function!r}")
        return function  # type: ignore[no-any-return]


# --- states ------------------------------------------------------------------------------


@dataclass
class _State:
    """An environment's state for one call: a JSON value, or a SQLite image."""

    value: Any = None
    image: bytes | None = None

    @classmethod
    def load(cls, env: Environment, key: str | None, store: Lookup) -> _State:
        if key is None:
            return cls()
        if key == env.state:
            return cls.initial(env)
        record = store.get(key)
        if record is None or record.kind != "state":
            raise ToolRunError(f"the state {key} of environment {env.id!r} is not in the cache")
        if env.kind == "database":
            return cls(image=base64.b64decode(record.text))
        return cls(value=json.loads(record.text))

    @classmethod
    def initial(cls, env: Environment) -> _State:
        if env.kind != "database":
            return cls(value=copy.deepcopy(env.initial_state))
        if env.db_path is not None:
            return cls(image=env.db_path.read_bytes())
        db = sqlite3.connect(":memory:", isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.executescript(env.schema_sql or "")
            if env.seed_sql:
                db.executescript(env.seed_sql)
            return cls(image=db.serialize())
        except sqlite3.Error as exc:
            raise ToolRunError(
                f"{env.where}: environment {env.id!r}: the database cannot be set up: {exc}"
            ) from None
        finally:
            db.close()

    def record(self, env: Environment) -> Record:
        """This state as a record, keyed by its content."""
        if self.image is not None:
            text, content = base64.b64encode(self.image).decode(), bytes_digest(self.image)
        else:
            text = canonical_json(self.value).decode()
            content = bytes_digest(text.encode())
        request = {"env": env.id, "content": content}
        key = node_key("state", request)
        return Record(key=key, text=text, request=request, created=time.time(), kind="state")


def _call(node: ToolNode, function: Callable[..., Any], state: _State) -> tuple[Any, _State | None]:
    """The executor's output, and the state it leaves if it left a new one."""
    if node.env.kind == "database":
        return _run_sql(node, function, state)
    if node.env.stateful:
        return _run_stateful(node, function, state)
    output, new_state = _checked(node.tool, function(arguments=node.arguments))
    if new_state is not None:
        raise ToolError(
            f"Tool '{node.tool.id}' executor returned updated_state but the environment is "
            "stateless."
        )
    return output, None


def _run_stateful(
    node: ToolNode, function: Callable[..., Any], state: _State
) -> tuple[Any, _State | None]:
    """oumi's stateful step: the executor sees a copy of the state; a new state is refused
    from a read-only tool, checked against state_schema, then kept."""
    tool = node.tool
    result = function(arguments=node.arguments, state=copy.deepcopy(state.value))
    output, new_state = _checked(tool, result)
    if new_state is None:
        return output, None
    if tool.read_only:
        raise ToolError(
            f"Tool '{tool.id}' is read_only but executor returned updated_state. "
            "Read-only tools must not mutate state."
        )
    if node.env.state_schema is not None:
        problem = validation_text(node.env.state_schema, new_state)
        if problem:
            raise ToolError(
                f"Tool '{tool.id}' updated_state failed state_schema validation: {problem}"
            )
    return output, _State(value=copy.deepcopy(new_state))


def _run_sql(
    node: ToolNode, function: Callable[..., Any], state: _State
) -> tuple[Any, _State | None]:
    """The executor on a connection to the conversation's copy of the database, in a
    transaction it cannot end (as in oumi 0.9: foreign keys on, BEGIN/COMMIT refused as
    "not authorized"); a read-only tool runs under ``query_only``. A call that fails or
    whose result is refused leaves the state as it was."""
    assert state.image is not None
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        db.deserialize(state.image)
        db.execute("PRAGMA foreign_keys = ON")
        if node.tool.read_only:
            db.execute("PRAGMA query_only = ON")
        db.execute("BEGIN")
        with _authorized_for_executor(db):
            output, _ = _checked(node.tool, function(arguments=node.arguments, context=db))
        if node.tool.read_only:
            return output, None
        db.execute("COMMIT")
        return output, _State(image=db.serialize())
    finally:
        db.close()


@contextmanager
def _authorized_for_executor(db: sqlite3.Connection) -> Iterator[None]:
    db.set_authorizer(_deny_transaction_control)
    try:
        yield
    finally:
        db.set_authorizer(None)


def _deny_transaction_control(action: int, *_: str | None) -> int:
    return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_TRANSACTION else sqlite3.SQLITE_OK


def _checked(tool: Tool, result: Any) -> tuple[Any, Any]:
    """(output, updated_state) of what an executor returned, the output checked against
    the tool's output_schema (oumi's ``validate_executor_result``)."""
    output, new_state = _unwrap(result)
    if tool.output_schema is not None:
        problem = validation_text(tool.output_schema, output)
        if problem:
            raise ToolError(f"Tool '{tool.id}' executor output failed schema validation: {problem}")
    return output, new_state


def _unwrap(result: Any) -> tuple[Any, Any]:
    """(output, updated_state) of what an executor returned: a ToolResult (or an object
    shaped like oumi's), else a plain output and no new state."""
    if isinstance(result, ToolResult) or hasattr(result, "updated_state"):
        return getattr(result, "output", None), getattr(result, "updated_state", None)
    return result, None


# --- importing executors -----------------------------------------------------------------


def _import(ref: ExecutorRef) -> ModuleType:
    try:
        return import_module(ref)
    except ExecutorError as exc:
        raise ToolRunError(str(exc)) from None
