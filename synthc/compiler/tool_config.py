"""Build tool-use environments from a config: ``environment_config`` in, checked Environments out.

Every problem is reported with its location (an unknown ``env_type``, a lookup
entry whose input does not match the tool's parameters, an executor that cannot
be found...), all at once, before anything is sent. Nothing here runs: executors
are found and digested from their source, not imported, and SQL runs first in
the runtime. :func:`toolset` then gives each multiturn attribute the tools it may
call.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from synthc.compiler.executors import ExecutorError, ExecutorRef, find_executor, with_digests
from synthc.compiler.spec import EnvironmentParams, MultiTurnAttribute, ToolParams
from synthc.compiler.tools import (
    ENV_TYPES,
    Environment,
    Grounding,
    Tool,
    Toolset,
    canonical,
    fill_defaults,
    schema_error,
    schema_problem,
)
from synthc.compiler.validate import Spec
from synthc.core.errors import Diagnostic
from synthc.core.keys import bytes_digest, digest, node_key

log = logging.getLogger("synthc")

DEFAULT_MAX_TOOL_ROUNDS = 50
ENVS = ("environment_config", "environments")


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
            env.digest = _env_digest(params)
            env.state = _initial_state(env)
            out[env.id] = env
    _digest_executors(out.values(), report)
    return out


def _env_digest(params: EnvironmentParams) -> str:
    """An environment's definition, its env_type by its one name (an alias is no change)."""
    dumped = params.model_dump(mode="json")
    dumped["env_type"] = ENV_TYPES.get(params.env_type.lower(), params.env_type)
    return digest(dumped)


def _initial_state(env: Environment) -> str | None:
    """The key of the state a conversation starts from: a database's schema and seed (or
    file), a stateful environment's initial_state; None for a stateless one."""
    if env.kind == "database":
        if env.db_path is not None:
            source: Any = {"file": bytes_digest(env.db_path.read_bytes())}
        else:
            source = {"schema_sql": env.schema_sql, "seed_sql": env.seed_sql}
    elif env.stateful:
        source = {"initial_state": env.initial_state}
    else:
        return None
    return node_key("state", {"env": env.id, "initial": digest(source)})


def _digest_executors(environments: Any, report: _Problems) -> None:
    """Give every tool's executor its source digest (the others of its module left out)."""
    envs = list(environments)
    try:
        refs = with_digests(t.executor for e in envs for t in e.tools if t.executor is not None)
    except ExecutorError as exc:  # found a moment ago; unreadable now
        report.add(f"cannot read an executor: {exc}", *ENVS)
        return
    for env in envs:
        env.tools = tuple(
            dataclasses.replace(t, executor=refs[t.executor.name]) if t.executor else t
            for t in env.tools
        )


def _environment(
    spec: Spec, i: int, params: EnvironmentParams, report: _Problems, seen: set[str]
) -> Environment | None:
    path = (*ENVS, i)
    kind = ENV_TYPES.get(params.env_type.lower())
    if kind is None:
        message = (
            "not supported yet: env_type 'endpoint' (oumi 0.9's tools served over HTTP)"
            if params.env_type.lower() == "endpoint"
            else f"unknown env_type {params.env_type!r}; expected one of: {', '.join(ENV_TYPES)}"
        )
        report.add(message, *path, "env_type")
        return None
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
    elif kind == "simulated":
        _simulated(env, kwargs, report, path)
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
    kind = ENV_TYPES[env.env_type.lower()]
    kwargs = env.env_kwargs or {}
    executor: ExecutorRef | None = None
    if tp.executor and kind != "lookup":
        try:
            where = str(report.spec.span(*path, "executor") or report.spec.name)
            executor = dataclasses.replace(find_executor(tp.executor, config_dir), where=where)
        except ExecutorError as exc:
            report.add(f"cannot find executor {tp.executor!r}: {exc}", *path, "executor")
    if kind == "database" and not tp.executor:
        report.add(f"tool {tp.id!r} needs an executor in a database environment", *path, "id")
    if kind == "simulated" and _stateful(kwargs) and not tp.executor:
        report.add(
            f"tool {tp.id!r} needs an executor: with state_params.initial_state the simulated "
            "environment is stateful, and LLM-simulated tools cannot mutate state",
            *path,
            "id",
        )
    simulated = kind == "simulated" and not tp.executor
    schemas = {"parameters": tp.parameters or {"type": "object"}, "output_schema": tp.output_schema}
    for name, schema in schemas.items():
        problem = schema_error(schema) if schema is not None else None
        if problem:
            report.add(f"{name} is not a valid JSON schema: {problem}", *path, name)
            schemas[name] = {"type": "object"}  # the build stops; later checks still run
    return Tool(
        tp.id,
        tp.name or tp.id,
        tp.description,
        schemas["parameters"] or {"type": "object"},
        schemas["output_schema"],
        tp.read_only,
        env.id,
        executor,
        simulated,
    )


Rows = list[tuple[dict[str, Any], Any]]  # (input with defaults filled, output) per entry


def _lookup_table(
    env: Environment, table: Any, report: _Problems, path: tuple[str | int, ...]
) -> dict[str, Rows]:
    out: dict[str, Rows] = {}
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
        if not isinstance(entries, list) or not entries:
            report.add(f"tool {tool.id!r} has no entries in lookup_table", *path, "lookup_table")
            continue
        out[tool.id] = _entries(tool, entries, report, (*path, "lookup_table", tool.id))
    return out


def _entries(
    tool: Tool, entries: list[Any], report: _Problems, where: tuple[str | int, ...]
) -> Rows:
    """One tool's lookup entries, each checked against the tool's schemas."""
    rows: Rows = []
    seen: set[str] = set()
    for k, entry in enumerate(entries):
        well_formed = isinstance(entry, dict) and isinstance(entry.get("input", {}), dict)
        if not well_formed or "output" not in entry:
            report.add("each entry needs an input object and an output", *where, k)
            continue
        filled = fill_defaults(tool.parameters, entry.get("input") or {})
        problem = schema_problem(tool.parameters, filled)
        if problem:
            report.add(f"input does not match the tool's parameters: {problem}", *where, k, "input")
        problem = schema_problem(tool.output_schema or {}, entry["output"])
        if problem:
            report.add(f"output does not match the output_schema: {problem}", *where, k, "output")
        if canonical(filled) in seen:
            report.add(f"duplicate input for tool {tool.id!r}", *where, k, "input")
        seen.add(canonical(filled))
        rows.append((filled, entry["output"]))
    return rows


def _stateful(kwargs: dict[str, Any]) -> bool:
    """Whether a simulated environment's env_kwargs make it stateful, as in oumi 0.9: a
    ``state_params`` with an ``initial_state``. Without one its executors get no state."""
    state = kwargs.get("state_params")
    return isinstance(state, dict) and state.get("initial_state") is not None


def _simulated(
    env: Environment, kwargs: dict[str, Any], report: _Problems, path: tuple[str | int, ...]
) -> None:
    persona = kwargs.get("tool_persona")
    if not persona:
        report.add("a simulated environment needs env_kwargs.tool_persona", *path, "env_kwargs")
    env.persona = str(persona) if persona else ""
    env.cache_by_input = bool(kwargs.get("cache_by_input", True))
    state = kwargs.get("state_params")
    if state is None:
        return
    if env.cache_by_input:
        key = ("cache_by_input",) if "cache_by_input" in kwargs else ()
        report.add(
            "cache_by_input must be false when state_params is given", *path, "env_kwargs", *key
        )
    _state_params(env, state, report, (*path, "env_kwargs", "state_params"))


STATE_PARAMS = ("state_schema", "initial_state")


def _state_params(
    env: Environment, state: Any, report: _Problems, where: tuple[str | int, ...]
) -> None:
    """The state of a simulated environment, when ``state`` (its state_params) gives an
    initial_state; the state_schema is only read then, as in oumi 0.9."""
    if not isinstance(state, dict) or set(state) - set(STATE_PARAMS):
        report.add(f"state_params takes only {' and '.join(STATE_PARAMS)}", *where)
        return
    if state.get("initial_state") is None:
        return
    env.initial_state = state["initial_state"]
    schema = state.get("state_schema")
    if schema is None:
        return
    problem = schema_error(schema)
    if problem:
        report.add(f"state_schema is not a valid JSON schema: {problem}", *where, "state_schema")
        return
    env.state_schema = schema or None
    problem = schema_problem(schema, env.initial_state) if schema else None
    if problem:
        report.add(f"initial_state does not match state_schema: {problem}", *where, "initial_state")


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
    key = "db_path" if db_path is not None else "schema_sql"
    env.where = str(report.spec.span(*where, key) or report.spec.name)


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
    if not raw.get("tools") and not raw.get("state"):
        report.add("grounding needs entries in tools or state", *path)
        return None
    tools: dict[str, tuple[str, ...]] = {}
    for tool_id, spec in (raw.get("tools") or {}).items():
        fields = _fields(spec, report, (*path, "tools", tool_id))
        if tool_id not in {t.id for t in env.tools}:
            log.warning("grounding of environment %r names unknown tool %r", env.id, tool_id)
        elif fields:
            tools[tool_id] = fields
    state = _state_grounding(env, raw.get("state") or [], report, (*path, "state"))
    return Grounding(size, seed, tools, tuple(state))


def _state_grounding(
    env: Environment, raw: Any, report: _Problems, path: tuple[str | int, ...]
) -> list[tuple[str, tuple[str, ...]]]:
    """The (state_path, fields) pools of ``grounding.state``: each path must name a list in
    the initial state of a stateful simulated environment (other environments ignore them)."""
    state: list[tuple[str, tuple[str, ...]]] = []
    if not isinstance(raw, list):
        report.add("grounding.state must be a list of {state_path, fields}", *path)
        return state
    if raw and env.kind == "simulated" and not env.stateful:
        report.add("grounding.state needs state_params with an initial_state", *path)
    for k, item in enumerate(raw):
        fields = _fields(item, report, (*path, k))
        state_path = item.get("state_path") if isinstance(item, dict) else None
        if not isinstance(state_path, str) or not state_path:
            report.add("each state grounding needs a state_path", *path, k)
            continue
        if state_path in (p for p, _ in state):
            report.add(f"duplicate state_path {state_path!r}", *path, k, "state_path")
        problem = _state_pool_problem(env, state_path) if env.stateful else None
        if problem:
            report.add(problem, *path, k, "state_path")
        elif fields:
            state.append((state_path, fields))
    return state


def _state_pool_problem(env: Environment, state_path: str) -> str | None:
    """Why ``state_path`` names no list in the environment's initial state, or None."""
    initial = env.initial_state
    if not isinstance(initial, dict) or state_path not in initial:
        keys = sorted(initial) if isinstance(initial, dict) else []
        return f"state_path {state_path!r} is not in initial_state (its keys: {keys})"
    if not isinstance(initial[state_path], list):
        kind = type(initial[state_path]).__name__
        return f"state_path {state_path!r} must name a list in initial_state, got {kind}"
    return None


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
    """The tools multiturn attribute ``i`` may call, or None when the config defines none.

    An attribute that names no environments and no tools is offered every tool, as in
    oumi 0.9 (``resolve_tools`` with no ids is all of them).
    """
    if not environments:
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
    grounded = tuple(
        (e.grounding, e.grounding_pool(set(scope) if scope is not None else None))
        for e in in_envs
        if e.grounding is not None
    )  # pools drawn from once per sample, built once here
    rounds = attr.max_consecutive_tool_turns or DEFAULT_MAX_TOOL_ROUNDS
    return Toolset(offered, known_tools, environments, grounded, rounds, _digest(spec))


def _digest(spec: Spec) -> str:
    """Every environment's definition: what a conversation's tools are made of."""
    config = spec.config.environment_config
    return digest(None if config is None else [_env_digest(e) for e in config.environments])
