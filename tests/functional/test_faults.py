"""Provider faults: retried ones still complete the dataset; a permanent one fails one sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthc.testing.server import FakeLLMServer, Fault
from tests.conftest import run_cli

CONFIG = """\
num_samples: 10
output_path: out.jsonl
strategy_params:
  input_examples:
    - examples: [ITEMS]
  generated_attributes:
    - id: question
      instruction_messages:
        - {role: USER, content: "Ask something about {item}."}
    - id: answer
      instruction_messages:
        - {role: USER, content: "{question}"}
inference_config:
  model: {model_name: m}
  engine: REMOTE
  generation: {temperature: 0.7}
  remote_params:
    num_workers: 4
    max_retries: 4
    retry_backoff_base: 0.01
    retry_backoff_max: 0.05
    api_url: URL
"""


def _config(tmp_path: Path, server: FakeLLMServer) -> Path:
    items = ", ".join(f"{{item: item-{i}}}" for i in range(10))
    text = CONFIG.replace("ITEMS", items).replace("URL", server.url("/v1/chat/completions"))
    path = tmp_path / "faulty.yaml"
    path.write_text(text)
    return path


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_429_with_retry_after_and_500s_still_complete(tmp_path: Path) -> None:
    # Faults by each request's own attempt, not the server's global count: every other
    # request is throttled on its first attempt and every sixth then fails its second
    # too, so none needs more than three of the five attempts max_retries allows,
    # whatever the interleaving of the four workers.
    attempts: dict[str, int] = {}

    def faults(body: dict[str, Any], index: int) -> Fault | None:
        prompt = json.dumps(body["messages"], sort_keys=True)
        attempt = attempts[prompt] = attempts.get(prompt, 0) + 1
        order = list(attempts).index(prompt)
        if attempt == 1 and order % 2 == 0:
            return Fault(status=429, retry_after=0.05)
        if attempt == 2 and order % 6 == 0:
            return Fault(status=500)
        return None

    with FakeLLMServer(faults=faults) as server:
        result = run_cli("build", str(_config(tmp_path, server)))
        assert result.exit_code == 0, result.stderr
        # 20 requests; 10 throttled once, 4 of those failing once more, each retried
        assert len(attempts) == 20
        assert server.count == 20 + 10 + 4
        rows = _rows(tmp_path / "out.jsonl")
        assert [row["item"] for row in rows] == [f"item-{i}" for i in range(10)]
        assert all(row["question"] and row["answer"] for row in rows)

        before = server.count
        assert run_cli("build", str(_config(tmp_path, server))).exit_code == 0
        assert server.count == before


def test_a_400_fails_only_its_sample_and_the_rerun_sends_only_that(tmp_path: Path) -> None:
    broken = {"on": True}

    def faults(body: dict[str, Any], index: int) -> Fault | None:
        if broken["on"] and "item-3" in body["messages"][-1]["content"]:
            return Fault(status=400, body={"error": {"message": "prompt rejected by policy"}})
        return None

    with FakeLLMServer(faults=faults) as server:
        config = _config(tmp_path, server)
        result = run_cli("build", str(config))
        assert result.exit_code == 1
        assert "question[3]" in result.stderr and "prompt rejected by policy" in result.stderr
        assert "1 failed" in result.stdout and "1 skipped" in result.stdout
        assert server.count == 19  # question[3] once (a 400 is not retried), answer[3] never
        rows = _rows(tmp_path / "out.jsonl")
        assert [row["item"] for row in rows] == [f"item-{i}" for i in range(10) if i != 3]

        broken["on"] = False
        server.reset()
        result = run_cli("build", str(config))
        assert result.exit_code == 0, result.stderr
        assert server.count == 2  # question[3], then answer[3]
        assert len(_rows(tmp_path / "out.jsonl")) == 10
