"""Multiturn conversations: a planner call, then one cached node per turn, USER first.

``min_turns``/``max_turns`` count rounds (a user and an assistant message), as in
oumi 0.9. Request counts at a loopback server prove what reruns: nothing on a
rerun; an assistant persona edit reruns the plans (same text here, so early
cutoff keeps each first user turn) and every turn from the first assistant turn
on; raising max_turns reruns only the samples whose drawn round count changed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import synthc
from synthc.planning.conversation import target_turns
from synthc.runtime.scheduler import expected_nodes
from synthc.testing.server import FakeLLMServer
from tests.conftest import build_and_count, run_cli

CONFIG = """\
num_samples: 6
output_path: out.jsonl
seed: 9
strategy_params:
  sampled_attributes:
    - id: topic
      name: Topic
      description: What the customer asks about
      possible_values:
        - {id: billing, name: billing, description: Charges}
        - {id: shipping, name: shipping, description: Deliveries}
  multiturn_attributes:
    - id: chat
      min_turns: 2
      max_turns: MAX
      role_instruction_messages:
        USER: "You are a customer asking about {topic}. This is turn {current_turn}."
        ASSISTANT: "You are a support agent. Answer about {topic}."
      conversation_planner: "Plan {target_turns} turns about {topic}."
      output_system_prompt: "You are a support agent for {topic}."
inference_config:
  model: {model_name: m}
  engine: REMOTE
  generation: {temperature: 0.7}
  remote_params: {num_workers: 4}
"""


def reply(body: dict[str, Any]) -> str:
    """Plans as JSON (by turn count only); turns echo their instruction and the last line."""
    last = str(body["messages"][-1]["content"])
    planned = re.search(r"Plan a (\d+)-turn conversation", last)
    if planned:
        turns = int(planned.group(1))
        return json.dumps(
            {"turns": [{"turn": t, "instruction": f"step {t}"} for t in range(1, turns + 1)]}
        )
    persona = str(body["messages"][0]["content"])
    return f"[{persona[:40]}] {last[:60]} #{len(body['messages'])}"


def _config(tmp_path: Path, max_turns: int = 4) -> Path:
    config = tmp_path / "chat.yaml"
    config.write_text(CONFIG.replace("MAX", str(max_turns)))
    return config


_build = build_and_count


def _rows(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


def _turns(graph: synthc.Graph, max_turns: int) -> list[int]:
    rule = next(r for r in graph.rules if r.id == "chat")
    return [target_turns(graph.seed, i, rule) for i in range(graph.num_samples)]


def test_conversation_shape_and_cache(tmp_path: Path) -> None:
    with FakeLLMServer(reply=reply) as server:
        config = _config(tmp_path)
        graph = synthc.compile(config)
        turns = _turns(graph, 4)
        assert set(turns) == {4, 6, 8}  # 2 to 4 rounds of two messages
        assert _build(server, config) == sum(1 + t for t in turns) == expected_nodes(graph)
        rows = _rows(tmp_path)
        for row, t in zip(rows, turns, strict=True):
            messages = row["chat"]["messages"]
            assert messages[0] == {
                "content": f"You are a support agent for {row['topic']}.",
                "role": "system",
            }
            assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * (t // 2)
            assert json.loads(row["chat_plan"])["turns"][0]["instruction"] == "step 1"
            assert list(row) == ["topic", "chat", "chat_plan"]
        personas = {
            b["messages"][0]["content"]
            for b in server.requests
            if b["messages"][0]["content"].startswith("You are a customer")
        }
        seen = {p.rsplit(" ", 1)[-1] for p in personas}
        assert seen == {"1.", "3.", "5.", "7."}  # {current_turn} of each user turn
        assert _build(server, config) == 0


def test_editing_the_assistant_persona_reruns_from_the_first_assistant_turn(tmp_path: Path) -> None:
    with FakeLLMServer(reply=reply) as server:
        config = _config(tmp_path)
        turns = _turns(synthc.compile(config), 4)
        _build(server, config)
        config.write_text(config.read_text().replace("Answer about {topic}.", "Answer briefly."))
        # per sample: the plan (same text back, so user turn 1 stays cached), turns 2..T
        assert _build(server, config) == sum(1 + (t - 1) for t in turns)


def test_raising_max_turns_reruns_only_samples_whose_count_changed(tmp_path: Path) -> None:
    with FakeLLMServer(reply=reply) as server:
        config = _config(tmp_path, max_turns=2)
        before = _turns(synthc.compile(config), 2)
        _build(server, config)
        config = _config(tmp_path, max_turns=6)
        after = _turns(synthc.compile(config), 6)
        changed = [t for b, t in zip(before, after, strict=True) if b != t]
        assert set(before) == {4} and 0 < len(changed) < len(before)
        data = json.loads(run_cli("explain", str(config), "--format", "json").stdout)
        expected = sum(1 + t for t in changed)
        assert data["totals"]["run"] + data["totals"]["blocked"] == expected
        text = run_cli("explain", str(config), "--all").stdout
        assert "chat.plan[" in text and "guided_decoding" not in text  # the prompt changed
        assert _build(server, config) == expected


def test_plans_that_never_parse_fail_their_conversation_and_are_asked_again(
    tmp_path: Path,
) -> None:
    """oumi 0.9 goes on without a plan; synthc fails the conversation instead, keeps the
    last attempt out of the cache, and asks only that attempt again on the next run."""

    def no_json(body: dict[str, Any]) -> str:
        return "not a plan" if "Plan a" in str(body["messages"][-1]["content"]) else "ok"

    url = ["--inference_config.remote_params.api_url"]
    with FakeLLMServer(reply=no_json) as server:
        config = _config(tmp_path, max_turns=2)
        result = run_cli("build", str(config), *url, server.url("/v1/chat/completions"))
        assert result.exit_code == 1
        assert server.count == 6 * 3  # three planner attempts each, no turn
        assert "chat.plan.retry2[0]: the planner's reply is not a JSON object" in result.stderr
        assert "warning: 6 answer(s) could not be used" in result.stderr
        assert "Traceback" not in result.stderr
        assert _rows(tmp_path) == []
        again = run_cli("build", str(config), *url, server.url("/v1/chat/completions"))
        assert again.exit_code == 1 and server.count == 6 * 3 + 6  # the last attempts only
    with FakeLLMServer(reply=reply) as server:  # now the planner answers with a plan
        assert _build(server, config) == 6 * (1 + 4)  # each last attempt, then four turns
        assert all(row["chat_plan"].startswith('{"turns"') for row in _rows(tmp_path))
        assert _build(server, config) == 0
