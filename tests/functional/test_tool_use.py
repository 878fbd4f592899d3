"""Tool-use conversations end to end: real HTTP, scripted models, requests counted.

The loopback server plays the model: ``Librarian`` and friends decide tool calls
from what the request shows, so the tests know exactly which requests a build
must send, and which a rerun after an edit must send again.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import synthc
from synthc.compiler.graph import MultiturnRule
from synthc.planning.conversation import target_turns
from synthc.testing._wire import default_reply
from synthc.testing.server import FakeLLMServer, Fault
from tests.conftest import OUMI_EXAMPLES, pointed_at, run_cli

Body = dict[str, Any]


def _tool_results(body: Body) -> list[str]:
    """The tool results since the user's last own message (OpenAI wire format)."""
    results: list[str] = []
    for message in body["messages"]:
        if message["role"] == "user":
            results = []
        elif message["role"] == "tool":
            results.append(message["content"])
    return results


def _call(tool: str, /, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": tool, "arguments": arguments}]}


def librarian(body: Body) -> str | dict[str, Any]:
    """Lists the catalog, then looks up B002, then answers."""
    if not body.get("tools"):
        return default_reply(body)  # user turns, the planner
    done = _tool_results(body)
    if not done:
        return _call("list_book_catalog")
    if len(done) == 1:
        return _call("lookup_book_status", book_id="B002")
    return f"Here is what I found: {done[-1]}"


def _kind(body: Body) -> str:
    if body.get("response_format"):
        return "plan"
    return "assistant" if body.get("tools") else "user"


def _build(server: FakeLLMServer, config: Path, *extra: str) -> Counter[str]:
    """Build ``config`` against ``server``; what kinds of request it sent."""
    before = len(server.requests)
    result = run_cli("build", str(config), *pointed_at(server), *extra)
    assert result.exit_code == 0, result.stderr
    return Counter(_kind(b) for b in server.requests[before:])


def _rows(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


def _copy(name: str, tmp_path: Path, *executors: str) -> Path:
    shutil.copy(OUMI_EXAMPLES / name, tmp_path / name)
    for module in executors:
        shutil.copy(OUMI_EXAMPLES / "executors" / module, tmp_path / module)
    return tmp_path / name


def _turns(row: dict[str, Any], column: str) -> Counter[str]:
    """User and assistant turns of a written conversation (tool traffic not counted)."""
    messages = row[column]["messages"]
    return Counter(
        m["role"] for m in messages if m["role"] in ("user", "assistant") and "tool_calls" not in m
    )


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return _copy("library_tool_use_synth.yaml", tmp_path)


def test_tool_rounds_are_nodes_and_their_results_come_from_the_table(
    library: Path, tmp_path: Path
) -> None:
    with FakeLLMServer(reply=librarian) as server:
        sent = _build(server, library, "--num_samples", "5")
        rows = _rows(tmp_path)
        turns = [_turns(row, "library_dialog") for row in rows]
        assert sent == {
            "plan": 5,
            "user": sum(t["user"] for t in turns),
            "assistant": 3 * sum(t["assistant"] for t in turns),  # catalog, status, answer
        }
        messages = rows[0]["library_dialog"]["messages"]
        assert [m["role"] for m in messages[:6]] == [
            "system",
            "user",
            "assistant",
            "tool",
            "assistant",
            "tool",
        ]
        call = messages[4]["tool_calls"][0]
        assert call["type"] == "function"
        assert call["function"] == {
            "name": "lookup_book_status",
            "arguments": '{"book_id": "B002"}',
        }
        assert json.loads(messages[5]["content"]) == {
            "title": "The Great Gatsby",
            "status": "checked_out",
            "due_date": "2026-05-15",
        }
        assert messages[5]["tool_call_id"] == call["id"]
        assert messages[6]["content"].startswith("Here is what I found:")
        assert _build(server, library, "--num_samples", "5") == Counter()


def test_editing_a_tool_result_reruns_only_what_saw_it(library: Path, tmp_path: Path) -> None:
    with FakeLLMServer(reply=librarian) as server:
        _build(server, library, "--num_samples", "4")
        turns = [_turns(row, "library_dialog") for row in _rows(tmp_path)]
        text = library.read_text()
        library.write_text(text.replace('due_date: "2026-05-15"', 'due_date: "2026-06-01"'))
        sent = _build(server, library, "--num_samples", "4")
    # per conversation: turn 2's answer round saw the edited result; every later
    # turn has it in its history. The plan, turn 1 and turn 2's first two rounds are cached.
    assert sent == {
        "assistant": sum(1 + 3 * (t["assistant"] - 1) for t in turns),
        "user": sum(t["user"] - 1 for t in turns),
    }
    assert "2026-06-01" in json.dumps(_rows(tmp_path))


def test_rows_list_the_tools_and_the_listing_joins_no_key(library: Path, tmp_path: Path) -> None:
    """Each row lists the conversation's tools, as oumi 0.9 writes them. Editing a tool's
    description changes the tools every assistant round is sent, so those rounds rerun;
    the plans and user turns, whose requests carry no tools, stay cached, and so does the
    listing's own part of the row: it is output, never a key."""
    with FakeLLMServer(reply=librarian) as server:
        _build(server, library, "--num_samples", "3")
        turns = [_turns(row, "library_dialog") for row in _rows(tmp_path)]
        for row in _rows(tmp_path):
            listed = row["library_dialog"]["tools"]
            assert [t["function"]["name"] for t in listed] == [
                "list_book_catalog",
                "lookup_book_status",
            ]
            assert list(listed[0]) == ["function"]
        text = library.read_text()
        library.write_text(text.replace("List all books in", "List every book in"))
        sent = _build(server, library, "--num_samples", "3")
    assert sent == {"assistant": 3 * sum(t["assistant"] for t in turns)}
    for row in _rows(tmp_path):
        assert row["library_dialog"]["tools"][0]["function"]["description"].startswith(
            "List every book in"
        )


def test_grounding_facts_reach_the_planner(library: Path) -> None:
    with FakeLLMServer(reply=librarian) as server:
        _build(server, library, "--num_samples", "2")
        plans = [b for b in server.requests if _kind(b) == "plan"]
    prompt = plans[0]["messages"][-1]["content"]
    assert "Ground this plan in these specific entities:\n- book_id=" in prompt
    assert "Grounding rules (role-aware):" in prompt
    assert (
        prompt.index("Role context:")
        < prompt.index("Ground this plan")
        < prompt.index("Additional instructions:")
    )


def test_a_model_that_never_stops_calling_tools_is_cut_off(library: Path, tmp_path: Path) -> None:
    def catalog_forever(body: Body) -> str | dict[str, Any]:
        return _call("list_book_catalog") if body.get("tools") else default_reply(body)

    with FakeLLMServer(reply=catalog_forever) as server:
        sent = _build(
            server,
            library,
            "--num_samples",
            "1",
            "--strategy_params.multiturn_attributes[0].max_consecutive_tool_turns",
            "2",
        )
        final = [b for b in server.requests if _kind(b) == "user"][-1]
    turns = _turns(_rows(tmp_path)[0], "library_dialog")
    assert sent["assistant"] == 2 * turns["assistant"]
    assert final["messages"][-1]["content"].startswith("Stop calling tools.")


def test_broken_and_unknown_calls_are_answered_with_errors(library: Path, tmp_path: Path) -> None:
    def clumsy(body: Body) -> str | dict[str, Any]:
        if not body.get("tools"):
            return default_reply(body)
        if _tool_results(body):
            return "Sorry about that."
        calls = [
            {"name": "renew_book", "arguments": {}},
            {"name": "lookup_book_status", "arguments": '{"book_id": '},
        ]
        return {"tool_calls": calls}

    with FakeLLMServer(reply=clumsy) as server:
        _build(server, library, "--num_samples", "1")
    messages = _rows(tmp_path)[0]["library_dialog"]["messages"]
    errors = [json.loads(m["content"])["error"] for m in messages if m["role"] == "tool"]
    assert errors[0].startswith("Unknown tool 'renew_book'")
    assert errors[1].startswith("Tool 'lookup_book_status' arguments are not valid JSON")


def clinician(body: Body) -> str | dict[str, Any]:
    """Looks up patient 3, changes the medication, looks again, answers."""
    if not body.get("tools"):
        return default_reply(body)
    done = _tool_results(body)
    script = [
        _call("lookup_patient", pat_id=3),
        _call("update_meds", pat_id=3, medication="insulin"),
        _call("lookup_patient", pat_id=3),
    ]
    return script[len(done)] if len(done) < len(script) else f"Done: {done[-1]}"


def test_database_writes_persist_within_a_conversation_only(tmp_path: Path) -> None:
    config = _copy("ehr_database_synth.yaml", tmp_path, "ehr_db.py")
    with FakeLLMServer(reply=clinician) as server:
        _build(server, config, "--num_samples", "3")
    for row in _rows(tmp_path):
        results = [
            json.loads(m["content"]) for m in row["ehr_dialog"]["messages"] if m["role"] == "tool"
        ]
        assert results[0] == {"id": 3, "name": "Carol Diaz", "meds": None}  # a fresh database
        assert results[2]["meds"] == "insulin"  # the write is seen later in the conversation
        if len(results) > 3:  # a second assistant turn: the state carried over
            assert results[3]["meds"] == "insulin"


def test_stateful_executors_carry_state_across_turns(tmp_path: Path) -> None:
    config = _copy("ehr_stateful_synth.yaml", tmp_path, "ehr.py")

    def prescriber(body: Body) -> str | dict[str, Any]:
        if not body.get("tools"):
            return default_reply(body)
        if _tool_results(body):
            return "Prescribed."
        return _call("prescribe_medication", patient_id="P002", name="ibuprofen", dose="200mg")

    with FakeLLMServer(reply=prescriber) as server:
        _build(
            server,
            config,
            "--num_samples",
            "4",
            "--strategy_params.multiturn_attributes[0].min_turns",
            "4",
        )
    for row in _rows(tmp_path):
        results = [
            json.loads(m["content"])
            for m in row["ehr_conversation"]["messages"]
            if m["role"] == "tool"
        ]
        assert results[0]["status"] == "ok"  # every conversation starts from the initial state
        assert all(r["error"] == "already_prescribed" for r in results[1:])
        assert len(results) >= 2


def test_simulated_tools_are_cached_nodes_with_valid_output(tmp_path: Path) -> None:
    import jsonschema

    config = _copy("mcp_docs_lookup_synth.yaml", tmp_path)

    def developer(body: Body) -> str | dict[str, Any]:
        if not body.get("tools"):
            return default_reply(body)  # user turns, planner, and the tool simulator
        if _tool_results(body):
            return "Resolved."
        react = {"name": "resolve_library_id", "arguments": {"name": "react"}}
        return {"tool_calls": [react, react]}  # the same call twice: simulated once

    with FakeLLMServer(reply=developer) as server:
        sent = _build(server, config, "--num_samples", "3")
        rows = _rows(tmp_path)
        simulations = [
            b
            for b in server.requests
            if b.get("response_format") and "You are simulating" in b["messages"][0]["content"]
        ]
        turns = [_turns(row, "docs_lookup_conversation") for row in rows]
        # cache_by_input: one simulation per build, however often and by whichever
        # conversation react is asked for (oumi 0.9 shares the environment and its cache)
        assert len(simulations) == 1 < len(rows)
        assert sent["assistant"] == 2 * sum(t["assistant"] for t in turns)
        for row in rows:
            tools = [m for m in row["docs_lookup_conversation"]["messages"] if m["role"] == "tool"]
            assert tools[0]["content"] == tools[1]["content"]
            jsonschema.validate(json.loads(tools[0]["content"]), _resolve_schema())
        assert _build(server, config, "--num_samples", "3") == Counter()


def _resolve_schema() -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((OUMI_EXAMPLES / "mcp_docs_lookup_synth.yaml").read_text())
    tools = data["environment_config"]["environments"][0]["tools"]
    schema: dict[str, Any] = next(t for t in tools if t["id"] == "resolve_library_id")[
        "output_schema"
    ]
    return schema


@pytest.mark.parametrize("engine", ["OPENAI", "ANTHROPIC"])
def test_tool_use_speaks_each_providers_protocol(
    engine: str, library: Path, tmp_path: Path
) -> None:
    path = "/v1/chat/completions" if engine == "OPENAI" else "/v1/messages"
    with FakeLLMServer() as server:  # the default model: calls a tool, then answers
        overrides = ["--inference_config.engine", engine, "--num_samples", "2"]
        result = run_cli("build", str(library), *pointed_at(server, path), *overrides)
        assert result.exit_code == 0, result.stderr
    for row in _rows(tmp_path):
        roles = [m["role"] for m in row["library_dialog"]["messages"]]
        assert "tool" in roles


def test_the_shipped_tool_example_builds_from_yaml_and_synth(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    for name in ("library_agent.yaml", "library_agent.synth", "library_tools.py"):
        shutil.copy(examples / name, tmp_path / name)
    with FakeLLMServer() as server:
        sent = _build(server, tmp_path / "library_agent.yaml")
        assert sent["assistant"] > 0
        rows = _rows(tmp_path)
        assert _build(server, tmp_path / "library_agent.synth") == Counter()  # the same nodes
    assert _rows(tmp_path) == rows
    assert len(rows) == 4
    assert all(list(row) == ["patron", "dialog", "dialog_plan"] for row in rows)
    results = [
        json.loads(m["content"])
        for row in rows
        for m in row["dialog"]["messages"]
        if m["role"] == "tool"
    ]
    assert results  # the default model calls a tool in every assistant turn


def test_explain_why_shows_a_tool_round(library: Path) -> None:
    with FakeLLMServer(reply=librarian) as server:
        _build(server, library, "--num_samples", "1")
    result = run_cli(
        "explain", str(library), "--num_samples", "1", "--why", "library_dialog.turn2.r2[0]"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("library_dialog.turn2.r2[0]  cached")
    assert "    calls list_book_catalog({})" in result.stdout  # the round's input
    assert "[tool] {" in result.stdout and '"books": [' in result.stdout
    assert 'calls lookup_book_status({"book_id": "B002"})' in result.stdout  # its output
    assert "user_persona = " in result.stdout and "(cached)" in result.stdout
    wrong = run_cli("explain", str(library), "--why", "library_dialog.turn2.x[0]")
    assert wrong.exit_code == 2
    assert (
        "no node 'library_dialog.turn2.x[0]'; nodes are library_dialog.plan[0..9]" in wrong.stderr
    )


def test_explain_counts_tool_rounds_once_they_are_known(library: Path) -> None:
    with FakeLLMServer(reply=librarian) as server:
        _build(server, library, "--num_samples", "2")
        sent = server.count
    result = run_cli("explain", str(library), "--num_samples", "3", "--format", "json")
    assert result.exit_code == 0, result.stderr
    totals = json.loads(result.stdout)["totals"]
    graph = synthc.compile(library, ["--num_samples", "3"])
    rule = next(r for r in graph.rules if isinstance(r, MultiturnRule))
    # the new sample: its plan must run, then each of its turns (one request at least)
    blocked = target_turns(graph.seed, 2, rule)
    assert totals == {
        "nodes": sent + 1 + blocked,
        "cached": sent,
        "run": 1,
        "blocked": blocked,
        "failed": 0,
    }


def test_explain_counts_the_turns_left_after_tool_rounds(library: Path) -> None:
    def refuse_turn_3(body: Body, attempt: int) -> Fault | None:
        last = body["messages"][-1].get("content") or ""
        return Fault(status=400) if "turn 3 of" in str(last) else None

    with FakeLLMServer(reply=librarian, faults=refuse_turn_3) as server:
        result = run_cli("build", str(library), *pointed_at(server), "--num_samples", "1")
        assert result.exit_code == 1
        sent = server.count
    graph = synthc.compile(library, ["--num_samples", "1"])
    rule = next(r for r in graph.rules if isinstance(r, MultiturnRule))
    turns = target_turns(graph.seed, 0, rule)
    result = run_cli("explain", str(library), "--num_samples", "1", "--format", "json")
    totals = json.loads(result.stdout)["totals"]
    # cached: the plan, turn 1 and turn 2's three rounds; turn 3 runs; turns 4.. wait for it
    assert sent == 6
    assert (totals["cached"], totals["run"], totals["blocked"]) == (5, 1, turns - 3)


_SHOP = """\
num_samples: 2
output_path: out.jsonl
environment_config:
  environments:
    - id: shop
      env_type: simulated
      env_kwargs: {tool_persona: You run a small shop.}
      tools:
        - id: shout
          name: shout
          description: Upper-case a text.
          parameters:
            type: object
            properties: {text: {type: string}}
            required: [text]
          executor: shop_tools.shout
        - id: forecast
          name: forecast
          description: The weather in a city.
          parameters: {type: object, properties: {city: {type: string}}}
          output_schema:
            type: object
            properties: {city: {type: string}}
            required: [city]
strategy_params:
  input_examples: [{examples: [{topic: weather}]}]
  multiturn_attributes:
    - id: chat
      min_turns: 1
      max_turns: 1
      available_environments: [shop]
      role_instruction_messages:
        USER: You ask the shop about {topic}.
        ASSISTANT: You use your tools, then answer.
inference_config:
  engine: OPENAI
  model: {model_name: gpt-4o-mini}
"""


def test_tool_errors_reach_the_model_in_oumis_words(tmp_path: Path) -> None:
    """A stateless simulated environment runs its executor with ``arguments`` alone; bad
    arguments come back as jsonschema's own text, a simulator reply that misses the
    output_schema as oumi 0.9's ``Tool '<id>' raised: ...`` (json.dumps, default separators)."""
    config = tmp_path / "shop.yaml"
    config.write_text(_SHOP)
    (tmp_path / "shop_tools.py").write_text(
        "def shout(arguments):\n    return {'text': arguments['text'].upper()}\n"
    )
    script = [
        _call("shout", text=5),
        _call("shout", text="hi"),
        _call("forecast", city="Oslo"),
    ]

    def shopkeeper(body: Body) -> str | dict[str, Any]:
        system = body["messages"][0]["content"]
        if "You are simulating the `forecast` tool" in system:
            return '{"town": "Oslo"}'
        if not body.get("tools"):
            return default_reply(body)
        done = _tool_results(body)
        return script[len(done)] if len(done) < len(script) else "All done."

    with FakeLLMServer(reply=shopkeeper) as server:
        _build(server, config)
    expected = [
        "5 is not of type 'string'\n\n"
        "Failed validating 'type' in schema['properties']['text']:\n"
        "    {'type': 'string'}\n\n"
        "On instance['text']:\n"
        "    5",
        None,
        "Tool 'forecast' raised: Simulator output for 'forecast' failed schema validation: "
        "'city' is a required property\n\n"
        "Failed validating 'required' in schema:\n"
        "    {'type': 'object',\n"
        "     'properties': {'city': {'type': 'string'}},\n"
        "     'required': ['city']}\n\n"
        "On instance:\n"
        "    {'town': 'Oslo'}",
    ]
    for row in _rows(tmp_path):
        results = [m["content"] for m in row["chat"]["messages"] if m["role"] == "tool"]
        assert results == [
            json.dumps({"error": text}) if text else json.dumps({"text": "HI"}) for text in expected
        ]
