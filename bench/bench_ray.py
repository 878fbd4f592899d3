"""A build in one process against the same build on Ray, and how the Ray rate scales.

    python bench/bench_ray.py

Starts Ray on this machine (2 CPUs) once, then, against a loopback server in its
own process (``python -m synthc.testing.server``):

1. CPU-bound: 2,000 samples × 2 attributes, 64 workers, a 5 ms server. Wall time
   and rate of ``synthc.build()`` in this process, and of the same build on Ray
   with 1 and 2 shards (a fresh cache each). Here the client's CPU is what limits
   the rate; on this 2-core machine the server and Ray's own processes share the
   cores with the shards, so do not expect 2 shards to double anything.
2. Latency-bound: 600 samples × 2 attributes, a 200 ms server, 64 and 128 workers,
   local and 2 shards. ``num_workers`` is the endpoint's (shards split it), so the
   rate is ``num_workers / latency`` either way.
3. A projection from those figures: rate ≈ min(num_workers / latency, shards × the
   rate one process sustains when CPU-bound (measured in 1), the rate limit), i.e.
   shards pay off once an endpoint's concurrency needs more CPU than one process has.

Every figure is from this run; compare ratios, not absolute rates, across machines.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_build

import synthc
from synthc.cluster.on_ray import connect


def timed_build(config: Path, cache: Path, **how: object) -> float:
    """Wall seconds of one build of ``config`` into the empty cache ``cache``."""
    started = time.perf_counter()
    result = synthc.build(config, cache_dir=str(cache), **how)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert result.ok and result.stats.cached == 0, result.stats
    return elapsed


def compare(work: Path, samples: int, latency: float, workers: int) -> dict[str, float]:
    """Rates (requests/s) of one config built locally and on Ray with 1 and 2 shards."""
    server, url = bench_build.start_server(latency)
    rates: dict[str, float] = {}
    try:
        config = bench_build.write_config(work, samples, url, workers=workers)
        requests = 2 * samples
        for name, how in (
            ("local", {}),
            ("ray, 1 shard", {"executor": "ray", "shards": 1}),
            ("ray, 2 shards", {"executor": "ray", "shards": 2}),
        ):
            cache = work / f"cache-{latency}-{workers}-{len(rates)}"
            elapsed = timed_build(config, cache, **how)
            rates[name] = requests / elapsed
            print(f"  {name:14} {elapsed:6.2f} s  {rates[name]:7.0f} req/s", flush=True)
    finally:
        server.terminate()
        server.wait()
    return rates


def main() -> None:
    connect("local", num_cpus=2)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            # the first Ray build starts its workers: not in any figure
            warm, url = bench_build.start_server(0.0)
            try:
                config = bench_build.write_config(work, 20, url)
                synthc.build(config, cache_dir=str(work / "warm"), executor="ray", shards=2)
            finally:
                warm.terminate()
                warm.wait()

            print("1. CPU-bound: 2000 samples x 2 attributes, 64 workers, 5 ms server")
            cpu_bound = compare(work, 2000, 0.005, 64)
            one = cpu_bound["local"]
            print(f"  ray 2 shards / local: {cpu_bound['ray, 2 shards'] / one:.2f}")

            print("2. latency-bound: 600 samples x 2 attributes, 200 ms server")
            for workers in (64, 128):
                print(f" {workers} workers (num_workers / latency = {workers / 0.2:.0f} req/s)")
                compare(work, 600, 0.2, workers)

            print("3. projection: rate ~ min(num_workers / latency, shards x one process's")
            print(f"   CPU-bound rate ({one:.0f} req/s here), rate limit), latency 200 ms:")
            for workers in (64, 512, 2048):
                for shards in (1, 2, 8):
                    rate = min(workers / 0.2, shards * one)
                    print(f"   num_workers {workers:5}, {shards} shards: ~{rate:7.0f} req/s")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
