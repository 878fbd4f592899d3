"""API keys never reach anything synthc writes: a recognisable fake key, from the config,
from ``api_key_env_varname`` and from ``OPENAI_API_KEY``, at every log level, with a
failing request whose error body quotes the key back; then every byte synthc wrote is
searched for it (cache files including the SQLite database, manifests, outputs,
stdout/stderr of build and of explain in every format and --why)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from synthc.testing.server import FakeLLMServer, Fault
from tests.reliability.helpers import run_synthc, write_config

KEY = "sk-synthc-FAKE-7f3a9c1e5d"
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def _fault(body: dict[str, Any], index: int) -> Fault | None:
    if "item-2." in body["messages"][-1]["content"]:  # a provider that echoes the key
        return Fault(status=400, body={"error": {"message": f"Incorrect API key provided: {KEY}"}})
    return None


def _setup(tmp_path: Path, server: FakeLLMServer, source: str) -> tuple[Path, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    remote: dict[str, Any] = {}
    if source == "config":
        remote["api_key"] = KEY
    elif source == "api_key_env_varname":
        remote["api_key_env_varname"] = "TEAM_LLM_SECRET"
        env["TEAM_LLM_SECRET"] = KEY
    else:
        env["OPENAI_API_KEY"] = KEY
    config = write_config(tmp_path / "secret.yaml", server, samples=4, retries=1, remote=remote)
    if source == "OPENAI_API_KEY":
        config.write_text(config.read_text().replace("engine: REMOTE", "engine: OPENAI"))
    return config, env


@pytest.mark.parametrize("source", ["config", "api_key_env_varname", "OPENAI_API_KEY"])
def test_the_key_appears_nowhere_synthc_writes(tmp_path: Path, source: str) -> None:
    with FakeLLMServer(api_key=KEY, faults=_fault) as server:
        config, env = _setup(tmp_path, server, source)
        streams: list[str] = []
        runs = [(level, f"cache-{level}") for level in LEVELS] + [("DEBUG", ".synthc/cache")] * 2
        for level, cache in runs:  # cold builds at every level, then a cold and a warm one
            if True:
                done = run_synthc(
                    "build", config.name, "--log-level", level, "--cache-dir", cache,
                    cwd=tmp_path, env=env,
                )  # fmt: skip
                assert done.returncode == 1, done.stderr  # question[2] fails: 400
                streams += [done.stdout, done.stderr]
        assert server.count > 0
        for args in (
            ["explain", config.name],
            ["explain", config.name, "--format", "json", "--all"],
            ["explain", config.name, "--format", "dot", "--nodes"],
            ["explain", config.name, "--format", "html", "-o", "graph.html"],
            ["explain", config.name, "--why", "question[2]"],
            ["explain", config.name, "--why", "answer[0]"],
            ["explain", config.name, "--log-level", "DEBUG", "--format", "json"],
            ["cache", "stats", "-c", config.name],
            ["cache", "verify", "-c", config.name],
        ):
            done = run_synthc(*args, cwd=tmp_path, env=env)
            assert done.returncode in (0, 1), done.stderr
            streams += [done.stdout, done.stderr]
    assert any("Incorrect API key provided" in text for text in streams)  # the failure was shown
    assert not [text for text in streams if KEY in text]
    assert not [text for text in streams if KEY[3:15] in text]  # not even a fragment
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != config]
    assert any(p.name == "cache.db" for p in written)
    leaks = [str(p) for p in written if KEY.encode() in p.read_bytes()]
    assert leaks == []
