"""Tool-use environments compiled from configs: lookups, SQLite, stateful executors, grounding.

Calls run as a build runs them: a lookup is answered as planning answers it, an
executor call is a tool node the runtime's ToolRunner runs from the state the
conversation's previous call left (kept in a store, as the cache keeps it)."""

from __future__ import annotations

import json
import random
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

import synthc
from synthc.compiler.graph import LLMRule, MultiturnRule
from synthc.compiler.tools import Tool, ToolError, Toolset, fill_defaults, look_up, parse_simulated
from synthc.core.errors import ConfigError
from synthc.core.records import Record
from synthc.planning.plan import tool_node
from synthc.runtime.tools import ToolRunError, ToolRunner
from tests.conftest import OUMI_EXAMPLES, run_cli

EXECUTORS = OUMI_EXAMPLES / "executors"


def _toolset(config: Path, *overrides: str) -> Toolset:
    graph = synthc.compile(config, overrides)
    rule = next(r for r in graph.rules if isinstance(r, MultiturnRule))
    assert rule.toolset is not None
    return rule.toolset


def _example(name: str, tmp_path: Path, *executors: str) -> Path:
    shutil.copy(OUMI_EXAMPLES / name, tmp_path / name)
    for module in executors:
        shutil.copy(EXECUTORS / module, tmp_path / module)
    return tmp_path / name


class _Records(dict[str, Record]):
    """A store in memory, enough for a ToolRunner to find the states it left."""

    def put(self, key: str, record: Record) -> None:
        self[key] = record

    def contains(self, key: str) -> bool:
        return key in self

    def close(self) -> None:
        pass


class Session:
    """One conversation's tool calls, made one after another as a build makes them."""

    def __init__(self, toolset: Toolset):
        self.toolset = toolset
        self.records = _Records()
        self.runner = ToolRunner(self.records)
        self.states = {e.id: e.state for e in toolset.environments.values()}

    def run(self, tool: Tool, args: dict[str, Any]) -> Any:
        """The call's output, or ToolError with the error the model would be told."""
        env = self.toolset.environments[tool.env]
        if env.kind == "lookup":
            return look_up(env, tool, args)
        step = LLMRule("dialog.turn2.call1", (), (), "")
        node = tool_node(0, step, tool, env, args=args, env_state=self.states[env.id])
        answer = self.runner.run_now(node)
        if answer.state is not None:
            self.records.put(answer.state.key, answer.state)
        self.states[env.id] = answer.ran.state
        output = json.loads(answer.ran.content)
        if isinstance(output, dict) and set(output) == {"error"}:
            raise ToolError(output["error"])
        return output

    def close(self) -> None:
        self.runner.close()


def _call(session: Session, tool: str, **args: object) -> Any:
    return session.run(session.toolset.known[tool], args)


def test_library_lookup_serves_the_table_after_filling_defaults(tmp_path: Path) -> None:
    tools = _toolset(_example("library_tool_use_synth.yaml", tmp_path))
    assert [t["function"]["name"] for t in tools.definitions()] == [
        "list_book_catalog",
        "lookup_book_status",
    ]
    session = Session(tools)
    assert _call(session, "lookup_book_status", book_id="B002") == {
        "title": "The Great Gatsby",
        "status": "checked_out",
        "due_date": "2026-05-15",
    }
    assert len(_call(session, "list_book_catalog")["books"]) == 8
    with pytest.raises(ToolError) as info:  # what the environment raised, as oumi 0.9 words it
        _call(session, "lookup_book_status", book_id="B999")
    assert str(info.value).startswith(
        "Tool 'lookup_book_status' raised: No lookup output matches arguments "
        '{"book_id": "B999"} for tool \'lookup_book_status\'. '
        'Configured inputs: [{"book_id": "B001"}'
    )


def test_lookup_fills_schema_defaults_before_matching(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(_LOOKUP_WITH_DEFAULT)
    session = Session(_toolset(config))
    assert _call(session, "weather") == {"temp": 20}  # unit defaults to "C"
    assert _call(session, "weather", unit="F") == {"temp": 68}


def test_tool_arguments_are_checked_against_the_parameters(tmp_path: Path) -> None:
    tool = _toolset(_example("library_tool_use_synth.yaml", tmp_path)).known["lookup_book_status"]
    assert tool.arguments('{"book_id": "B001"}') == {"book_id": "B001"}
    with pytest.raises(ToolError, match="not valid JSON"):
        tool.arguments("{book_id")
    with pytest.raises(ToolError, match="must be a JSON object, got list"):
        tool.arguments("[1]")
    with pytest.raises(ToolError, match=r"^'book_id' is a required property\n\nFailed validating"):
        tool.arguments("{}")


def test_grounding_draws_oumis_facts_from_the_lookup_table(tmp_path: Path) -> None:
    tools = _toolset(_example("library_tool_use_synth.yaml", tmp_path))
    table = json.loads(json.dumps(_library_status_rows()))
    for sample in range(4):
        expected = random.Random(13 + sample).sample(table, 2)  # sample_size 2, seed 13
        assert tools.grounding_facts(seed=0, sample=sample) == expected
    assert list(tools.grounding_facts(0, 0)[0]) == ["book_id", "title", "status"]


def _library_status_rows() -> list[dict[str, str]]:
    import yaml

    data = yaml.safe_load((OUMI_EXAMPLES / "library_tool_use_synth.yaml").read_text())
    env = data["environment_config"]["environments"][0]
    rows = env["env_kwargs"]["lookup_table"]["lookup_book_status"]
    return [
        {
            "book_id": r["input"]["book_id"],
            "title": r["output"]["title"],
            **{"status": r["output"]["status"]},
        }
        for r in rows
    ]


def test_database_conversations_are_isolated_and_rolled_back(tmp_path: Path) -> None:
    tools = _toolset(_example("ehr_database_synth.yaml", tmp_path, "ehr_db.py"))
    first, second = Session(tools), Session(tools)
    assert _call(first, "update_meds", pat_id=3, medication="insulin")["status"] == "ok"
    assert _call(first, "lookup_patient", pat_id=3)["meds"] == "insulin"
    assert _call(second, "lookup_patient", pat_id=3)["meds"] is None
    first.close()
    second.close()
    assert _call(Session(tools), "lookup_patient", pat_id=3)["meds"] is None


def test_a_read_only_database_tool_cannot_write(tmp_path: Path) -> None:
    config = _example("ehr_database_synth.yaml", tmp_path, "ehr_db.py")
    text = config.read_text().replace(
        "executor: ehr_db.lookup_patient", "executor: ehr_db.update_meds"
    )
    config.write_text(text)
    session = Session(_toolset(config))
    with pytest.raises(ToolError) as info:
        _call(session, "lookup_patient", pat_id=1, medication="x")
    assert str(info.value) == "Tool 'lookup_patient' raised: attempt to write a readonly database"
    assert _call(session, "update_meds", pat_id=1, medication="x")["status"] == "ok"


def test_a_db_path_database_is_never_modified(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "clinic.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT, meds TEXT);"
            "INSERT INTO patients VALUES (1, 'Bob', 'aspirin');"
        )
    conn.close()
    config = _example("ehr_database_synth.yaml", tmp_path, "ehr_db.py")
    text = config.read_text()
    start, end = text.index("        schema_sql:"), text.index("      tools:")
    config.write_text(text[:start] + "        db_path: clinic.sqlite\n" + text[end:])
    session = Session(_toolset(config))
    assert _call(session, "update_meds", pat_id=1, medication="x")["status"] == "ok"
    assert _call(session, "lookup_patient", pat_id=1)["meds"] == "x"
    session.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT meds FROM patients").fetchone() == ("aspirin",)
    conn.close()


def test_stateful_executors_keep_state_per_conversation(tmp_path: Path) -> None:
    tools = _toolset(_example("ehr_stateful_synth.yaml", tmp_path, "ehr.py"))
    first, second = Session(tools), Session(tools)
    added = _call(first, "prescribe_medication", patient_id="P002", name="ibuprofen", dose="1")
    assert added["status"] == "ok"
    again = _call(first, "prescribe_medication", patient_id="P002", name="ibuprofen", dose="1")
    assert again["error"] == "already_prescribed"
    assert _call(second, "get_patient", patient_id="P002")["patient"]["medications"] == []
    conflict = _call(first, "prescribe_medication", patient_id="P001", name="penicillin", dose="1")
    assert conflict["error"] == "allergy_conflict"


def test_stateful_grounding_projects_the_initial_state(tmp_path: Path) -> None:
    tools = _toolset(_example("ehr_stateful_synth.yaml", tmp_path, "ehr.py"))
    facts = tools.grounding_facts(seed=0, sample=5)
    assert len(facts) == 3
    assert all(list(f) == ["patient_id", "name", "dob"] for f in facts)
    assert facts == tools.grounding_facts(seed=99, sample=5)  # the config's seed (7) wins


def test_an_executor_output_is_checked_before_its_state(tmp_path: Path) -> None:
    config = _example("ehr_stateful_synth.yaml", tmp_path, "ehr.py")
    text = config.read_text().replace("executor: ehr.get_patient", "executor: ehr.update_allergies")
    config.write_text(text)
    session = Session(_toolset(config))
    with pytest.raises(ToolError) as info:  # oumi checks the output_schema first
        _call(session, "get_patient", patient_id="P001", allergies=[])
    assert str(info.value).startswith(
        "Tool 'get_patient' raised: Tool 'get_patient' executor output failed schema validation: "
    )


@pytest.mark.parametrize(
    ("example", "written", "names"),
    [
        ("mcp_docs_lookup_synth.yaml", "env_type: synthetic", ("simulated", "SIMULATED")),
        ("library_tool_use_synth.yaml", "env_type: deterministic", ("lookup", "Lookup")),
    ],
)
def test_every_name_of_an_environment_type_builds_the_same_environment(
    example: str, written: str, names: tuple[str, ...], tmp_path: Path
) -> None:
    """oumi 0.9 calls them ``simulated`` and ``lookup``; ``synthetic`` and ``deterministic``
    are its older names. Each name gives the same tools and the same node keys."""
    config = _example(example, tmp_path)
    text = config.read_text()
    assert written in text
    tools = _toolset(config)
    for name in names:
        config.write_text(text.replace(written, f"env_type: {name}"))
        renamed = _toolset(config)
        assert renamed.digest == tools.digest
        assert renamed.definitions() == tools.definitions()
        assert [t.simulated for t in renamed.offered] == [t.simulated for t in tools.offered]
    assert any(t.simulated for t in tools.offered) == (example == "mcp_docs_lookup_synth.yaml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("env_type: deterministic", "env_type: magic"), "unknown env_type 'magic'"),
        (
            ("env_type: deterministic", "env_type: endpoint"),
            "not supported yet: env_type 'endpoint'",
        ),
        (("        - library\n", "        - libary\n"), "unknown environment 'libary'"),
        (
            ("            - input: { book_id: B008 }", "            - input: { book_id: B001 }"),
            "duplicate input for tool 'lookup_book_status'",
        ),
        (
            ("            - input: { book_id: B008 }", "            - input: { book: B008 }"),
            "input does not match the tool's parameters",
        ),
    ],
)
def test_bad_environments_are_located(edit: tuple[str, str], message: str, tmp_path: Path) -> None:
    config = _example("library_tool_use_synth.yaml", tmp_path)
    text = config.read_text()
    assert edit[0] in text
    config.write_text(text.replace(edit[0], edit[1], 1))
    line = text[: text.index(edit[0])].count("\n") + 1
    with pytest.raises(ConfigError) as info:
        synthc.compile(config)
    diagnostic = next(d for d in info.value.diagnostics if message in d.message)
    assert diagnostic.span is not None
    assert diagnostic.span.file == str(config)
    assert line <= diagnostic.span.line <= line + 1


def test_an_executor_that_cannot_be_found_is_located(tmp_path: Path) -> None:
    config = _example("ehr_database_synth.yaml", tmp_path)  # no ehr_db.py beside it
    with pytest.raises(ConfigError) as info:
        synthc.compile(config)
    spans = [d.span for d in info.value.diagnostics]
    assert len(spans) == 3  # one per tool
    assert all("cannot find executor 'ehr_db." in d.message for d in info.value.diagnostics)
    assert all(s is not None and s.line > 0 for s in spans)


def test_an_executor_module_that_fails_to_import_says_where_when_it_runs(tmp_path: Path) -> None:
    """Compiling reads an executor's module and never imports it; the runtime imports it
    for the first call, and a module that fails then fails the node, with the place in
    the config that names it."""
    config = _example("ehr_database_synth.yaml", tmp_path, "ehr_db.py")
    module = tmp_path / "ehr_db.py"
    module.write_text(module.read_text() + "\nraise RuntimeError('no database driver')\n")
    session = Session(_toolset(config))  # compiles
    with pytest.raises(ToolRunError) as info:
        _call(session, "lookup_patient", pat_id=2)
    assert re.search(
        r"ehr_database_synth\.yaml:\d+:\d+: importing .*ehr_db\.py failed: "
        r"RuntimeError: no database driver",
        str(info.value),
    )


def test_executors_can_be_named_by_file_path(tmp_path: Path) -> None:
    config = _example("ehr_database_synth.yaml", tmp_path)
    (tmp_path / "code").mkdir()
    shutil.copy(EXECUTORS / "ehr_db.py", tmp_path / "code" / "db_tools.py")
    config.write_text(
        config.read_text().replace("executor: ehr_db.", "executor: code/db_tools.py:")
    )
    session = Session(_toolset(config))
    assert _call(session, "lookup_patient", pat_id=2)["name"] == "Alice Chen"


def test_bad_sql_fails_its_calls_saying_where(tmp_path: Path) -> None:
    """The SQL runs first in the runtime (compiling opens no database)."""
    config = _example("ehr_database_synth.yaml", tmp_path, "ehr_db.py")
    config.write_text(config.read_text().replace("CREATE TABLE patients", "CREATE TABEL patients"))
    session = Session(_toolset(config))
    with pytest.raises(ToolRunError) as info:
        _call(session, "lookup_patient", pat_id=2)
    assert re.search(
        r"ehr_database_synth\.yaml:\d+:\d+: environment 'ehr': the database "
        r"cannot be set up: .*syntax error",
        str(info.value),
    )


def test_tool_use_on_an_engine_without_tool_calling_is_refused(tmp_path: Path) -> None:
    config = _example("library_tool_use_synth.yaml", tmp_path)
    with pytest.raises(
        ConfigError, match="tool use needs an engine with native tool calling; LLAMACPP"
    ):
        synthc.compile(config, ["--inference_config.engine", "LLAMACPP"])


_LOOKUP_WITH_DEFAULT = textwrap.dedent(
    """\
    num_samples: 1
    environment_config:
      environments:
        - id: weather_env
          env_type: lookup
          tools:
            - id: weather
              description: Current temperature.
              parameters:
                type: object
                properties:
                  unit: {type: string, enum: [C, F], default: C}
          env_kwargs:
            lookup_table:
              weather:
                - input: {}
                  output: {temp: 20}
                - input: {unit: F}
                  output: {temp: 68}
    strategy_params:
      input_examples: [{examples: [{city: Oslo}]}]
      multiturn_attributes:
        - id: chat
          min_turns: 2
          max_turns: 2
          available_environments: [weather_env]
          role_instruction_messages:
            USER: You ask about the weather.
            ASSISTANT: You answer with the weather tool.
    inference_config:
      engine: OPENAI
      model: {model_name: gpt-4o-mini}
    """
)


def test_environments_can_live_in_their_own_file(tmp_path: Path) -> None:
    config = _example("library_tool_use_synth.yaml", tmp_path)
    text = config.read_text()
    start, end = text.index("environment_config:\n"), text.index("strategy_params:")
    environments = "\n".join(line[2:] for line in text[start:end].splitlines()[1:])
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "library.yaml").write_text(environments)
    config.write_text(text[:start] + "environment_config_path: envs/library.yaml\n" + text[end:])
    tools = _toolset(config)
    assert _call(Session(tools), "lookup_book_status", book_id="B005")["title"] == "Dune"

    broken = environments.replace("env_type: deterministic", "env_type: magic")
    (tmp_path / "envs" / "library.yaml").write_text(broken)
    result = run_cli("build", str(config))
    assert result.exit_code == 2
    line = broken[: broken.index("env_type: magic")].count("\n") + 1
    assert f"{tmp_path / 'envs' / 'library.yaml'}:{line}:" in result.stderr
    assert "unknown env_type 'magic'" in result.stderr
    assert "env_type: magic" in result.stderr  # the env file's line is quoted


def test_a_missing_environment_file_is_located(tmp_path: Path) -> None:
    config = _example("library_tool_use_synth.yaml", tmp_path)
    text = config.read_text()
    start, end = text.index("environment_config:\n"), text.index("strategy_params:")
    config.write_text(text[:start] + "environment_config_path: nowhere.yaml\n" + text[end:])
    result = run_cli("build", str(config))
    assert result.exit_code == 2
    assert f"{config}:" in result.stderr and "no such file" in result.stderr


def test_a_schema_that_is_not_a_json_schema_is_located(tmp_path: Path) -> None:
    config = _example("library_tool_use_synth.yaml", tmp_path)
    text = config.read_text()
    config.write_text(
        text.replace("                type: string\n", '                type: "{string"\n')
    )
    with pytest.raises(ConfigError) as info:
        synthc.compile(config)
    [diagnostic] = info.value.diagnostics
    assert diagnostic.message.startswith(
        "parameters is not a valid JSON schema: '{string' is not valid under any of the given "
        "schemas (at properties/book_id/type)"
    )
    assert diagnostic.span is not None
    assert text.splitlines()[diagnostic.span.line - 1].strip() == "parameters:"


# --- oumi 0.9's error texts and its stateless simulated executors --------------------------

_BOX_TOOLS = textwrap.dedent(
    """\
    from synthc import ToolResult


    def shout(arguments):
        return {"text": arguments["text"].upper()}


    def peek(arguments, state=None):
        return ToolResult({"value": 1}, {"n": 1})


    def wrong(arguments, **context):
        return {"value": "x"}


    def boom(arguments, **context):
        raise KeyError("n")


    def add(arguments, state):
        state["n"] += arguments["by"]
        return ToolResult({"value": state["n"]}, state)


    def spoil(arguments, state):
        return ToolResult({"value": 0}, {"n": "many"})


    def restock(arguments, context):
        context.execute("UPDATE items SET qty = qty + 1")
        return {"value": context.execute("SELECT qty FROM items").fetchone()[0]}


    def count(arguments, context):
        return {"value": context.execute("SELECT qty FROM items").fetchone()[0]}


    def sneak(arguments, context):
        context.execute("UPDATE items SET qty = 100")
        context.commit()
        return {"value": 100}


    def spill(arguments, context):
        context.execute("UPDATE items SET qty = 50")
        return {"value": "fifty"}
    """
)

_BOX_CONFIG = """\
num_samples: 1
environment_config:
  environments:
{environments}
strategy_params:
  input_examples: [{{examples: [{{city: Oslo}}]}}]
  multiturn_attributes:
    - id: chat
      min_turns: 1
      max_turns: 1
      available_environments: [box]
      role_instruction_messages:
        USER: You ask.
        ASSISTANT: You use the tools.
inference_config:
  engine: OPENAI
  model: {{model_name: gpt-4o-mini}}
"""

_VALUE = {"type": "object", "properties": {"value": {"type": "integer"}}}
_TEXT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
_CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
_STATE = {"state_schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}


def _tool(tool_id: str, executor: str | None = None, **fields: Any) -> dict[str, Any]:
    """A tool of the box environment; ``executor`` names a function of _BOX_TOOLS."""
    tool: dict[str, Any] = {"id": tool_id, "name": tool_id, "description": f"The {tool_id} tool."}
    tool.update(fields)
    if executor is not None:
        tool["executor"] = f"box_tools.{executor}"
    return tool


def _box(tmp_path: Path, env_kwargs: dict[str, Any], *tools: dict[str, Any], **env: Any) -> Path:
    """A config whose one environment, ``box`` (simulated unless ``env_type`` says
    otherwise), has ``tools``; the executors of _BOX_TOOLS lie beside it."""
    import yaml

    (tmp_path / "box_tools.py").write_text(_BOX_TOOLS)
    written = {"id": "box", "env_type": "simulated", "env_kwargs": env_kwargs, **env}
    written["tools"] = list(tools)
    environments = textwrap.indent(yaml.safe_dump([written], sort_keys=False), "    ")
    config = tmp_path / "box.yaml"
    config.write_text(_BOX_CONFIG.format(environments=environments.rstrip()))
    return config


def _error(session: Session, tool: str, **args: object) -> str:
    with pytest.raises(ToolError) as info:
        _call(session, tool, **args)
    return str(info.value)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            '{"text": 5}',
            "5 is not of type 'string'\n\n"
            "Failed validating 'type' in schema['properties']['text']:\n"
            "    {'type': 'string'}\n\n"
            "On instance['text']:\n"
            "    5",
        ),
        (
            "{}",
            "'text' is a required property\n\n"
            "Failed validating 'required' in schema:\n"
            "    {'type': 'object',\n"
            "     'properties': {'text': {'type': 'string'}},\n"
            "     'required': ['text']}\n\n"
            "On instance:\n"
            "    {}",
        ),
        (
            "{text",
            "Tool 'shout' arguments are not valid JSON: Expecting property name enclosed in "
            "double quotes: line 1 column 2 (char 1)",
        ),
        ("null", "Tool 'shout' arguments must be a JSON object, got NoneType."),
    ],
)
def test_bad_arguments_are_answered_in_jsonschemas_own_words(
    arguments: str, expected: str, tmp_path: Path
) -> None:
    """oumi 0.9 answers arguments that fail the parameters with ``str()`` of jsonschema's
    ValidationError, nothing around it."""
    shout = _tool("shout", "shout", parameters=_TEXT)
    tool = _toolset(_box(tmp_path, {"tool_persona": "p"}, shout)).known["shout"]
    with pytest.raises(ToolError) as info:
        tool.arguments(arguments)
    assert str(info.value) == expected


@pytest.mark.parametrize(
    "env_kwargs",
    [
        {"tool_persona": "p"},
        {"tool_persona": " ", "cache_by_input": False, "state_params": _STATE},
        {"tool_persona": "p", "cache_by_input": False, "state_params": {"initial_state": None}},
    ],
    ids=["no-state-params", "state-schema-only", "null-initial-state"],
)
def test_a_stateless_simulated_environment_calls_executors_with_arguments_only(
    env_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    """oumi 0.9 is stateful only with ``state_params.initial_state``; otherwise an
    executor gets ``arguments=`` alone, and tools without one are simulated."""
    shout = _tool("shout", "shout", parameters=_TEXT, output_schema=_TEXT)
    forecast = _tool("forecast", output_schema=_CITY)
    tools = _toolset(_box(tmp_path, env_kwargs, shout, forecast))
    assert [t.simulated for t in tools.offered] == [False, True]
    assert _call(Session(tools), "shout", text="hi") == {"text": "HI"}


def test_executor_results_are_refused_in_oumis_words(tmp_path: Path) -> None:
    tools = [
        _tool("peek", "peek", output_schema=_VALUE),
        _tool("wrong", "wrong", output_schema=_VALUE),
        _tool("boom", "boom"),
    ]
    session = Session(_toolset(_box(tmp_path, {"tool_persona": "p"}, *tools)))
    assert _error(session, "peek") == (
        "Tool 'peek' raised: Tool 'peek' executor returned updated_state but the environment "
        "is stateless."
    )
    assert _error(session, "wrong") == (
        "Tool 'wrong' raised: Tool 'wrong' executor output failed schema validation: "
        "'x' is not of type 'integer'\n\n"
        "Failed validating 'type' in schema['properties']['value']:\n"
        "    {'type': 'integer'}\n\n"
        "On instance['value']:\n"
        "    'x'"
    )
    assert _error(session, "boom") == "Tool 'boom' raised: 'n'"  # str(KeyError('n'))


def test_stateful_results_are_refused_in_oumis_words(tmp_path: Path) -> None:
    state = {**_STATE, "initial_state": {"n": 0}}
    by = {"type": "object", "properties": {"by": {"type": "integer"}}}
    tools = [
        _tool("add", "add", parameters=by, output_schema=_VALUE, read_only=False),
        _tool("peek", "peek", output_schema=_VALUE),
        _tool("spoil", "spoil", output_schema=_VALUE, read_only=False),
    ]
    env_kwargs = {"tool_persona": "p", "cache_by_input": False, "state_params": state}
    session = Session(_toolset(_box(tmp_path, env_kwargs, *tools)))
    assert _call(session, "add", by=2) == {"value": 2}
    assert _error(session, "peek") == (
        "Tool 'peek' raised: Tool 'peek' is read_only but executor returned updated_state. "
        "Read-only tools must not mutate state."
    )
    assert _error(session, "spoil") == (
        "Tool 'spoil' raised: Tool 'spoil' updated_state failed state_schema validation: "
        "'many' is not of type 'integer'\n\n"
        "Failed validating 'type' in schema['properties']['n']:\n"
        "    {'type': 'integer'}\n\n"
        "On instance['n']:\n"
        "    'many'"
    )
    assert _call(session, "add", by=3) == {"value": 5}  # refused states were never kept


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("  ", "Simulator returned empty response for 'forecast'."),
        ("sunny", "Simulator output for 'forecast' is not valid JSON: 'sunny'"),
        ("[1]", "Simulator output for 'forecast' must be a JSON object, got list."),
        (
            '{"city": 3}',
            "Simulator output for 'forecast' failed schema validation: 3 is not of type "
            "'string'\n\nFailed validating 'type' in schema['properties']['city']:\n"
            "    {'type': 'string'}\n\nOn instance['city']:\n    3",
        ),
    ],
)
def test_simulator_replies_are_refused_in_oumis_words(
    reply: str, error: str, tmp_path: Path
) -> None:
    tool = _toolset(_box(tmp_path, {"tool_persona": "p"}, _tool("forecast", output_schema=_CITY)))
    with pytest.raises(ToolError) as info:
        parse_simulated(tool.known["forecast"], reply)
    assert str(info.value) == f"Tool 'forecast' raised: {error}"


@pytest.mark.parametrize(
    "reply",
    [
        'Result:\n```json\n{"city": "Oslo"}\n```',
        'A {"city": "Oslo"} B ```json\n[1]\n```',
        ' {"city": "Oslo"}\n',
    ],
)
def test_a_simulator_reply_in_prose_is_found_as_oumi_finds_it(reply: str, tmp_path: Path) -> None:
    tool = _toolset(_box(tmp_path, {"tool_persona": "p"}, _tool("forecast", output_schema=_CITY)))
    assert parse_simulated(tool.known["forecast"], reply) == {"city": "Oslo"}


_SHOP = {
    "schema_sql": "CREATE TABLE items (sku TEXT PRIMARY KEY, qty INTEGER);",
    "seed_sql": "INSERT INTO items VALUES ('A1', 1);",
}


def test_database_executors_are_refused_in_oumis_words_and_rolled_back(tmp_path: Path) -> None:
    tools = [
        _tool(name, name, output_schema=_VALUE, read_only=name == "count")
        for name in ("restock", "count", "sneak", "spill")
    ]
    session = Session(_toolset(_box(tmp_path, _SHOP, *tools, env_type="database")))
    assert _call(session, "restock") == {"value": 2}
    assert _error(session, "sneak") == "Tool 'sneak' raised: not authorized"
    assert _error(session, "spill").startswith(
        "Tool 'spill' raised: Tool 'spill' executor output failed schema validation: "
        "'fifty' is not of type 'integer'"
    )
    assert _call(session, "count") == {"value": 2}  # neither write was kept
    session.close()


@pytest.mark.parametrize(
    ("env_kwargs", "extra", "message", "at"),
    [
        (
            {"tool_persona": "p", "cache_by_input": False, "state_params": {"initial_state": {}}},
            {},
            "tool 'forecast' needs an executor: with state_params.initial_state the simulated "
            "environment is stateful",
            "- id: forecast",
        ),
        (
            {"tool_persona": "p", "state_params": _STATE},
            {},
            "cache_by_input must be false when state_params is given",
            "env_kwargs:",
        ),
        (
            {"tool_persona": "p", "cache_by_input": True, "state_params": {}},
            {},
            "cache_by_input must be false when state_params is given",
            "cache_by_input: true",
        ),
        (
            {"tool_persona": "p", "cache_by_input": False, "state_params": {"initial": {}}},
            {},
            "state_params takes only state_schema and initial_state",
            "state_params:",
        ),
        (
            {"tool_persona": ""},
            {},
            "a simulated environment needs env_kwargs.tool_persona",
            "env_kwargs:",
        ),
        (
            {"tool_persona": "p", "cache_by_input": False, "state_params": _STATE},
            {"grounding": {"state": [{"state_path": "rows", "fields": ["a"]}]}},
            "grounding.state needs state_params with an initial_state",
            "state:",
        ),
        (
            {"tool_persona": "p"},
            {"grounding": {"tools": {}}},
            "grounding needs entries in tools or state",
            "grounding:",
        ),
    ],
    ids=[
        "stateful-without-executor",
        "state-params-cached",
        "state-params-cached-explicitly",
        "state-params-unknown-key",
        "empty-persona",
        "state-grounding-without-state",
        "empty-grounding",
    ],
)
def test_simulated_environments_oumi_refuses_are_located(
    env_kwargs: dict[str, Any], extra: dict[str, Any], message: str, at: str, tmp_path: Path
) -> None:
    config = _box(tmp_path, env_kwargs, _tool("forecast", output_schema=_CITY), **extra)
    with pytest.raises(ConfigError) as info:
        synthc.compile(config)
    diagnostic = next(d for d in info.value.diagnostics if d.message.startswith(message))
    assert diagnostic.span is not None
    assert config.read_text().splitlines()[diagnostic.span.line - 1].strip().startswith(at)


def test_state_grounding_must_name_a_list_of_the_initial_state(tmp_path: Path) -> None:
    state = {"initial_state": {"rows": [{"a": 1, "b": 2}], "n": 0}}
    env_kwargs = {"tool_persona": "p", "cache_by_input": False, "state_params": state}
    add = _tool("add", "add", read_only=False)
    grounding = {"state": [{"state_path": "rows", "fields": ["a"]}]}
    tools = _toolset(_box(tmp_path, env_kwargs, add, grounding=grounding))
    assert tools.grounding_facts(seed=0, sample=0) == [{"a": 1}]
    for state_path, problem in [
        ("items", "state_path 'items' is not in initial_state (its keys: ['n', 'rows'])"),
        ("n", "state_path 'n' must name a list in initial_state, got int"),
    ]:
        grounding = {"state": [{"state_path": state_path, "fields": ["a"]}]}
        with pytest.raises(ConfigError, match=re.escape(problem)):
            synthc.compile(_box(tmp_path, env_kwargs, add, grounding=grounding))


def test_grounding_may_name_a_tool_the_environment_lacks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """oumi 0.9 warns about such a grounding entry and ignores it."""
    config = _example("library_tool_use_synth.yaml", tmp_path)
    text = config.read_text()
    grounded = "        tools:\n          lookup_book_status:"
    assert grounded in text
    retired = "        tools:\n          retired_tool:\n            fields: [book_id]\n"
    config.write_text(text.replace(grounded, retired + grounded[len("        tools:\n") :], 1))
    with caplog.at_level("WARNING", logger="synthc"):
        _toolset(config)
    assert "names unknown tool 'retired_tool'" in caplog.text


def test_lookup_defaults_follow_local_refs_as_oumi_fills_them() -> None:
    schema = {
        "$defs": {
            "Unit": {"type": "string", "default": "C"},
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}},
        },
        "properties": {
            "unit": {"$ref": "#/$defs/Unit"},
            "root": {"$ref": "#/$defs/Node", "default": {}},
            "deep": {"type": "object", "properties": {"x": {"default": 1}}},
        },
    }
    assert fill_defaults(schema, {}) == {"unit": "C", "root": {}}
    assert fill_defaults(schema, {"deep": {}}) == {"deep": {"x": 1}, "unit": "C", "root": {}}
