"""No room for the output: a clear error, every answer kept in the cache (the rerun sends
only what it never sent once there is room), and no partial output file left behind."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthc.testing._wire import default_reply
from synthc.testing.server import FakeLLMServer
from tests.reliability.helpers import cached_keys, leftovers, rows, run_synthc, write_config

SAMPLES = 60


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root and mount; skipped where the kernel says no)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _long(body: dict[str, object]) -> str:
    return default_reply(body) + " " + "y" * 1_000  # ~120 KB of rows: twice the disk


def test_disk_full_keeps_the_cache_and_leaves_no_partial_output(
    tmp_path: Path, tiny_disk: Path
) -> None:
    output = tiny_disk / "out.jsonl"
    with FakeLLMServer(reply=_long) as server:
        write_config(tmp_path / "c.yaml", server, samples=SAMPLES, output=str(output))
        done = run_synthc("build", "c.yaml", "-q", cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith(f"error: cannot write {output}: No space left on device")
        # The build stops at the error: every answer received is cached, only the
        # requests in flight at that moment (at most num_workers) are lost.
        saved = len(cached_keys(tmp_path / ".synthc" / "cache"))
        assert 0 <= server.count - saved <= 8
        assert not output.exists() and leftovers(tiny_disk, "out.jsonl") == []

        server.reset()
        moved = tmp_path / "roomy.jsonl"
        done = run_synthc("build", "c.yaml", "-q", f"--output_path={moved}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert server.count == 2 * SAMPLES - saved  # nothing received is asked for twice
        assert len(rows(moved)) == SAMPLES


def test_an_output_directory_that_cannot_be_created(tmp_path: Path) -> None:
    """Root ignores permission bits, so the directory sits under a regular file instead."""
    (tmp_path / "blocker").write_text("a file, not a directory\n")
    with FakeLLMServer() as server:
        write_config(tmp_path / "c.yaml", server, samples=5, output="blocker/out.jsonl")
        done = run_synthc("build", "c.yaml", "-q", cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert done.stderr == (
            "error: cannot write blocker/out.jsonl: a parent of it is a file, not a directory\n"
        )
        assert server.count == 0  # refused before any request is paid for
