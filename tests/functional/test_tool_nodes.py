"""Executor calls are cached nodes: counted at the executors themselves and at the server.

The executors below append their name to ``calls.log`` beside the config on every
call, so a test counts real calls. The loopback model peeks at a counter, adds to
it (1 for Ann, 2 for Bo, 3 for Cy), then answers: per conversation a plan, a user
turn and three assistant rounds (5 requests). An executor call's key is what
decides its result (the executor's source, the arguments, the state it starts
from), so the three conversations' identical first peek is one call.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from synthc.testing._wire import default_reply
from synthc.testing.server import FakeLLMServer
from tests.conftest import pointed_at, run_cli

SAMPLES = 3

CONFIG = """\
num_samples: 3
output_path: out.jsonl
environment_config:
  environments:
    - id: counter
      env_type: simulated
      tools:
        - {id: peek, name: peek, description: The counter., read_only: true,
           executor: counter_tools.peek}
        - id: add
          name: add
          description: Add to the counter.
          read_only: false
          parameters: {type: object, properties: {by: {type: integer}}, required: [by]}
          executor: counter_tools.add
        - {id: reset, name: reset, description: Never called., read_only: false,
           executor: counter_tools.reset}
      env_kwargs:
        tool_persona: A counter.
        cache_by_input: false
        state_params:
          state_schema: {type: object, properties: {value: {type: integer}}}
          initial_state: {value: 0}
strategy_params:
  input_examples: [{examples: [{who: Ann}, {who: Bo}, {who: Cy}]}]
  multiturn_attributes:
    - id: chat
      min_turns: 1
      max_turns: 1
      role_instruction_messages:
        USER: "You are {who}; ask for the counter."
        ASSISTANT: "You keep {who}'s counter."
inference_config:
  engine: OPENAI
  model: {model_name: gpt-4o-mini}
"""

EXECUTORS = """\
from pathlib import Path

from synthc import ToolResult

CALLS = Path(__file__).with_name("calls.log")


def _log(name):
    with CALLS.open("a") as calls:
        calls.write(name + "\\n")


def peek(arguments, state):
    _log("peek")
    return {"value": state["value"]}


def add(arguments, state):
    _log("add")
    value = state["value"] + arguments["by"]
    return ToolResult({"value": value}, {"value": value})


def reset(arguments, state):
    _log("reset")
    return ToolResult({"value": 0}, {"value": 0})
"""


BY = {"Ann": 1, "Bo": 2, "Cy": 3}


def counter_keeper(body: dict[str, Any]) -> str | dict[str, Any]:
    """Peeks, adds the user's number, then answers with what the tools said."""
    if not body.get("tools"):
        return default_reply(body)
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    results = [m["content"] for m in messages[last_user:] if m["role"] == "tool"]
    if len(results) == 0:
        return {"tool_calls": [{"name": "peek", "arguments": {}}]}
    if len(results) == 1:
        who = messages[0]["content"].split()[2].removesuffix("'s")
        return {"tool_calls": [{"name": "add", "arguments": {"by": BY[who]}}]}
    return "done: " + " ".join(results)


def _setup(tmp_path: Path) -> Path:
    (tmp_path / "counter_tools.py").write_text(EXECUTORS)
    config = tmp_path / "counter.yaml"
    config.write_text(CONFIG)
    return config


def _calls(tmp_path: Path) -> Counter[str]:
    """Executor calls since the last look (the log is emptied)."""
    log = tmp_path / "calls.log"
    calls = Counter(log.read_text().split()) if log.exists() else Counter()
    log.unlink(missing_ok=True)
    return calls


def _build(server: FakeLLMServer, config: Path) -> int:
    before = server.count
    result = run_cli("build", str(config), *pointed_at(server))
    assert result.exit_code == 0, result.stderr
    return server.count - before


def _explain(server: FakeLLMServer, config: Path) -> dict[str, Any]:
    before = server.count
    result = run_cli("explain", str(config), *pointed_at(server), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert server.count == before  # explain sends nothing
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _edit(tmp_path: Path, old: str, new: str) -> None:
    module = tmp_path / "counter_tools.py"
    text = module.read_text()
    assert old in text
    module.write_text(text.replace(old, new))


def test_executor_calls_are_nodes_a_rebuild_and_explain_never_run(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    with FakeLLMServer(reply=counter_keeper) as server:
        cold = _explain(server, config)
        assert _calls(tmp_path) == Counter()  # planning reads the cache, runs no executor
        assert cold["totals"]["cached"] == 0
        assert _build(server, config) == SAMPLES * 5
        assert _calls(tmp_path) == {"peek": 1, "add": SAMPLES}  # one peek from state 0
        rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        for row, by in zip(rows, BY.values(), strict=True):
            tools = [m["content"] for m in row["chat"]["messages"] if m["role"] == "tool"]
            assert tools == ['{"value": 0}', f'{{"value": {by}}}']  # the state add left
        warm = _explain(server, config)
        assert warm["totals"]["run"] == warm["totals"]["blocked"] == 0
        assert warm["estimate"]["requests"] == 0
        assert _build(server, config) == 0
        assert _calls(tmp_path) == Counter()  # cached tool nodes: nothing runs again


def test_editing_an_executor_reruns_its_calls_and_what_follows_them(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    with FakeLLMServer(reply=counter_keeper) as server:
        _build(server, config)
        _calls(tmp_path)
        _edit(tmp_path, 'return {"value": state["value"]}', 'return {"value": state["value"] + 9}')
        why = _explain(server, config)
        peeks = [n for n in why["nodes"] if n["id"].startswith("chat.turn2.call1[")]
        assert len(peeks) == SAMPLES
        edited = "tool result changed: executor counter_tools.peek edited"
        assert peeks[0]["reasons"] == [{"check": "modified.tool", "detail": edited}]
        # peek runs again (once: every conversation peeks at state 0); in each
        # conversation the rounds that saw its result rerun; add starts from the same
        # state with the same arguments, so it stays cached
        assert _build(server, config) == SAMPLES * 2
        assert _calls(tmp_path) == {"peek": 1}

        _edit(tmp_path, '_log("reset")', '_log("reset")  # edited, never called')
        assert _build(server, config) == 0
        assert _calls(tmp_path) == Counter()  # an unrelated executor reruns nothing

        _edit(tmp_path, '+ arguments["by"]', '+ arguments["by"] + 1')
        assert _build(server, config) == SAMPLES  # add's result is new: the answer reruns
        assert _calls(tmp_path) == {"add": SAMPLES}
