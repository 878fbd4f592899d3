"""Systemic errors stop a build early and never clobber good output; counted at the server.

A wrong model name (404 for every request), a refused key (401) or a URL nobody
listens on used to send every request of the build, print a line per node and
replace the previous output with an empty file. Now a few alike failures in a
row stop the sending, the error names the config key at fault, and the output
file of the last good build is left as it was.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from synthc.runtime.dispatch import BREAKER_THRESHOLD
from synthc.testing.server import FakeLLMServer, Fault
from tests.conftest import run_cli
from tests.reliability.helpers import rows, write_config

SAMPLES = 300
WORKERS = 8
BOUND = BREAKER_THRESHOLD + WORKERS  # failures that stop it, and what was in flight then


def _model_missing(body: dict[str, Any], index: int) -> Fault | None:
    if body.get("model") == "gpt-4o-mnii":
        return Fault(status=404, body={"error": {"message": "The model does not exist"}})
    return None


def _good_build(tmp_path: Path, server: FakeLLMServer) -> tuple[Path, bytes]:
    config = write_config(tmp_path / "qa.yaml", server, samples=SAMPLES, workers=WORKERS)
    done = run_cli("build", str(config), "-q")
    assert done.exit_code == 0, done.stderr
    return config, (tmp_path / "out.jsonl").read_bytes()


def test_a_model_that_is_not_found_stops_the_build_and_names_the_key(tmp_path: Path) -> None:
    with FakeLLMServer(faults=_model_missing) as server:
        config, good = _good_build(tmp_path, server)
        config.write_text(config.read_text().replace("model_name: m", "model_name: gpt-4o-mnii"))
        server.reset()
        failed = run_cli("build", str(config), "-q")
        assert failed.exit_code == 2
        assert server.count <= BOUND  # not 2 x 300
    assert "qa.yaml:" in failed.stderr
    assert "inference_config.model.model_name: 'gpt-4o-mnii' was not found" in failed.stderr
    assert "HTTP 404: The model does not exist" in failed.stderr
    assert failed.stderr.count("\n") < 10  # one message, not a line per node
    assert (tmp_path / "out.jsonl").read_bytes() == good  # the last good output, untouched


def test_a_refused_key_stops_the_build_without_showing_the_key(tmp_path: Path) -> None:
    with FakeLLMServer(api_key="sk-right") as server:
        config = write_config(
            tmp_path / "qa.yaml",
            server,
            samples=SAMPLES,
            workers=WORKERS,
            remote={"api_key": "sk-wrong-0123456789"},
        )
        failed = run_cli("build", str(config), "-q")
        assert failed.exit_code == 2
        assert server.count <= BOUND
    assert "refused the API key" in failed.stderr and "remote_params.api_key" in failed.stderr
    assert "sk-wrong-0123456789" not in failed.stderr + failed.stdout


def test_a_url_nobody_listens_on_stops_the_build_and_names_it(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the build: nothing listens
    with FakeLLMServer() as server:
        config = write_config(tmp_path / "qa.yaml", server, samples=SAMPLES, workers=WORKERS)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    config.write_text(config.read_text().replace(server.url("/v1/chat/completions"), url))
    failed = run_cli("build", str(config), "-q")
    assert failed.exit_code == 2
    assert f"inference_config.remote_params.api_url: {url!r} cannot be reached" in failed.stderr
    assert not (tmp_path / "out.jsonl").exists()


def _fail_one_item(body: dict[str, Any], index: int) -> Fault | None:
    return Fault(status=400) if "item-3." in str(body) else None


def test_a_failed_build_writes_beside_an_output_with_more_rows(tmp_path: Path) -> None:
    """Rows of a build with failures go to out.partial.jsonl when out.jsonl has more;
    the next good build replaces out.jsonl and removes the partial file."""
    with FakeLLMServer() as server:
        config, good = _good_build(tmp_path, server)
        config.write_text(config.read_text().replace("temperature: 0.7", "temperature: 0.5"))
        server.faults = _fail_one_item
        failed = run_cli("build", str(config), "-q")
        assert failed.exit_code == 1
        assert (tmp_path / "out.jsonl").read_bytes() == good
        partial = tmp_path / "out.partial.jsonl"
        assert len(rows(partial)) == SAMPLES - 1
        assert "out.jsonl is kept as it was" in failed.stdout

        server.faults = None
        fixed = run_cli("build", str(config), "-q")
        assert fixed.exit_code == 0, fixed.stderr
        assert len(rows(tmp_path / "out.jsonl")) == SAMPLES
        assert not partial.exists()


@pytest.mark.parametrize("status", [404, 401])
def test_one_systemic_failure_among_successes_does_not_stop_a_build(
    tmp_path: Path, status: int
) -> None:
    """The breaker wants failures in a row: a single 404 fails its node only."""

    def once(body: dict[str, Any], index: int) -> Fault | None:
        return Fault(status=status) if index == 5 else None

    with FakeLLMServer(faults=once) as server:
        config = write_config(tmp_path / "qa.yaml", server, samples=50, workers=WORKERS)
        result = run_cli("build", str(config), "-q")
        assert result.exit_code == 1
        assert server.count == 100 - 1  # the failed question's answer was never sent
    assert len(rows(tmp_path / "out.jsonl")) == 49


def test_a_server_that_takes_two_at_a_time_is_ridden_out_in_one_run(tmp_path: Path) -> None:
    """8 workers against a server that answers 429 beyond 2 requests in flight: the window
    shrinks to what it takes, so every node is answered in one run with the default
    retries (it once left a quarter of them failed)."""
    with FakeLLMServer(latency=0.02, max_in_flight=2) as server:
        config = write_config(tmp_path / "qa.yaml", server, samples=100, workers=8, retries=3)
        result = run_cli("build", str(config), "-q")
        assert result.exit_code == 0, result.stdout + result.stderr
        assert server.throttled > 0  # the limit was met, and adapted to
        assert server.count - server.throttled == 200  # each node answered once
        assert server.throttled < 100  # the window stopped asking too much
    assert len(rows(tmp_path / "out.jsonl")) == 100
