"""Throughput, cached-rebuild time and memory of `synthc build` against a loopback server.

    python bench/bench_build.py                 # all three measurements
    python bench/bench_build.py --only rate     # or: cached, memory

1. rate: a 2000-sample × 2-attribute build (64 workers) against a server that
   answers after 20 ms, and, in the same script against the same server, a
   bare aiohttp client sending the same number of requests with the same
   concurrency. Prints both rates and their ratio (target 0.9 in-process, 0.85
   for the whole command), and the CPU seconds (user + sys) each spends per
   1,000 requests and their ratio (target 1.2): the figure that says where time
   goes, and that carries between machines far better than a rate.
2. cached: wall time of a fully cached rebuild of 10,000 samples × 2 attributes
   (target < 1.5 s), the CLI's own work end to end, in a fresh process; and of
   `synthc explain` on the same fully cached config (target < 1.5 s).
3. memory: peak RSS of a 100,000-sample × 2-attribute build (target < 150 MB),
   in a fresh process.
4. imports: the time a fresh interpreter takes to import ``synthc.pipeline`` (what
   a build loads before it starts), best of five (target < 0.25 s).

The server runs in its own process (`python -m synthc.testing.server`) so it
does not share a core's GIL with the client being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

LATENCY = 0.02
WORKERS = 64

CONFIG = """\
num_samples: {samples}
output_path: {output}
strategy_params:
  sampled_attributes:
    - id: topic
      name: Topic
      description: What the question is about
      possible_values:
        - {{id: rivers, name: Rivers, description: Rivers of the world}}
        - {{id: capitals, name: Capitals, description: Capital cities}}
        - {{id: deserts, name: Deserts, description: Hot and cold deserts}}
        - {{id: climate, name: Climate, description: Climate zones}}
  generated_attributes:
    - id: question
      instruction_messages:
        - {{role: SYSTEM, content: "You write quiz questions."}}
        - {{role: USER, content: "Write one question about {{topic}}."}}
    - id: answer
      instruction_messages:
        - {{role: SYSTEM, content: "You answer quiz questions."}}
        - {{role: USER, content: "{{question}}"}}
inference_config:
  model: {{model_name: bench-model}}
  engine: REMOTE
  generation: {{temperature: 0.7, max_new_tokens: 64}}
  remote_params: {{num_workers: {workers}, api_url: "{url}"}}
"""


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthc.testing.server", "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions"


def write_config(directory: Path, samples: int, url: str, workers: int = WORKERS) -> Path:
    path = directory / f"bench_{samples}.yaml"
    output = directory / f"bench_{samples}.jsonl"
    path.write_text(CONFIG.format(samples=samples, output=output, url=url, workers=workers))
    return path


async def bare_client(url: str, total: int, workers: int) -> float:
    """The baseline: one aiohttp session, `workers` coroutines, nothing else."""
    body_base = {"model": "bench-model", "max_tokens": 64, "temperature": 0.7}
    next_index = iter(range(total))

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in next_index:
            body = {
                **body_base,
                "seed": i,
                "messages": [
                    {"role": "system", "content": "You write quiz questions."},
                    {"role": "user", "content": f"Write one question about topic {i}."},
                ],
            }
            async with session.post(url, json=body) as response:
                data = await response.json()
                assert data["choices"][0]["message"]["content"]

    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(workers)))
        return total / (time.perf_counter() - started)


# Runs the real CLI, then reports the process's own peak RSS (KiB) on stderr's last line.
_MEASURED_CLI = """
import resource, sys
from synthc.cli import main
try:
    main(sys.argv[1:])
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def synthc_build(config: Path, cache: Path, *extra: str) -> tuple[float, int]:
    """Run `synthc build` in a fresh process; return (wall seconds, peak RSS in bytes)."""
    env = {**os.environ, "SYNTHC_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED_CLI, "build", str(config), "--quiet", *extra],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - started
    return elapsed, int(done.stderr.strip().splitlines()[-1]) * 1024


def synthc_explain(config: Path, cache: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of `synthc explain --format json` in a fresh process."""
    env = {**os.environ, "SYNTHC_CACHE_DIR": str(cache)}
    started, cpu = time.perf_counter(), children_cpu()
    subprocess.run(
        [sys.executable, "-m", "synthc", "explain", str(config), "--format", "json"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started, children_cpu() - cpu


def children_cpu() -> float:
    """User + system CPU of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds() -> float:
    """User + system CPU this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def library_build(config: Path, cache: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``synthc.build`` in this process, like the bare client: a small
    build first loads what builds load, outside the measurement."""
    import synthc

    warm = config.with_name("warm-up.yaml")
    warm.write_text(config.read_text().replace("num_samples: 2000", "num_samples: 20"))
    synthc.build(warm, cache_dir=str(cache.with_name("warm-up-cache")))
    started, cpu = time.perf_counter(), cpu_seconds()
    result = synthc.build(config, cache_dir=str(cache))
    assert result.ok and result.stats.generated == result.stats.nodes
    return time.perf_counter() - started, cpu_seconds() - cpu


def bench_rate(work: Path) -> None:
    samples = 2000
    total = samples * 2
    server, url = start_server(LATENCY)
    try:
        cpu = cpu_seconds()
        bare = asyncio.run(bare_client(url, total, WORKERS))
        bare_cpu = cpu_seconds() - cpu
        config = write_config(work, samples, url)
        wall, synthc_cpu = library_build(config, work / "cache-rate-lib")
        in_process = total / wall
        elapsed, _ = synthc_build(config, work / "cache-rate")
        command = total / elapsed
        print(
            f"rate: {samples} samples x 2 attributes = {total} requests, {WORKERS} workers, "
            f"{LATENCY * 1000:.0f} ms latency"
        )
        print(f"  bare aiohttp client            : {bare:8.0f} req/s")
        print(
            f"  synthc.build() in this process : {in_process:8.0f} req/s  "
            f"ratio {in_process / bare:.2f} (target 0.90)"
        )
        print(
            f"  `synthc build` command         : {command:8.0f} req/s  "
            f"ratio {command / bare:.2f} (target 0.85; interpreter start-up and imports in)"
        )
        per_k = 1000 / total
        print(
            f"  CPU per 1,000 requests         : synthc {synthc_cpu * per_k:.3f} s, bare client "
            f"{bare_cpu * per_k:.3f} s, ratio {synthc_cpu / bare_cpu:.2f} (target 1.2)"
        )
    finally:
        server.terminate()
        server.wait()


def bench_cached(work: Path) -> None:
    samples = 10_000
    server, url = start_server(0.0)
    try:
        config = write_config(work, samples, url, workers=128)
        cache = work / "cache-cached"
        first, _ = synthc_build(config, cache)
        cpu = children_cpu()
        rebuild, _ = synthc_build(config, cache)
        rebuild_cpu = children_cpu() - cpu
        rows = sum(1 for _ in (work / f"bench_{samples}.jsonl").open())
        print(f"cached: {samples} samples x 2 attributes; first build {first:.1f} s")
        print(
            f"  fully cached rebuild: {rebuild:.2f} s ({rebuild_cpu:.2f} s CPU) for {rows} rows "
            "(target < 1.5 s)"
        )
        explained, explain_cpu = synthc_explain(config, cache)
        print(
            f"  synthc explain (json, all cached): {explained:.2f} s ({explain_cpu:.2f} s CPU) "
            "(target < 1.5 s)"
        )
    finally:
        server.terminate()
        server.wait()


def bench_memory(work: Path) -> None:
    samples = 100_000
    server, url = start_server(0.0)
    try:
        config = write_config(work, samples, url, workers=128)
        elapsed, peak = synthc_build(config, work / "cache-memory")
        print(f"memory: {samples} samples x 2 attributes built in {elapsed:.0f} s")
        print(f"  peak RSS: {peak / 2**20:.0f} MB (target < 150 MB)")
    finally:
        server.terminate()
        server.wait()


def bench_imports(work: Path) -> None:
    code = (
        "import time; t = time.perf_counter(); import synthc.pipeline; "
        "print(time.perf_counter() - t)"
    )
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(5)
    ]
    print(f"imports: synthc.pipeline in a fresh interpreter {min(times):.3f} s (target < 0.25 s)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", choices=["rate", "cached", "memory", "imports"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, bench in (
            ("rate", bench_rate),
            ("cached", bench_cached),
            ("memory", bench_memory),
            ("imports", bench_imports),
        ):
            if args.only in (None, name):
                bench(work)


if __name__ == "__main__":
    main()
