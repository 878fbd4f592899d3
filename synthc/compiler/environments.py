"""Run a conversation's tools: a tool call and its environment in; the tool's result out.

oumi's four environment types, each giving every conversation its own state:

- ``lookup`` (``deterministic`` is oumi's older name): a table of ``input`` →
  ``output`` per tool, matched on canonical JSON after filling schema defaults;
- ``synthetic``: the model plays each tool under the tool's ``output_schema``
  (one cached node per call), or, with ``state_params``, Python executors
  update a per-conversation state;
- ``database``: SQLite from ``schema_sql`` + ``seed_sql`` (or a ``db_path``
  whose writes are rolled back), one connection per conversation, executors run
  SQL through it.

Tool results are computed locally and enter the next request's messages, so
node keys cover them by content: editing a lookup table or an executor reruns
exactly the requests that saw a different result. A conversation's tools are
replayed from its cached steps each time it advances, which keeps state
per-conversation without storing it. :mod:`synthc.compiler.tool_config` builds
the environments from a config.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthc.compiler.executors import Executor, ToolResult
from synthc.runtime.protocol import Message

log = logging.getLogger("synthc")

ENV_TYPES = ("lookup", "deterministic", "synthetic", "database")


class ToolError(Exception):
    """A tool call that cannot be answered; the model receives ``{"error": message}``."""


# --- tools --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Tool:
    id: str
    name: str
    description: str
    parameters: dict[str, Any]
    output_schema: dict[str, Any] | None
    read_only: bool
    env: str
    executor: Executor | None = None
    simulated: bool = False  # played by the model (synthetic environment, no executor)

    def definition(self) -> dict[str, Any]:
        """The tool as offered to the model: OpenAI's function format, named by id."""
        return {
            "type": "function",
            "function": {
                "name": self.id,
                "description": self.description,
                "parameters": self.parameters or {"type": "object"},
            },
        }

    def llm_schema(self) -> dict[str, Any]:
        """How a simulator sees the tool (oumi's ``to_llm_schema``)."""
        schema: dict[str, Any] = {
            "name": self.id,
            "display_name": self.name,
            "description": self.description,
            "parameters": self.parameters or {"type": "object"},
        }
        if self.output_schema is not None:
            schema["output_schema"] = self.output_schema
        return schema

    def arguments(self, raw: str) -> dict[str, Any]:
        """The call's arguments, parsed and checked against ``parameters``."""
        try:
            value = json.loads(raw or "{}")
        except ValueError as exc:
            raise ToolError(f"Tool '{self.id}' arguments are not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            kind = type(value).__name__
            raise ToolError(f"Tool '{self.id}' arguments must be a JSON object, got {kind}.")
        problem = schema_problem(self.parameters, value)
        if problem:
            raise ToolError(f"Tool '{self.id}' arguments are invalid: {problem}")
        return value

    def check_output(self, output: Any) -> None:
        if self.output_schema is not None:
            problem = schema_problem(self.output_schema, output)
            if problem:
                raise ToolError(f"output does not match the output_schema: {problem}")


def schema_problem(schema: dict[str, Any], value: Any) -> str | None:
    """Why ``value`` does not satisfy JSON schema ``schema``, or None if it does."""
    if not schema:
        return None
    import jsonschema  # only configs with tools pay for the import

    validator = jsonschema.validators.validator_for(schema)(schema)
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except (jsonschema.exceptions.SchemaError, jsonschema.exceptions.UnknownType) as exc:
        # a schema that passed its metaschema yet cannot be applied
        return f"the schema cannot be used: {exc}"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" (at {where})" if where else "")


def schema_error(schema: Any) -> str | None:
    """Why ``schema`` is not a JSON schema (checked against its metaschema), or None."""
    if not isinstance(schema, dict):
        return f"expected a JSON schema object, got {type(schema).__name__}"
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return exc.message + (f" (at {where})" if where else "")
    return None


def fill_defaults(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with the ``default`` of every absent property filled in, recursively."""
    if not isinstance(value, dict) or not isinstance(schema.get("properties"), dict):
        return value
    filled = dict(value)
    for name, sub in schema["properties"].items():
        if not isinstance(sub, dict):
            continue
        if name not in filled and "default" in sub:
            filled[name] = copy.deepcopy(sub["default"])
        if name in filled:
            filled[name] = fill_defaults(sub, filled[name])
    return filled


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# --- environments -------------------------------------------------------------------------


@dataclass(frozen=True)
class Grounding:
    sample_size: int
    seed: int | None
    tools: dict[str, tuple[str, ...]]  # tool id -> fields
    state: tuple[tuple[str, tuple[str, ...]], ...]  # (state path, fields)


@dataclass(eq=False)
class Environment:
    id: str
    kind: str  # "lookup" | "synthetic" | "database"
    tools: tuple[Tool, ...]
    grounding: Grounding | None = None
    table: dict[str, list[tuple[dict[str, Any], Any]]] = field(default_factory=dict)
    persona: str = ""
    cache_by_input: bool = True
    state_schema: dict[str, Any] | None = None
    initial_state: Any = None
    schema_sql: str | None = None
    seed_sql: str | None = None
    db_path: Path | None = None

    def grounding_pool(self, tool_ids: set[str] | None) -> list[dict[str, Any]]:
        """Rows the planner may be grounded in: lookup entries, or rows of the state."""
        pool: list[dict[str, Any]] = []
        if self.grounding is None:
            return pool
        for tool in self.tools:
            fields = self.grounding.tools.get(tool.id)
            if fields is None or (tool_ids is not None and tool.id not in tool_ids):
                continue
            for entry_input, output in self.table.get(tool.id, ()):
                row = dict(entry_input)
                if isinstance(output, dict):
                    row.update(output)
                pool.append({k: row[k] for k in row if k in fields})
        for path, fields in self.grounding.state:
            rows = (self.initial_state or {}).get(path) or []
            pool += [{k: r[k] for k in r if k in fields} for r in rows if isinstance(r, dict)]
        return [row for row in pool if row]


class EnvSession:
    """One conversation's view of an environment."""

    def __init__(self, env: Environment):
        self.env = env
        self.state = copy.deepcopy(env.initial_state)
        self.db: sqlite3.Connection | None = None
        if env.kind == "database":
            self.db = open_database(env)

    def run(self, tool: Tool, args: dict[str, Any]) -> Any:
        if self.env.kind == "lookup":
            return self._look_up(tool, args)
        if tool.executor is None:
            raise ToolError(f"Tool '{tool.id}' has no executor")
        if self.db is not None:
            return self._run_sql(tool, args)
        output, new_state = _unwrap(_call(tool, arguments=args, state=copy.deepcopy(self.state)))
        if new_state is not None:
            if tool.read_only:
                raise ToolError(f"read-only tool '{tool.id}' returned an updated_state")
            if self.env.state_schema:
                problem = schema_problem(self.env.state_schema, new_state)
                if problem:
                    raise ToolError(f"updated_state does not match state_schema: {problem}")
            self.state = new_state
        return output

    def _look_up(self, tool: Tool, args: dict[str, Any]) -> Any:
        wanted = canonical(fill_defaults(tool.parameters, args))
        for entry_input, output in self.env.table.get(tool.id, ()):
            if canonical(entry_input) == wanted:
                return copy.deepcopy(output)
        inputs = json.dumps([i for i, _ in self.env.table.get(tool.id, ())], sort_keys=True)
        raise ToolError(
            f"No lookup output matches arguments {wanted} for tool '{tool.id}'. "
            f"Configured inputs: {inputs}"
        )

    def _run_sql(self, tool: Tool, args: dict[str, Any]) -> Any:
        db = self.db
        assert db is not None
        db.execute("SAVEPOINT synthc_call")
        if tool.read_only:
            db.execute("PRAGMA query_only = ON")
        try:
            result = _call(tool, arguments=args, context=db)
        except BaseException:
            db.execute("ROLLBACK TO synthc_call")
            raise
        finally:
            if tool.read_only:
                db.execute("PRAGMA query_only = OFF")
            db.execute("RELEASE synthc_call")
        return _unwrap(result)[0]

    def close(self) -> None:
        if self.db is not None:
            self.db.rollback()
            self.db.close()


def _unwrap(result: Any) -> tuple[Any, Any]:
    """(output, updated_state) of what an executor returned: a ToolResult (or an object
    shaped like oumi's), else a plain output and no new state."""
    if isinstance(result, ToolResult) or hasattr(result, "updated_state"):
        return getattr(result, "output", None), getattr(result, "updated_state", None)
    return result, None


def _call(tool: Tool, **kwargs: Any) -> Any:
    assert tool.executor is not None
    try:
        return tool.executor(**kwargs)
    except ToolError:
        raise
    except Exception as exc:  # the user's executor failed: the model is told, as oumi does
        raise ToolError(f"Tool '{tool.id}' raised: {type(exc).__name__}: {exc}") from None


def open_database(env: Environment) -> sqlite3.Connection:
    """A connection for one conversation: a fresh in-memory copy, or the file inside a
    transaction that is never committed."""
    if env.db_path is not None:
        db = sqlite3.connect(env.db_path, isolation_level=None, check_same_thread=False)
        db.execute("BEGIN")
        return db
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA foreign_keys = ON")
    db.executescript(env.schema_sql or "")
    if env.seed_sql:
        db.executescript(env.seed_sql)
    db.execute("BEGIN")
    return db


# --- a multiturn attribute's tools ----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Toolset:
    """The tools one multiturn attribute offers, and every tool a call may name."""

    offered: tuple[Tool, ...]
    known: dict[str, Tool]
    environments: dict[str, Environment]
    grounded: tuple[tuple[Grounding, list[dict[str, Any]]], ...]  # per environment: its pool
    max_rounds: int
    digest: str

    def definitions(self) -> list[dict[str, Any]]:
        return [tool.definition() for tool in self.offered]

    def grounding_facts(self, seed: int, sample: int) -> list[dict[str, Any]]:
        """The planner's grounding rows for ``sample``: ``Random(seed + sample)`` per
        environment, oumi's draw (synthc's seed when the config sets none)."""
        facts: list[dict[str, Any]] = []
        for grounding, pool in self.grounded:
            rng = random.Random((grounding.seed if grounding.seed is not None else seed) + sample)
            facts += rng.sample(pool, min(grounding.sample_size, len(pool)))
        return facts

    def session(self) -> Session:
        return Session(self)


class Session:
    """One conversation's environments, opened on first use."""

    def __init__(self, toolset: Toolset):
        self.toolset = toolset
        self._open: dict[str, EnvSession] = {}
        self.memo: dict[str, str | None] = {}  # simulated results by (tool, arguments)

    def run(self, tool: Tool, args: dict[str, Any]) -> Any:
        env = self.toolset.environments[tool.env]
        if env.id not in self._open:
            self._open[env.id] = EnvSession(env)
        return self._open[env.id].run(tool, args)

    def close(self) -> None:
        for env in self._open.values():
            env.close()
        self._open.clear()


def simulator_messages(tool: Tool, persona: str, args: dict[str, Any]) -> list[Message]:
    """oumi's prompt for a model playing ``tool``."""
    system = (
        f"{persona}\n\nYou are simulating the `{tool.id}` tool. Respond ONLY with a JSON object "
        "matching the tool's output schema. Do NOT include explanations, markdown, or "
        f"surrounding prose.\n\nTool schema:\n{json.dumps(tool.llm_schema(), indent=2)}"
    )
    user = json.dumps({"tool": tool.id, "arguments": args}, sort_keys=True)
    return [Message("system", system), Message("user", user)]


def parse_simulated(tool: Tool, text: str) -> Any:
    """A simulated tool's output: a JSON object matching its output_schema."""
    try:
        value = json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        try:
            value = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise ToolError(f"Tool '{tool.id}' raised: the simulator did not return a JSON object")
    try:
        tool.check_output(value)
    except ToolError as exc:
        raise ToolError(f"Tool '{tool.id}' raised: {exc}") from None
    return value


def grounding_block(facts: list[dict[str, Any]]) -> str:
    """The planner's grounding section (oumi's exact words)."""
    lines = "\n".join(
        "- " + ", ".join(f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in f.items())
        for f in facts
    )
    return f"\nGround this plan in these specific entities:\n{lines}\n{GROUNDING_RULES}"


GROUNDING_RULES = (
    "Grounding rules (role-aware):\n"
    "- USER turn instructions MAY inline concrete identifiers from the list above (e.g. "
    "'order ORD-4421 is late', 'book B007'). The user persona cannot see this list, so "
    "identifiers the user should mention must be written into their turn instruction.\n"
    "- Treat each entity's non-identifier fields (e.g. status, due_date, return_date) as "
    "preconditions. If a field's value contradicts the conversation intent -- for example "
    "trying to borrow a book whose status is 'borrowed' or 'overdue', or trying to return one "
    "that is 'available' -- plan a recovery flow that handles the conflict (offer an "
    "alternative entity from the list, explain the conflict, ask a clarifying question) instead "
    "of a happy-path that the tool will reject.\n"
    "- ASSISTANT turn instructions MUST NOT pre-resolve or pre-state any tool output \u2014 no "
    "identifiers, statuses, borrower names, due dates, or other facts the assistant would "
    "normally look up. Reference entities by what the user said (e.g. the title) and describe "
    "which TOOL the assistant should call to resolve or verify. Example \u2014 write 'call "
    "lookup_book_status with the book_id from the catalog', not 'tell the user book B007 is "
    "checked out'.\n"
    "- The planner's job for assistant turns is to probe the right tool usage, not to do the "
    "tool's work.\n"
)
