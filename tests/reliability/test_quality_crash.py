"""Kill a build with quality gates while slots are being drawn again: only work in flight is lost.

About a third of the first answers fail the gate (the fake server's digest), so
redraws run all through the build; a SIGKILL halfway, then a rerun, must send at
most the requests that were in flight or not yet written beyond what one
uninterrupted build sends, and end with its bytes.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from synthc.cache.writer import MAX_PENDING
from synthc.testing.server import FakeLLMServer
from tests.reliability.helpers import run_synthc, synthc_command, write_config

SAMPLES = 200
WORKERS = 8
GATES = "synthc:\n  quality:\n    max_attempts: 4\n    validators:\n"
GATES += "      - {attribute: answer, regex: '#[0-9]'}\n"


def test_a_kill_mid_redraw_loses_only_work_in_flight(tmp_path: Path) -> None:
    with FakeLLMServer(latency=0.01) as server:
        reference = tmp_path / "reference"
        reference.mkdir()
        write_config(reference / "q.yaml", server, samples=SAMPLES, workers=WORKERS, extra=GATES)
        done = run_synthc("build", "q.yaml", "-q", cwd=reference)
        assert done.returncode == 0, done.stderr
        needed = server.count
        assert needed > 2 * SAMPLES  # slots were drawn again
        expected = (reference / "out.jsonl").read_bytes()

        work = tmp_path / "work"
        work.mkdir()
        write_config(work / "q.yaml", server, samples=SAMPLES, workers=WORKERS, extra=GATES)
        server.reset()
        build = subprocess.Popen(
            synthc_command("build", "q.yaml", "-q"), cwd=work, stderr=subprocess.DEVNULL
        )
        while server.count < needed // 2 and build.poll() is None:  # ends if the build does
            time.sleep(0.005)
        build.send_signal(signal.SIGKILL)
        build.wait()
        killed = server.count
        assert killed < needed, "the build finished before it could be killed"

        server.reset()
        again = run_synthc("build", "q.yaml", "-q", cwd=work)
        assert again.returncode == 0, again.stderr
        rerun = server.count
    assert (work / "out.jsonl").read_bytes() == expected
    assert killed + rerun - needed <= WORKERS + MAX_PENDING
