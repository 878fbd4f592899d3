"""synthc from Python: a config as a path, as YAML or .synth text, or as a dict; overrides as
arguments or a mapping; results with rows; builds that await and stop when cancelled.

Every test runs in its own working directory (tests/conftest.py), which is where a
config given as text or a dict lives: its cache is ./.synthc/cache, as a file
config's is beside it. Request counts at a loopback server prove what is reused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

import synthc
from synthc.testing.server import FakeLLMServer
from tests.reliability.helpers import write_config

SYNTH = """\
samples 3 -> "synth.jsonl"
model openai "m" { temperature 0.7 }
examples { { item: "a" } { item: "b" } }
generate question { user "Ask something about {item}." }
"""


def _config(tmp_path: Path, server: FakeLLMServer, samples: int = 4) -> Path:
    return write_config(tmp_path / "qa.yaml", server, samples=samples)


def test_a_dict_and_yaml_text_build_what_the_file_builds(
    tmp_path: Path, llm_server: FakeLLMServer
) -> None:
    path = _config(tmp_path, llm_server)
    from_file = synthc.build(path)
    assert from_file.ok and llm_server.count == 8
    rows = from_file.rows
    as_dict = yaml.safe_load(path.read_text())
    assert synthc.build(as_dict).rows == rows  # the same keys: nothing sent
    assert synthc.build(path.read_text()).rows == rows
    assert llm_server.count == 8
    more = synthc.build(as_dict, {"num_samples": 5})
    assert llm_server.count == 10 and more.rows[:4] == rows


def test_synth_text_builds_and_overrides_come_as_a_string(llm_server: FakeLLMServer) -> None:
    url = llm_server.url("/v1/chat/completions")
    at = f"--inference_config.remote_params.api_url {url}"
    result = synthc.build(SYNTH, f"--num_samples 2 {at} --inference_config.remote_params.api_key k")
    assert result.ok and result.output_path == Path("synth.jsonl")
    assert [row["item"] for row in result.rows] == ["a", "b"] and llm_server.count == 2


def test_errors_in_a_dict_config_have_a_line_to_point_at() -> None:
    config: dict[str, Any] = {
        "num_samples": 2,
        "strategy_params": {"input_examples": [{"examples": [{"item": "a"}]}]},
        "inference_config": {"engine": "OPENAI", "generation": {"temperature": "hot"}},
    }
    with pytest.raises(synthc.ConfigError) as error:
        synthc.compile(config)
    message = str(error.value)
    assert "<config>:9:5:" in message and "inference_config.generation.temperature" in message
    with pytest.raises(synthc.ConfigError) as error:
        synthc.compile({"num_samples": 2, Path("x"): 1})  # type: ignore[dict-item]
    assert "a value YAML cannot write" in str(error.value)


def test_a_secret_in_an_override_mapping_is_never_shown(
    tmp_path: Path, llm_server: FakeLLMServer
) -> None:
    secret = "sk-live-mapping-4242"
    with pytest.raises(synthc.ConfigError) as error:
        synthc.compile(
            _config(tmp_path, llm_server), {"inference_config.remote_params.api_kee": secret}
        )
    assert "api_kee" in str(error.value) and secret not in str(error.value)


def test_rows_of_a_result_whose_output_was_rewritten_are_refused(
    tmp_path: Path, llm_server: FakeLLMServer
) -> None:
    path = _config(tmp_path, llm_server, samples=2)
    first = synthc.build(path)
    read = synthc.build(path)
    assert len(read.rows) == 2  # read before the next build: kept
    synthc.build(path, {"num_samples": 3})
    assert len(read.rows) == 2
    with pytest.raises(synthc.SynthError, match="was rewritten after this build wrote it"):
        first.rows  # noqa: B018 - reading it is the test


def test_a_cancelled_abuild_stops_and_keeps_what_it_received(tmp_path: Path) -> None:
    with FakeLLMServer(latency=0.05) as server:
        path = write_config(tmp_path / "slow.yaml", server, samples=100, workers=2)

        async def start_then_cancel() -> None:
            task = asyncio.create_task(synthc.abuild(path))
            while server.count < 6:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(start_then_cancel())
        stopped_at = server.count
        plan = synthc.explain(path)
        assert plan.total("cached") >= 4  # every answer it received was saved
        to_send = plan.total("run") + plan.total("blocked")
        assert server.count == stopped_at  # nothing is sent once the await has returned
        assert synthc.build(path).ok and server.count - stopped_at == to_send < 200
