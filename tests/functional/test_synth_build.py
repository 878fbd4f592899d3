"""``synthc build x.synth`` works exactly like its YAML twin, overrides included: the
.synth build hits every node the YAML build cached, so it sends no request at all."""

from __future__ import annotations

import shutil
from pathlib import Path

from synthc.testing.server import FakeLLMServer
from tests.conftest import REPO, run_cli


def _build(server: FakeLLMServer, config: Path, *overrides: str) -> tuple[int, str]:
    """Build with ``overrides``; return how many requests reached the server, and the rows."""
    before = server.count
    args = [
        "--cache-dir", str(config.parent / "cache"),
        "--inference_config.remote_params.api_url", server.url("/v1/messages"),
        "--inference_config.remote_params.api_key", "sk-ant-test",
        "--output_path", "out.jsonl",
    ]  # fmt: skip
    result = run_cli("build", str(config), *args, *overrides)
    assert result.exit_code == 0, result.stderr
    return server.count - before, (config.parent / "out.jsonl").read_text()


def test_synth_twin_builds_from_the_yaml_cache(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    for suffix in (".yaml", ".synth"):
        shutil.copy(REPO / "examples" / f"geography_qa{suffix}", tmp_path)
    yaml_config, synth_config = tmp_path / "geography_qa.yaml", tmp_path / "geography_qa.synth"

    sent, yaml_rows = _build(llm_server, yaml_config)
    assert sent == 20
    assert _build(llm_server, synth_config) == (0, yaml_rows)

    grow = ["--num_samples", "12", "--inference_config.generation.temperature", "0.5"]
    sent, yaml_rows = _build(llm_server, yaml_config, *grow)
    assert sent == 24
    assert _build(llm_server, synth_config, *grow) == (0, yaml_rows)


def test_override_errors_point_into_the_synth_file(tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "geography_qa.synth", tmp_path)
    rate = "--strategy_params.sampled_attributes[0].possible_values[0].sample_rate"
    result = run_cli("build", "geography_qa.synth", rate, "2")
    assert result.exit_code == 2
    assert "sample_rate" in result.stderr
    assert "Traceback" not in result.stderr


def test_convert_and_fmt_commands(tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "quickstart.yaml", tmp_path)
    result = run_cli("convert", "quickstart.yaml")
    assert result.exit_code == 0
    (tmp_path / "q.synth").write_text(result.stdout)
    assert run_cli("fmt", "--check", "q.synth").exit_code == 0
    assert run_cli("convert", "q.synth").stdout.startswith("# Quick start")

    messy = result.stdout.replace("samples 10", "samples    10").replace("\n\n", "\n")
    (tmp_path / "messy.synth").write_text(messy)
    check = run_cli("fmt", "--check", "messy.synth")
    assert check.exit_code == 1
    assert "not in canonical layout" in check.stderr
    assert run_cli("fmt", "messy.synth").stdout == result.stdout


def test_synth_twin_explains_like_the_yaml(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    for suffix in (".yaml", ".synth"):
        shutil.copy(REPO / "examples" / f"geography_qa{suffix}", tmp_path)
    yaml_config, synth_config = tmp_path / "geography_qa.yaml", tmp_path / "geography_qa.synth"
    _build(llm_server, yaml_config)
    grow = ["--num_samples", "12", "--cache-dir", str(tmp_path / "cache"), "--format", "json"]
    yaml_view = run_cli("explain", str(yaml_config), *grow)
    synth_view = run_cli("explain", str(synth_config), *grow)
    assert yaml_view.exit_code == synth_view.exit_code == 0, synth_view.stderr
    assert synth_view.stdout == yaml_view.stdout
    assert '"run": 2' in synth_view.stdout
