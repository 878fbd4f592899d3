"""synthc preview: the first N samples built for real, printed in full, and the full build's
cost from there; the build that follows sends only what the preview did not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import synthc
from synthc.testing.server import FakeLLMServer
from tests.conftest import build_and_count, run_cli
from tests.reliability.helpers import write_config

LONG = "a long answer " * 30  # 420 characters: more than any table cell shows


def _long_answers(body: dict[str, Any]) -> str:
    asked = str(body["messages"][-1]["content"])
    return f"Q about {asked[-3:]}" if asked.startswith("Ask") else f"{LONG}({asked})"


def test_preview_builds_the_first_samples_and_the_build_sends_the_rest(tmp_path: Path) -> None:
    with FakeLLMServer(reply=_long_answers) as server:
        config = write_config(tmp_path / "qa.yaml", server, samples=10)
        shown = run_cli("preview", str(config), "-n", "3")
        assert shown.exit_code == 0, shown.stderr
        assert server.count == 6 and not (tmp_path / "out.jsonl").exists()
        assert shown.stdout.count(LONG) == 3  # every answer in full
        assert "3 of 10 samples built (6 requests sent, 0 nodes cached, 0 failed)" in shown.stdout
        assert "The full build (10 samples), from here:\n20 nodes: 6 cached, 7 to run" in (
            shown.stdout
        )
        again = run_cli("preview", str(config), "-n", "3")
        assert again.exit_code == 0 and server.count == 6  # nothing sent twice
        assert build_and_count(server, config) == 20 - 6


def test_a_build_prints_a_wide_first_row_a_field_per_line(tmp_path: Path) -> None:
    with FakeLLMServer(reply=_long_answers) as server:
        config = write_config(tmp_path / "qa.yaml", server, samples=2)
        result = run_cli("build", str(config))
        assert result.exit_code == 0, result.stderr
        assert "row 0" in result.stdout and f"answer: {LONG}" in result.stdout
        assert "... and 1 more samples" in result.stdout


def test_preview_from_python(tmp_path: Path, llm_server: FakeLLMServer) -> None:
    config = write_config(tmp_path / "qa.yaml", llm_server, samples=8)
    shown = synthc.preview(config, {"num_samples": 6}, samples=2)
    assert [row["item"] for row in shown.rows] == ["item-0", "item-1"] and llm_server.count == 4
    assert shown.full.total("run") == 4 and shown.full.total("cached") == 4
    assert repr(shown).startswith("<Preview: 2 of 6 samples built (4 requests sent")
    assert "row 1" in shown._repr_html_()
