"""Kill a real ``synthc build`` mid-flight and prove no paid-for answer is lost.

A build of 1000 requests runs in a subprocess against a loopback server that
counts every request. It is killed (SIGKILL at seeded random moments, or
SIGINT) and rerun to completion. What the server saw proves the claim:

- the rerun sends exactly the requests whose answers are not in the cache;
- the kill loses at most the answers that were not yet safely written:
  ``num_workers`` requests in flight plus the write-behind queue, which the
  writer keeps under ``MAX_PENDING`` records (``put`` waits beyond that);
- the final JSONL is byte-identical to an uninterrupted build's.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

from synthc.cache.writer import MAX_PENDING
from synthc.testing.server import FakeLLMServer
from tests.reliability.helpers import (
    cached_keys,
    interruptible_command,
    leftovers,
    run_synthc,
    write_config,
)

SAMPLES = 500  # x2 requests (question, answer)
REQUESTS = 2 * SAMPLES
WORKERS = 16
LATENCY = 0.015
TRIALS = 10
BOUND = WORKERS + MAX_PENDING  # answers a kill may lose: in flight + not yet committed


def _reference(tmp_path: Path, server: FakeLLMServer) -> tuple[bytes, float]:
    """An uninterrupted build's output, and how long its requests took."""
    work = tmp_path / "reference"
    work.mkdir()
    write_config(work / "big.yaml", server, samples=SAMPLES, workers=WORKERS)
    server.reset()
    done = run_synthc("build", "big.yaml", "-q", cwd=work)
    assert done.returncode == 0, done.stderr
    assert server.count == REQUESTS
    arrivals = server.arrivals
    return (work / "out.jsonl").read_bytes(), arrivals[-1] - arrivals[0]


def _start(work: Path, server: FakeLLMServer) -> subprocess.Popen[str]:
    server.reset()
    process = subprocess.Popen(
        interruptible_command("build", "big.yaml", "-q"),
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while server.count == 0:  # the kill clock starts at the first request
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return process


def _rerun(work: Path, server: FakeLLMServer, expected_bytes: bytes) -> int:
    """Rerun to completion; the requests it sent, which must be exactly the missing ones."""
    missing = REQUESTS - len(cached_keys(work / ".synthc" / "cache"))
    server.reset()
    done = run_synthc("build", "big.yaml", "-q", cwd=work)
    assert done.returncode == 0, done.stderr
    assert server.count == missing
    assert (work / "out.jsonl").read_bytes() == expected_bytes
    assert leftovers(work, "out.jsonl") == []
    return server.count


def test_sigkill_at_random_moments_loses_only_requests_in_flight(tmp_path: Path) -> None:
    with FakeLLMServer(latency=LATENCY) as server:
        expected, duration = _reference(tmp_path, server)
        chance = random.Random(20240607)
        mid_build = 0
        for trial in range(TRIALS):
            work = tmp_path / f"kill-{trial}"
            work.mkdir()
            write_config(work / "big.yaml", server, samples=SAMPLES, workers=WORKERS)
            process = _start(work, server)
            time.sleep(chance.uniform(0.0, 0.9 * duration))
            process.kill()
            process.communicate()
            sent = server.count
            saved = len(cached_keys(work / ".synthc" / "cache"))
            assert sent - saved <= BOUND, (trial, sent, saved)
            mid_build += sent < REQUESTS
            rerun = _rerun(work, server, expected)
            assert rerun == REQUESTS - saved
            assert sent + rerun <= REQUESTS + BOUND
            print(f"trial {trial}: sent {sent}, saved {saved}, lost {sent - saved}, rerun {rerun}")
        assert mid_build >= TRIALS // 2  # most kills landed inside the build


def test_sigint_stops_and_says_what_was_saved(tmp_path: Path) -> None:
    with FakeLLMServer(latency=LATENCY) as server:
        expected, duration = _reference(tmp_path, server)
        work = tmp_path / "interrupted"
        work.mkdir()
        write_config(work / "big.yaml", server, samples=SAMPLES, workers=WORKERS)
        process = _start(work, server)
        time.sleep(duration / 3)
        process.send_signal(signal.SIGINT)
        sent_at_signal = server.count
        _, stderr = process.communicate(timeout=60)  # a hang guard, not a speed check
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr
        sent = server.count
        assert sent - sent_at_signal <= WORKERS  # nothing new is started after Ctrl-C
        saved = len(cached_keys(work / ".synthc" / "cache"))
        assert 0 < saved < REQUESTS
        assert f"interrupted: {saved} new results saved to the cache" in stderr
        assert sent - saved <= WORKERS  # close() flushed the write-behind queue
        assert not (work / "out.jsonl").exists()
        assert leftovers(work, "out.jsonl") == []
        assert _rerun(work, server, expected) == REQUESTS - saved
        print(f"SIGINT: sent {sent}, saved {saved}")
