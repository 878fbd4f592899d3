"""synthc from a notebook: tests/notebooks/api.ipynb executed in a real Jupyter kernel.

The kernel is a separate process (ipykernel, driven by nbclient) with its own
running event loop, as in Jupyter; the LLM server runs here and counts what the
notebook's builds send. Each cell asserts what it should see; this test checks
the counts and what the cells displayed: a build's progress (updated in place, the
final counts kept), then its result.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from synthc.testing.server import FakeLLMServer
from tests.conftest import REPO

nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat (dev extra)")
nbclient = pytest.importorskip("nbclient", reason="the notebook test needs nbclient (dev extra)")
NOTEBOOK = REPO / "tests" / "notebooks" / "api.ipynb"


def _outputs(cell: Any, mime: str) -> list[str]:
    return [o["data"][mime] for o in cell.outputs if mime in o.get("data", {})]


def test_a_notebook_builds_awaits_previews_and_explains_in_a_real_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    notebook = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    with FakeLLMServer() as server:
        monkeypatch.setenv("SYNTHC_NOTEBOOK_URL", server.url("/v1/chat/completions"))
        client = nbclient.NotebookClient(
            notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
        )
        client.execute()
        assert server.count == 6 * 2 + 2 * 2 + 2  # six samples, two more, the previewed ninth
    built, dataset, _, previewed, explained = notebook.cells[2:]
    assert "12 generated" in _outputs(built, "text/plain")[-1]
    progress, table = _outputs(built, "text/html")  # the build's progress, then its rows
    assert "12/12 nodes" in progress and "12 generated" in progress and "0 failed" in progress
    assert "<details open><summary>row 0</summary>" in table
    awaited = _outputs(notebook.cells[4], "text/html")[0]  # the awaited build: shown too
    assert "16/16 nodes" in awaited and "12 cached" in awaited and "4 generated" in awaited
    assert "num_rows: 6" in _outputs(dataset, "text/plain")[0]
    shown = _outputs(previewed, "text/html")[0]
    assert "9 of 10 samples built" in shown and "The full build:" in shown
    page = _outputs(explained, "text/html")[0]
    assert page.startswith('<iframe srcdoc="') and "explain-data" in page
    assert (tmp_path / "quiz.jsonl").read_text().count("\n") == 8
