"""How well a build keeps a rate-limited server busy: in flight ÷ allowed, at the server.

    python bench/bench_throttle.py              # 300 samples x 2 attributes
    python bench/bench_throttle.py --samples 1000

The server (:class:`synthc.testing.server.FakeLLMServer`) answers after 50 ms and
takes at most 2 requests at a time, answering 429 to any request beyond them, as
a provider's concurrency limit does. Two builds of the same config run against
it (bench_build.py's question-and-answer config), each in a fresh process with an
empty cache:

- the baseline: ``num_workers: 2``, exactly what the server allows (no 429);
- the throttled build: ``num_workers: 8``, four times too many; synthc's window
  shrinks on the 429s and grows back (docs: README, "fail-safe runs").

For each it prints the requests the server answered and refused, the nodes that
failed (the target is 0: every node answered in one run), and the server's
utilisation: the seconds of answering it did (answered x 50 ms) over what it
could have done in the build's wall time (2 slots x wall time). The figure to
compare is the throttled build's utilisation over the baseline's, measured in the
same run (target >= 0.8); both carry between machines better than a rate does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_build import write_config  # the same two-attribute config

from synthc.testing.server import FakeLLMServer

LATENCY = 0.05
ALLOWED = 2


def measure(server: FakeLLMServer, directory: Path, samples: int, workers: int) -> dict[str, float]:
    """One build with ``workers`` workers in a fresh process: what the server saw."""
    directory = directory / f"workers_{workers}"
    directory.mkdir()
    config = write_config(directory, samples, server.url("/v1/chat/completions"), workers)
    output = directory / f"bench_{samples}.jsonl"
    server.reset()
    throttled_before = server.throttled
    env = {**os.environ, "SYNTHC_CACHE_DIR": str(directory / "cache")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "synthc", "build", str(config), "--quiet"],
        check=False,  # a failed build is a figure too
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - started
    refused = server.throttled - throttled_before
    answered = server.count - refused
    rows = len(output.read_text().splitlines()) if output.exists() else 0
    return {
        "workers": workers,
        "exit": done.returncode,
        "answered": answered,
        "refused": refused,
        "failed_samples": samples - rows,
        "wall": wall,
        "utilisation": answered * LATENCY / (ALLOWED * wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeLLMServer(latency=LATENCY, max_in_flight=ALLOWED, record=False) as server,
    ):
        directory = Path(tmp)
        baseline = measure(server, directory, args.samples, ALLOWED)
        throttled = measure(server, directory, args.samples, 4 * ALLOWED)
    for run in (baseline, throttled):
        print(
            f"num_workers {run['workers']:>2}: exit {run['exit']}, {run['answered']:.0f} answered, "
            f"{run['refused']:.0f} refused (429), {run['failed_samples']:.0f} samples missing, "
            f"{run['wall']:.1f}s, server utilisation {run['utilisation']:.2f}"
        )
    ratio = throttled["utilisation"] / baseline["utilisation"]
    print(json.dumps({"utilisation_ratio": round(ratio, 3), "target": ">= 0.8"}))


if __name__ == "__main__":
    main()
