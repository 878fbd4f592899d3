"""Incrementality, proven by counting requests at a loopback server.

A 2-attribute config with 10 samples: each edit must send exactly the requests
whose inputs changed, and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthc.testing.server import FakeLLMServer
from tests.conftest import build_and_count

CONFIG = """\
num_samples: 10
output_path: qa.jsonl
seed: 7
strategy_params:
  sampled_attributes:
    - id: topic
      name: Topic
      description: What the question is about
      possible_values:
        - {id: rivers, name: Rivers, description: Rivers of the world}
        - {id: capitals, name: Capitals, description: Capital cities}
        - {id: deserts, name: Deserts, description: Hot and cold deserts}
  generated_attributes:
    - id: question
      instruction_messages:
        - role: SYSTEM
          content: "You write quiz questions."
        - role: USER
          content: "Write one question about {topic}."
    - id: answer
      instruction_messages:
        - role: SYSTEM
          content: "You answer quiz questions."
        - role: USER
          content: "{question}"
inference_config:
  model: {model_name: quiz-model}
  engine: ENGINE
  generation: {temperature: 0.7, max_new_tokens: 64}
  remote_params: {num_workers: 8, api_key: sk-test-1}
"""


def _config(tmp_path: Path, engine: str = "OPENAI", text: str = CONFIG) -> Path:
    path = tmp_path / "qa.yaml"
    path.write_text(text.replace("ENGINE", engine))
    return path


_build = build_and_count


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rerun_grow_edit_and_params(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _build(llm_server, config) == 20
    first = (tmp_path / "qa.jsonl").read_text().splitlines()
    assert len(first) == 10

    assert _build(llm_server, config) == 0

    assert _build(llm_server, config, "--num_samples", "15") == 10
    grown = (tmp_path / "qa.jsonl").read_text().splitlines()
    assert grown[:10] == first
    assert len(grown) == 15

    config.write_text(config.read_text().replace("You answer quiz questions.", "Answer briefly."))
    assert _build(llm_server, config, "--num_samples", "15") == 15

    temperature = ["--inference_config.generation.temperature", "0.5"]
    assert _build(llm_server, config, "--num_samples", "15", *temperature) == 30
    assert _build(llm_server, config, "--num_samples", "15", *temperature) == 0


def test_settings_outside_the_key_rerun_nothing(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _build(llm_server, config) == 20
    assert _build(llm_server, config, "--inference_config.remote_params.num_workers", "3") == 0
    assert _build(llm_server, config, "--output_path", "elsewhere/out.jsonl") == 0
    assert _build(llm_server, config, "--inference_config.remote_params.api_key", "sk-other") == 0
    assert _rows(tmp_path / "elsewhere" / "out.jsonl") == _rows(tmp_path / "qa.jsonl")


def test_identical_upstream_text_keeps_dependents_cached(tmp_path: Path) -> None:
    """Early cutoff: a regenerated question with the same text does not rerun its answer."""

    def reply(body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        if "question about" in prompt:
            return "A question about " + prompt.rsplit(" ", 1)[-1]  # ignores the wording
        return f"An answer to: {prompt}"

    with FakeLLMServer(reply=reply) as server:
        config = _config(tmp_path)
        assert _build(server, config) == 20
        config.write_text(config.read_text().replace("You write quiz questions.", "Be terse."))
        server.reset()
        assert _build(server, config) == 10
        assert all("question about" in body["messages"][-1]["content"] for body in server.requests)


def test_anthropic_protocol(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    config = _config(tmp_path, engine="ANTHROPIC")
    assert _build(llm_server, config, path="/v1/messages") == 20
    assert _build(llm_server, config, path="/v1/messages") == 0
    assert _build(llm_server, config, "--num_samples", "12", path="/v1/messages") == 4
    rows = _rows(tmp_path / "qa.jsonl")
    assert [list(row) for row in rows] == [["topic", "question", "answer"]] * 12
    assert all(
        body.get("system") == "You write quiz questions."
        or body.get("system") == "You answer quiz questions."
        for body in llm_server.requests
    )


@pytest.mark.parametrize("temperature,expected", [(0.0, 3), (0.9, 10)])
def test_identical_prompts_share_a_node_only_at_temperature_zero(
    llm_server: FakeLLMServer, tmp_path: Path, temperature: float, expected: int
) -> None:
    """With temperature 0 identical requests are one node; above 0 each sample is its own draw."""
    head, _, tail = CONFIG.partition("    - id: answer")
    only_questions = head + "inference_config:" + tail.partition("inference_config:")[2]
    config = _config(tmp_path, text=only_questions)
    count = _build(
        llm_server, config, "--inference_config.generation.temperature", str(temperature)
    )
    assert count == expected
