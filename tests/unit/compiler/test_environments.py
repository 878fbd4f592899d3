"""Tool-use environments compiled from configs: lookups, SQLite, stateful executors, grounding."""

from __future__ import annotations

import json
import random
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

import synthc
from synthc.compiler.environments import Session, ToolError, Toolset
from synthc.compiler.graph import MultiturnRule
from synthc.errors import ConfigError
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


def _call(session: Session, tool: str, **args: object) -> Any:
    return session.run(session.toolset.known[tool], args)


def test_library_lookup_serves_the_table_after_filling_defaults(tmp_path: Path) -> None:
    tools = _toolset(_example("library_tool_use_synth.yaml", tmp_path))
    assert [t["function"]["name"] for t in tools.definitions()] == [
        "list_book_catalog",
        "lookup_book_status",
    ]
    session = tools.session()
    assert _call(session, "lookup_book_status", book_id="B002") == {
        "title": "The Great Gatsby",
        "status": "checked_out",
        "due_date": "2026-05-15",
    }
    assert len(_call(session, "list_book_catalog")["books"]) == 8
    with pytest.raises(ToolError, match="No lookup output matches arguments"):
        _call(session, "lookup_book_status", book_id="B999")


def test_lookup_fills_schema_defaults_before_matching(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(_LOOKUP_WITH_DEFAULT)
    session = _toolset(config).session()
    assert _call(session, "weather") == {"temp": 20}  # unit defaults to "C"
    assert _call(session, "weather", unit="F") == {"temp": 68}


def test_tool_arguments_are_checked_against_the_parameters(tmp_path: Path) -> None:
    tool = _toolset(_example("library_tool_use_synth.yaml", tmp_path)).known["lookup_book_status"]
    assert tool.arguments('{"book_id": "B001"}') == {"book_id": "B001"}
    with pytest.raises(ToolError, match="not valid JSON"):
        tool.arguments("{book_id")
    with pytest.raises(ToolError, match="must be a JSON object, got list"):
        tool.arguments("[1]")
    with pytest.raises(ToolError, match="'book_id' is a required property"):
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
    first, second = tools.session(), tools.session()
    assert _call(first, "update_meds", pat_id=3, medication="insulin")["status"] == "ok"
    assert _call(first, "lookup_patient", pat_id=3)["meds"] == "insulin"
    assert _call(second, "lookup_patient", pat_id=3)["meds"] is None
    first.close()
    second.close()
    assert _call(tools.session(), "lookup_patient", pat_id=3)["meds"] is None


def test_a_read_only_database_tool_cannot_write(tmp_path: Path) -> None:
    config = _example("ehr_database_synth.yaml", tmp_path, "ehr_db.py")
    text = config.read_text().replace(
        "executor: ehr_db.lookup_patient", "executor: ehr_db.update_meds"
    )
    config.write_text(text)
    session = _toolset(config).session()
    with pytest.raises(ToolError, match=r"Tool .lookup_patient. raised: .*readonly"):
        _call(session, "lookup_patient", pat_id=1, medication="x")
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
    session = _toolset(config).session()
    assert _call(session, "update_meds", pat_id=1, medication="x")["status"] == "ok"
    assert _call(session, "lookup_patient", pat_id=1)["meds"] == "x"
    session.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT meds FROM patients").fetchone() == ("aspirin",)
    conn.close()


def test_stateful_executors_keep_state_per_conversation(tmp_path: Path) -> None:
    tools = _toolset(_example("ehr_stateful_synth.yaml", tmp_path, "ehr.py"))
    first, second = tools.session(), tools.session()
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


def test_a_read_only_tool_that_returns_state_is_refused(tmp_path: Path) -> None:
    config = _example("ehr_stateful_synth.yaml", tmp_path, "ehr.py")
    text = config.read_text().replace("executor: ehr.get_patient", "executor: ehr.update_allergies")
    config.write_text(text)
    session = _toolset(config).session()
    with pytest.raises(ToolError, match="read-only tool 'get_patient' returned an updated_state"):
        _call(session, "get_patient", patient_id="P001", allergies=[])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("env_type: deterministic", "env_type: magic"), "unknown env_type 'magic'"),
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
    assert all("cannot load executor 'ehr_db." in d.message for d in info.value.diagnostics)
    assert all(s is not None and s.line > 0 for s in spans)


def test_an_executor_module_that_fails_to_import_says_why(tmp_path: Path) -> None:
    config = _example("ehr_database_synth.yaml", tmp_path)
    (tmp_path / "ehr_db.py").write_text("raise RuntimeError('no database driver')\n")
    with pytest.raises(ConfigError, match="RuntimeError: no database driver"):
        synthc.compile(config)


def test_executors_can_be_named_by_file_path(tmp_path: Path) -> None:
    config = _example("ehr_database_synth.yaml", tmp_path)
    (tmp_path / "code").mkdir()
    shutil.copy(EXECUTORS / "ehr_db.py", tmp_path / "code" / "db_tools.py")
    config.write_text(
        config.read_text().replace("executor: ehr_db.", "executor: code/db_tools.py:")
    )
    session = _toolset(config).session()
    assert _call(session, "lookup_patient", pat_id=2)["name"] == "Alice Chen"


def test_bad_sql_is_reported_at_compile_time(tmp_path: Path) -> None:
    config = _example("ehr_database_synth.yaml", tmp_path, "ehr_db.py")
    config.write_text(config.read_text().replace("CREATE TABLE patients", "CREATE TABEL patients"))
    with pytest.raises(ConfigError, match=r"the database cannot be set up: .*syntax error"):
        synthc.compile(config)


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
    assert _call(tools.session(), "lookup_book_status", book_id="B005")["title"] == "Dune"

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
