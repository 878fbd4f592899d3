"""The command line as a user meets it: help, output, summary, exit codes, the README's demo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import synthc
from synthc.testing.server import FakeLLMServer
from tests.conftest import REPO, run_cli

CONFIG = """\
num_samples: 4
output_path: out.jsonl
strategy_params:
  sampled_attributes:
    - id: mood
      name: Mood
      description: How the writer feels
      possible_values:
        - {id: calm, name: Calm, description: Relaxed}
        - {id: bold, name: Bold, description: Confident}
  generated_attributes:
    - id: line
      instruction_messages:
        - {role: USER, content: "Write a {mood} line."}
inference_config:
  model: {model_name: m}
  engine: REMOTE
  generation: {temperature: 0.5}
"""


def test_help_explains_commands_and_overrides() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    assert "build" in result.stdout
    build_help = run_cli("build", "--help").stdout
    for words in ("--cache-dir", "SYNTHC_CACHE_DIR", "--num_samples 50", "[0]", "--quiet"):
        assert words in build_help


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from synthc.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'pydantic', 'aiohttp', 'diskcache', 'rich', 'torch', 'vllm', 'llama_cpp'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_build_prints_preview_summary_and_hint(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    config = tmp_path / "lines.yaml"
    config.write_text(CONFIG)
    url = ["--inference_config.remote_params.api_url", llm_server.url("/v1/chat/completions")]
    result = run_cli("build", str(config), *url)
    assert result.exit_code == 0, result.stderr
    assert "Synthesis Results" in result.stdout
    assert "... and 3 more samples" in result.stdout
    assert (
        "4 nodes: 0 cached, 4 generated, 0 failed; 4 samples written to out.jsonl" in result.stdout
    )
    assert "The rows hold no conversation" in result.stdout  # nothing to train a chat model on
    quiet = run_cli("build", "-c", str(config), "--quiet", *url)
    assert quiet.stdout.startswith("4 nodes: 4 cached, 0 generated, 0 failed;")
    assert "Synthesis Results" not in quiet.stdout


def test_manifest_lists_every_node_with_its_key(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    config = tmp_path / "lines.yaml"
    config.write_text(CONFIG)
    url = ["--inference_config.remote_params.api_url", llm_server.url("/v1/chat/completions")]
    assert run_cli("build", str(config), *url).exit_code == 0
    graph = synthc.compile(config)
    lines = (tmp_path / ".synthc" / "manifests" / "lines.jsonl").read_text().splitlines()
    header, entries = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert header["key_version"] == synthc.KEY_VERSION
    assert header["rules"]["line"]["deps"] == ["mood"]
    assert [e["id"] for e in entries] == [f"line[{i}]" for i in range(4)]
    assert all(len(e["key"]) == 32 and e["status"] == "generated" for e in entries)
    assert {e["parts"]["inputs"]["mood"] for e in entries} <= {
        synthc.planning.plan.text_digest(v) for v in graph.sampler.choices[0].values
    }


def test_unsupported_engine_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "native.yaml"
    config.write_text(CONFIG.replace("engine: REMOTE", "engine: BEDROCK"))
    result = run_cli("build", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: not supported yet: engine BEDROCK (")
    assert f"({config}:17:3)" in result.stderr


def test_missing_config_file() -> None:
    result = run_cli("build", "nowhere.yaml")
    assert result.exit_code == 2
    assert result.stderr == "error: nowhere.yaml: no such config file\n"


def test_public_api_is_pinned() -> None:
    assert sorted(synthc.__all__) == sorted(
        [
            "KEY_VERSION",
            "BatchesPending",
            "BuildFailed",
            "BuildResult",
            "CacheError",
            "ConfigError",
            "Diagnostic",
            "EngineError",
            "Graph",
            "LocalStore",
            "NodeId",
            "NodeKey",
            "Plan",
            "Preview",
            "Record",
            "Span",
            "Spec",
            "Status",
            "Store",
            "SynthError",
            "ToolResult",
            "UnsupportedFeature",
            "abuild",
            "build",
            "compile",
            "explain",
            "export",
            "push",
            "why",
            "Explanation",
            "load",
            "lower",
            "plan",
            "preview",
        ]
    )
    for name in synthc.__all__:
        assert getattr(synthc, name) is not None
    with pytest.raises(AttributeError):
        synthc.not_a_thing  # noqa: B018


def test_readme_demo_builds_then_reuses_the_cache(tmp_path: Path) -> None:
    """The README's build command: the shipped example, offline, twice."""
    demo = [sys.executable, str(REPO / "examples" / "offline_demo.py"), "--workdir", str(tmp_path)]
    first = subprocess.run(demo, capture_output=True, text=True, check=True).stdout
    assert "20 requests reached the server; 10 rows" in first
    second = subprocess.run(demo, capture_output=True, text=True, check=True).stdout
    assert "0 requests reached the server; 10 rows" in second
    rows = [json.loads(line) for line in (tmp_path / "geography_qa.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(row["answer"] for row in rows)


def test_readme_main_command_builds_the_quickstart(tmp_path: Path) -> None:
    """The README's first command, minus its installs (CI has run those): a real build."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    readme = (REPO / "README.md").read_text()
    command = readme.split("<!-- main-command -->")[1].split("```bash\n")[1].split("\n")[0]
    build = command.split("&&")[-1].split()
    assert build[:2] == ["synthc", "build"]
    config = tmp_path / "examples" / Path(build[2]).name
    config.parent.mkdir()
    shutil.copy(REPO / build[2], config)
    result = run_cli("build", str(config), *build[3:])
    assert result.exit_code == 0, result.stderr
    assert "20 nodes: 0 cached, 20 generated, 0 failed" in result.stdout
    rows = [json.loads(line) for line in (tmp_path / "quickstart.jsonl").read_text().splitlines()]
    assert len(rows) == 10
    assert all(row["clean_question"].strip() and row["answer"].strip() for row in rows)
    assert [m["role"] for m in rows[0]["conversation"]["messages"]] == ["user", "assistant"]
