"""Shared fixtures: a loopback LLM server and a way to run the real CLI in-process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthc.cli import main
from synthc.testing.server import FakeLLMServer

REPO = Path(__file__).resolve().parent.parent
OUMI_EXAMPLES = (
    Path(__file__).resolve().parent / "oumi_examples"
)  # oumi's shipped configs, verbatim


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own directory with no inherited cache or keys."""
    monkeypatch.chdir(tmp_path)
    for name in ("SYNTHC_CACHE_DIR", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def run_cli(*args: str) -> CliResult:
    """Run ``synthc ARGS`` in this process, as a user would from a shell."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def pointed_at(server: FakeLLMServer, path: str = "/v1/chat/completions") -> list[str]:
    """Overrides that point a config at ``server`` and write ``out.jsonl``."""
    return [
        "--inference_config.remote_params.api_url",
        server.url(path),
        "--inference_config.remote_params.api_key",
        "sk-test",
        "--inference_config.remote_params.politeness_policy",
        "0",
        "--output_path",
        "out.jsonl",
    ]


def build_and_count(
    server: FakeLLMServer, config: Path, *overrides: str, path: str = "/v1/chat/completions"
) -> int:
    """Run `synthc build CONFIG OVERRIDES` against ``server``; return the requests it received."""
    before = server.count
    url = ["--inference_config.remote_params.api_url", server.url(path)]
    result = run_cli("build", str(config), *url, *overrides)
    assert result.exit_code == 0, result.stderr
    return server.count - before


def copy_example(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copy(OUMI_EXAMPLES / name, target)
    return target
