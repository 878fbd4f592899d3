"""Tool-use environments: the config's ``environment_config`` in; tools a conversation calls out.

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
per-conversation without storing it.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthc.compiler.executors import Executor, ExecutorError, ToolResult, load_executor
from synthc.compiler.keys import digest
from synthc.compiler.spec import EnvironmentParams, MultiTurnAttribute, ToolParams
from synthc.compiler.validate import Spec
from synthc.errors import Diagnostic
from synthc.runtime.protocol import Message

log = logging.getLogger("synthc")

ENV_TYPES = ("lookup", "deterministic", "synthetic", "database")
DEFAULT_MAX_TOOL_ROUNDS = 50
ENVS = ("environment_config", "environments")


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
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" (at {where})" if where else "")


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


def _canonical(value: Any) -> str:
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
        result = _call(tool, arguments=args, state=copy.deepcopy(self.state))
        if isinstance(result, ToolResult) or hasattr(result, "updated_state"):
            new_state = getattr(result, "updated_state", None)
            output = getattr(result, "output", None)
            if new_state is not None:
                if tool.read_only:
                    raise ToolError(f"read-only tool '{tool.id}' returned an updated_state")
                if self.env.state_schema:
                    problem = schema_problem(self.env.state_schema, new_state)
                    if problem:
                        raise ToolError(f"updated_state does not match state_schema: {problem}")
                self.state = new_state
            return output
        return result

    def _look_up(self, tool: Tool, args: dict[str, Any]) -> Any:
        wanted = _canonical(fill_defaults(tool.parameters, args))
        for entry_input, output in self.env.table.get(tool.id, ()):
            if _canonical(entry_input) == wanted:
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
        return result.output if isinstance(result, ToolResult) else result

    def close(self) -> None:
        if self.db is not None:
            self.db.rollback()
            self.db.close()


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
    grounded: tuple[Environment, ...]
    scope: frozenset[str] | None  # available_tools, or None for all
    max_rounds: int
    digest: str

    def definitions(self) -> list[dict[str, Any]]:
        return [tool.definition() for tool in self.offered]

    def grounding_facts(self, seed: int, sample: int) -> list[dict[str, Any]]:
        """The planner's grounding rows for ``sample``: ``Random(seed + sample)`` per
        environment, oumi's draw (synthc's seed when the config sets none)."""
        facts: list[dict[str, Any]] = []
        for env in self.grounded:
            assert env.grounding is not None
            rng = random.Random(
                (env.grounding.seed if env.grounding.seed is not None else seed) + sample
            )
            pool = env.grounding_pool(set(self.scope) if self.scope is not None else None)
            facts += rng.sample(pool, min(env.grounding.sample_size, len(pool)))
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


# --- building from the config ---------------------------------------------------------------


class _Problems:
    def __init__(self, spec: Spec, problems: list[Diagnostic]):
        self.spec, self.list = spec, problems

    def add(self, message: str, *path: str | int) -> None:
        self.list.append(Diagnostic(message, self.spec.span(*path)))


def build_environments(spec: Spec, problems: list[Diagnostic]) -> dict[str, Environment]:
    """Every environment of the config, checked; problems are appended with locations."""
    config = spec.config.environment_config
    out: dict[str, Environment] = {}
    if config is None:
        return out
    report = _Problems(spec, problems)
    seen_tools: set[str] = set()
    for i, params in enumerate(config.environments):
        env = _environment(spec, i, params, report, seen_tools)
        if env is not None:
            out[env.id] = env
    return out


def _environment(
    spec: Spec, i: int, params: EnvironmentParams, report: _Problems, seen: set[str]
) -> Environment | None:
    path = (*ENVS, i)
    kind = params.env_type.lower()
    if kind not in ENV_TYPES:
        report.add(
            f"unknown env_type {params.env_type!r}; expected one of: {', '.join(ENV_TYPES)}",
            *path,
            "env_type",
        )
        return None
    kind = "lookup" if kind == "deterministic" else kind
    kwargs = params.env_kwargs or {}
    config_dir = spec.path.parent
    tools = []
    for j, tp in enumerate(params.tools):
        if tp.id in seen:
            report.add(f"tool id {tp.id!r} is defined twice", *path, "tools", j, "id")
        seen.add(tp.id)
        tools.append(_tool(tp, params, config_dir, report, (*path, "tools", j)))
    env = Environment(params.id, kind, tuple(tools))
    if kind == "lookup":
        env.table = _lookup_table(env, kwargs.get("lookup_table"), report, (*path, "env_kwargs"))
    elif kind == "synthetic":
        _synthetic(env, kwargs, report, path)
    else:
        _database(env, kwargs, config_dir, report, path)
    if params.grounding is not None:
        env.grounding = _grounding(env, params.grounding, report, (*path, "grounding"))
    return env


def _tool(
    tp: ToolParams,
    env: EnvironmentParams,
    config_dir: Path,
    report: _Problems,
    path: tuple[str | int, ...],
) -> Tool:
    kind = "lookup" if env.env_type.lower() == "deterministic" else env.env_type.lower()
    kwargs = env.env_kwargs or {}
    executor = None
    if tp.executor and kind != "lookup":
        try:
            executor = load_executor(tp.executor, config_dir)
        except ExecutorError as exc:
            report.add(f"cannot load executor {tp.executor!r}: {exc}", *path, "executor")
    needs_executor = kind == "database" or (kind == "synthetic" and "state_params" in kwargs)
    if needs_executor and not tp.executor:
        report.add(f"tool {tp.id!r} needs an executor in a {kind} environment", *path, "id")
    simulated = kind == "synthetic" and not tp.executor
    return Tool(
        tp.id,
        tp.name or tp.id,
        tp.description,
        tp.parameters or {"type": "object"},
        tp.output_schema,
        tp.read_only,
        env.id,
        executor,
        simulated,
    )


def _lookup_table(
    env: Environment, table: Any, report: _Problems, path: tuple[str | int, ...]
) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    if not isinstance(table, dict):
        report.add(
            "a lookup environment needs env_kwargs.lookup_table: {tool_id: [{input, output}]}",
            *path,
        )
        return out
    tools = {t.id: t for t in env.tools}
    for tool_id in table:
        if tool_id not in tools:
            log.warning("lookup_table of environment %r names unknown tool %r", env.id, tool_id)
    for tool in env.tools:
        entries = table.get(tool.id)
        where = (*path, "lookup_table", tool.id)
        if not isinstance(entries, list) or not entries:
            report.add(f"tool {tool.id!r} has no entries in lookup_table", *path, "lookup_table")
            continue
        seen: set[str] = set()
        rows = out.setdefault(tool.id, [])
        for k, entry in enumerate(entries):
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("input", {}), dict)
                or "output" not in entry
            ):
                report.add("each entry needs an input object and an output", *where, k)
                continue
            filled = fill_defaults(tool.parameters, entry.get("input") or {})
            problem = schema_problem(tool.parameters, filled)
            if problem:
                report.add(
                    f"input does not match the tool's parameters: {problem}", *where, k, "input"
                )
            if tool.output_schema is not None:
                problem = schema_problem(tool.output_schema, entry["output"])
                if problem:
                    report.add(
                        f"output does not match the output_schema: {problem}", *where, k, "output"
                    )
            if _canonical(filled) in seen:
                report.add(f"duplicate input for tool {tool.id!r}", *where, k, "input")
            seen.add(_canonical(filled))
            rows.append((filled, entry["output"]))
    return out


def _synthetic(
    env: Environment, kwargs: dict[str, Any], report: _Problems, path: tuple[str | int, ...]
) -> None:
    persona = kwargs.get("tool_persona")
    if not isinstance(persona, str) or not persona.strip():
        report.add("a synthetic environment needs env_kwargs.tool_persona", *path, "env_kwargs")
    env.persona = persona if isinstance(persona, str) else ""
    env.cache_by_input = bool(kwargs.get("cache_by_input", True))
    state = kwargs.get("state_params")
    if state is None:
        return
    where = (*path, "env_kwargs", "state_params")
    if not isinstance(state, dict) or "initial_state" not in state:
        report.add("state_params needs state_schema and initial_state", *where)
        return
    if env.cache_by_input:
        report.add(
            "a stateful synthetic environment needs cache_by_input: false", *path, "env_kwargs"
        )
    env.state_schema = state.get("state_schema") or None
    env.initial_state = state["initial_state"]
    if env.state_schema:
        problem = schema_problem(env.state_schema, env.initial_state)
        if problem:
            report.add(
                f"initial_state does not match state_schema: {problem}", *where, "initial_state"
            )


def _database(
    env: Environment,
    kwargs: dict[str, Any],
    config_dir: Path,
    report: _Problems,
    path: tuple[str | int, ...],
) -> None:
    where = (*path, "env_kwargs")
    db_path, schema_sql = kwargs.get("db_path"), kwargs.get("schema_sql")
    if (db_path is None) == (schema_sql is None):
        report.add("a database environment needs exactly one of db_path or schema_sql", *where)
        return
    if db_path is not None:
        env.db_path = (config_dir / str(db_path)).resolve()
        if not env.db_path.is_file():
            report.add(f"db_path {str(db_path)!r}: no such file", *where, "db_path")
            return
    else:
        env.schema_sql, env.seed_sql = str(schema_sql), kwargs.get("seed_sql")
    try:  # the SQL runs once now, so its errors are reported before anything is sent
        open_database(env).close()
    except sqlite3.Error as exc:
        key = "db_path" if db_path is not None else "schema_sql"
        report.add(f"the database cannot be set up: {exc}", *where, key)


def _grounding(
    env: Environment, raw: dict[str, Any], report: _Problems, path: tuple[str | int, ...]
) -> Grounding | None:
    size = raw.get("sample_size", 3)
    if not isinstance(size, int) or size < 1:
        report.add("sample_size must be an integer of at least 1", *path, "sample_size")
        return None
    seed = raw.get("seed")
    if seed is not None and not isinstance(seed, int):
        report.add("seed must be an integer", *path, "seed")
        return None
    tools: dict[str, tuple[str, ...]] = {}
    for tool_id, spec in (raw.get("tools") or {}).items():
        fields = _fields(spec, report, (*path, "tools", tool_id))
        if tool_id not in {t.id for t in env.tools}:
            report.add(f"grounding names unknown tool {tool_id!r}", *path, "tools", tool_id)
        elif fields:
            tools[tool_id] = fields
    state = []
    for k, item in enumerate(raw.get("state") or ()):
        fields = _fields(item, report, (*path, "state", k))
        state_path = item.get("state_path") if isinstance(item, dict) else None
        if not isinstance(state_path, str):
            report.add("each state grounding needs a state_path", *path, "state", k)
        elif fields:
            state.append((state_path, fields))
    return Grounding(size, seed, tools, tuple(state))


def _fields(spec: Any, report: _Problems, path: tuple[str | int, ...]) -> tuple[str, ...]:
    fields = spec.get("fields") if isinstance(spec, dict) else None
    if not isinstance(fields, list) or not fields or len(set(map(str, fields))) != len(fields):
        report.add("fields must be a non-empty list without duplicates", *path)
        return ()
    return tuple(str(f) for f in fields)


def toolset(
    spec: Spec,
    i: int,
    attr: MultiTurnAttribute,
    environments: dict[str, Environment],
    problems: list[Diagnostic],
) -> Toolset | None:
    """The tools multiturn attribute ``i`` may call, or None when it uses none."""
    if not (attr.available_environments or attr.available_tools):
        return None
    report = _Problems(spec, problems)
    base = ("strategy_params", "multiturn_attributes", i)
    for k, env_id in enumerate(attr.available_environments):
        if env_id not in environments:
            known = ", ".join(environments) or "none defined"
            report.add(
                f"unknown environment {env_id!r} (environments: {known})",
                *base,
                "available_environments",
                k,
            )
    in_envs = [
        e
        for e in environments.values()
        if not attr.available_environments or e.id in attr.available_environments
    ]
    candidates = {t.id: t for e in in_envs for t in e.tools}
    for k, tool_id in enumerate(attr.available_tools):
        if tool_id not in candidates:
            known = ", ".join(candidates) or "none"
            report.add(
                f"unknown tool {tool_id!r} (tools in scope: {known})", *base, "available_tools", k
            )
    scope = frozenset(attr.available_tools) if attr.available_tools else None
    offered = tuple(t for t in candidates.values() if scope is None or t.id in scope)
    known_tools = {t.id: t for e in environments.values() for t in e.tools}
    grounded = tuple(e for e in in_envs if e.grounding is not None)
    rounds = attr.max_consecutive_tool_turns or DEFAULT_MAX_TOOL_ROUNDS
    return Toolset(offered, known_tools, environments, grounded, scope, rounds, _digest(spec))


def _digest(spec: Spec) -> str:
    config = spec.config.environment_config
    return digest(config.model_dump(mode="json") if config is not None else None)


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


def iter_tools(environments: dict[str, Environment]) -> Iterator[Tool]:
    for env in environments.values():
        yield from env.tools
