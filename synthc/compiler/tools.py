"""Tool-use environments as a config defines them: tools, environments, what a call may name.

oumi's environment types, each giving every conversation its own state:

- ``lookup`` (``deterministic`` is oumi's older name): a table of ``input`` →
  ``output`` per tool, matched on canonical JSON after filling schema defaults
  (:func:`look_up`, pure, answered while planning);
- ``simulated`` (``synthetic`` is oumi's older name): the model plays each
  tool under the tool's ``output_schema`` (one cached node per call), and a tool
  with an ``executor`` is run as ``executor(arguments=...)``; with
  ``state_params.initial_state`` every tool has an executor, called with a
  ``state`` too, whose ``updated_state`` becomes the conversation's state;
- ``database``: SQLite from ``schema_sql`` + ``seed_sql`` (or a ``db_path``,
  never written), each conversation with its own copy; executors run SQL on it.

Executors run in the runtime (:mod:`synthc.runtime.tools`), never here: a call
to one is a node keyed by the environment's digest, the executor's source
digest, the arguments and the environment state the conversation has reached
(``Environment.state`` is the key of the state it starts from). A call that
fails comes back to the model as ``{"error": message}`` in oumi 0.9's words: bad
arguments as jsonschema's own text, anything the environment raises (a lookup
miss, a simulator reply that does not parse or match, an executor's exception or
refused result) as ``Tool '<id>' raised: <what was raised>``.
:mod:`synthc.compiler.tool_config` builds the environments from a config.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthc.compiler.executors import ExecutorRef
from synthc.core.messages import Message

log = logging.getLogger("synthc")

# env_type names and what synthc runs them as: oumi 0.9 calls a model-simulated
# environment ``simulated`` and keeps ``synthetic`` and ``deterministic`` as aliases.
ENV_TYPES = {
    "lookup": "lookup",
    "deterministic": "lookup",
    "simulated": "simulated",
    "synthetic": "simulated",
    "database": "database",
}

# oumi 0.9 writes a tool's parameters through its JSONSchema model: these keys first, in
# this order, then the others as written; keys whose value is null are left out.
_SCHEMA_FIELDS = (
    "type",
    "description",
    "title",
    "properties",
    "required",
    "items",
    "enum",
    "default",
    "format",
)


def _listed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    out = {k: schema[k] for k in _SCHEMA_FIELDS if schema.get(k) is not None}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {
            name: _listed_schema(sub) if isinstance(sub, dict) else sub
            for name, sub in out["properties"].items()
        }
    if isinstance(out.get("items"), dict):
        out["items"] = _listed_schema(out["items"])
    out.update((k, v) for k, v in schema.items() if k not in _SCHEMA_FIELDS and v is not None)
    return out


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
    executor: ExecutorRef | None = None
    simulated: bool = False  # played by the model (simulated environment, no executor)

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

    def listed(self) -> dict[str, Any]:
        """The tool as oumi 0.9 lists it beside a conversation (its ``tools`` key)."""
        function = {
            "name": self.id,
            "description": self.description,
            "parameters": _listed_schema(self.parameters or {"type": "object"}),
        }
        return {"function": function}

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
        problem = validation_text(self.parameters, value)
        if problem:
            raise ToolError(problem)
        return value


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


def validation_text(schema: dict[str, Any], value: Any) -> str | None:
    """What ``jsonschema.validate(value, schema)`` says about ``value`` (its full text, as
    oumi 0.9 passes it on), or None if ``value`` is valid. ``schema`` must be a valid schema."""
    import jsonschema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        return str(exc)
    return None


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


def fill_defaults(
    schema: dict[str, Any],
    value: Any,
    root: dict[str, Any] | None = None,
    seen: frozenset[str] = frozenset(),
) -> Any:
    """``value`` with the ``default`` of every absent property filled in along
    ``properties`` chains, following local ``$ref`` (oumi 0.9's ``_fill_argument_defaults``;
    a ``$ref`` already followed on the way down gives no default)."""
    if not isinstance(value, dict):
        return value
    root = schema if root is None else root
    filled = copy.deepcopy(value)
    properties = _resolve_ref(schema, root).get("properties", {})
    if not isinstance(properties, dict):
        return filled
    for name, written in properties.items():
        if not isinstance(written, dict):
            continue
        ref = written.get("$ref")
        sub = _resolve_ref(written, root)
        if name not in filled and "default" in sub and not (isinstance(ref, str) and ref in seen):
            filled[name] = copy.deepcopy(sub["default"])
        if isinstance(filled.get(name), dict):
            below = seen | {ref} if isinstance(ref, str) else seen
            filled[name] = fill_defaults(sub, filled[name], root, below)
    return filled


def _resolve_ref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a local ``$ref`` replaced by its target, sibling keys kept on top."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return schema
    target: Any = root
    for escaped in ref[1:].split("/"):
        if not escaped:
            continue
        part = escaped.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return schema
        target = target[part]
    if not isinstance(target, dict):
        return schema
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


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
    kind: str  # a value of ENV_TYPES: "lookup" | "simulated" | "database"
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
    digest: str = ""  # of the definition: what every executor call's key holds of it
    state: str | None = None  # key of the state a conversation starts from (stateful kinds)
    where: str = ""  # file:line:col of its database, for the runtime's messages

    @property
    def stateful(self) -> bool:
        """A simulated environment with ``state_params.initial_state`` (oumi's stateful mode)."""
        return self.initial_state is not None

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


def look_up(env: Environment, tool: Tool, args: dict[str, Any]) -> Any:
    """A lookup environment's answer to a call (its table entry whose input equals the
    arguments after schema defaults); raises ToolError in oumi 0.9's words on a miss."""
    wanted = canonical(fill_defaults(tool.parameters, args))
    for entry_input, output in env.table.get(tool.id, ()):
        if canonical(entry_input) == wanted:
            return copy.deepcopy(output)
    inputs = json.dumps([i for i, _ in env.table.get(tool.id, ())], sort_keys=True)
    raise ToolError(
        raised(
            tool,
            f"No lookup output matches arguments {wanted} for tool '{tool.id}'. "
            f"Configured inputs: {inputs}",
        )
    )


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

    def listing(self) -> list[dict[str, Any]]:
        """The offered tools as a conversation row lists them (never part of a request)."""
        return [tool.listed() for tool in self.offered]

    def grounding_facts(self, seed: int, sample: int) -> list[dict[str, Any]]:
        """The planner's grounding rows for ``sample``: ``Random(seed + sample)`` per
        environment, oumi's draw (synthc's seed when the config sets none)."""
        facts: list[dict[str, Any]] = []
        for grounding, pool in self.grounded:
            rng = random.Random((grounding.seed if grounding.seed is not None else seed) + sample)
            facts += rng.sample(pool, min(grounding.sample_size, len(pool)))
        return facts


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
    """A simulated tool's output: the reply's JSON object, checked against the tool's
    output_schema; raises a ToolError in oumi 0.9's words when it is not one."""
    try:
        return _simulated_output(tool, text.strip())
    except ToolError as exc:
        raise ToolError(raised(tool, exc)) from None


def _simulated_output(tool: Tool, raw: str) -> dict[str, Any]:
    """oumi's ``_parse_and_validate`` of a simulator reply (``raw``, already stripped)."""
    if not raw:
        raise ToolError(f"Simulator returned empty response for '{tool.id}'.")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = json_object_in(raw)
        if value is None:
            raise ToolError(
                f"Simulator output for '{tool.id}' is not valid JSON: {raw[:200]!r}"
            ) from None
    if not isinstance(value, dict):
        raise ToolError(
            f"Simulator output for '{tool.id}' must be a JSON object, got {type(value).__name__}."
        )
    if tool.output_schema is not None:
        problem = validation_text(tool.output_schema, value)
        if problem:
            raise ToolError(f"Simulator output for '{tool.id}' failed schema validation: {problem}")
    return value


_FENCED = re.compile(r"```(?:json)?\s*([\s\S]*?)```")


def json_object_in(text: str) -> dict[str, Any] | None:
    """The JSON object inside prose (oumi's ``extract_json(text, expected_type=dict)``):
    the first code fence's content, else the span from the first ``{`` to the last ``}``."""
    fenced = _FENCED.search(text)
    candidates = [fenced.group(1)] if fenced else []
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def raised(tool: Tool, exc: Exception | str) -> str:
    """oumi's words for a tool call whose environment raised ``exc``."""
    return f"Tool '{tool.id}' raised: {exc}"


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
