"""What a reachable remote cache costs a build: `synthc build` with and without `--remote-cache`.

    python bench/bench_team_cache.py                  # 10,000 samples x 2 attributes
    python bench/bench_team_cache.py --samples 2000

1. A first build pushes every answer to `synthc cache serve` (its own process).
2. A fully cached rebuild, local tier only, then the same with the remote
   reachable (target: < 2x the local-only time; the remote is not asked for
   what the local tier has).
3. A teammate's build with an empty local cache: every node read through
   from the remote (one GET each), no LLM request.
4. The same over a slow network: another teammate's cold build of the first
   ``--slow-samples`` samples from the remote behind a proxy that adds
   ``--delay`` (50 ms) to every request. Looked up one at a time this would
   take at least nodes x delay; the figure shows how far lookups overlap.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import start_server, synthc_build, write_config

from synthc.testing.slow_proxy import SlowProxy

TOKEN = "bench-token"


def start_cache_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "SYNTHC_REMOTE_CACHE_TOKEN": TOKEN}
    command = [sys.executable, "-m", "synthc", "cache", "serve", str(root), "--port", "0"]
    command += ["--log-level", "WARNING"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "serving DIR on URL (Ctrl-C to stop)"
    return proc, line.split(" on ")[1].split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--slow-samples", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added per request")
    args = parser.parse_args()
    samples, slow_samples = args.samples, min(args.slow_samples, args.samples)
    os.environ["SYNTHC_REMOTE_CACHE_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        llm, url = start_server(0.0)
        cache, remote = start_cache_server(work / "remote")
        try:
            config = write_config(work, samples, url, workers=128)
            share = ("--remote-cache", remote)
            first, _ = synthc_build(config, work / "alice", *share)
            local, _ = synthc_build(config, work / "alice")
            layered, _ = synthc_build(config, work / "alice", *share)
            teammate, _ = synthc_build(config, work / "bob", *share)
            subset = write_config(work, slow_samples, url, workers=128)
            with SlowProxy(remote, args.delay) as slow:
                far, _ = synthc_build(subset, work / "carol", "--remote-cache", slow.url)
                peak = slow.max_concurrency
        finally:
            for proc in (cache, llm):
                proc.terminate()
                proc.wait()
    nodes = samples * 2
    print(f"team cache: {samples} samples x 2 attributes = {nodes} LLM nodes")
    print(f"  first build, pushing every answer : {first:6.2f} s")
    print(f"  fully cached, local tier only     : {local:6.2f} s")
    ratio, rate = layered / local, nodes / teammate
    print(f"  fully cached, remote reachable    : {layered:6.2f} s  ({ratio:.2f}x, target < 2x)")
    print(f"  teammate, all from the remote     : {teammate:6.2f} s  ({rate:,.0f} nodes/s)")
    far_nodes, delay_ms = slow_samples * 2, args.delay * 1000
    serial = far_nodes * args.delay
    print(
        f"  teammate, remote {delay_ms:.0f} ms away       : {far:6.2f} s for {far_nodes} nodes "
        f"({far_nodes / far:,.0f} nodes/s; one at a time >= {serial:.0f} s; "
        f"peak {peak} lookups in flight)"
    )


if __name__ == "__main__":
    main()
