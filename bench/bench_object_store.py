"""A cold teammate build from an S3 bucket 50 ms away: how far remote lookups overlap.

    python bench/bench_object_store.py                 # 1,000 samples x 2 attributes
    python bench/bench_object_store.py --samples 500 --delay 0.1

1. moto's S3 server (``python -m moto.server``, its own process) on 127.0.0.1 with
   a bucket; alice's build pushes every answer to ``s3://bench/team``.
2. bob's build, with an empty local cache, reads every node from the bucket
   directly: the rate the local S3 server allows (moto spends CPU on every GET),
   the ceiling for step 3 on this machine.
3. carol's, through a proxy that adds ``--delay`` to every request (the slow proxy
   the team cache bench uses); no LLM request. Its rate of remote hits is taken
   over the time the build talked to the bucket (the proxy's first request to its
   last answer), start-up and writing aside.
4. The baseline, in the same run: dave's build of the first ``--serial-samples``
   samples through the same proxy with one lookup at a time
   (``SYNTHC_REMOTE_CACHE_LOOKUPS=1``), measured the same way.

Figures: wall seconds, hits per second, CPU seconds per hit of the build
process (user + sys), the peak of lookups in flight at the proxy.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import children_cpu, cpu_seconds, start_server, synthc_build, write_config

from synthc.testing.s3 import s3_request
from synthc.testing.slow_proxy import SlowProxy

BUCKET = "bench"


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto's server did not start listening within 30 s")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_bucket(endpoint: str) -> None:
    status, body = s3_request(endpoint, "PUT", f"/{BUCKET}")
    assert status == 200, (status, body[:200])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added per request")
    parser.add_argument("--serial-samples", type=int, default=100)
    args = parser.parse_args()
    nodes = args.samples * 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        llm, url = start_server(0.0)
        moto, endpoint = start_moto()
        try:
            make_bucket(endpoint)
            os.environ.update(
                AWS_ACCESS_KEY_ID="bench",
                AWS_SECRET_ACCESS_KEY="bench",
                AWS_REGION="us-east-1",
                AWS_ENDPOINT_URL=endpoint,
            )
            config = write_config(work, args.samples, url, workers=128)
            share = ("--remote-cache", f"s3://{BUCKET}/team")
            first, _ = synthc_build(config, work / "alice", *share)
            cpu = children_cpu()
            direct, _ = synthc_build(config, work / "bob", *share)
            direct_cpu = children_cpu() - cpu
            with SlowProxy(endpoint, args.delay) as slow:
                os.environ["AWS_ENDPOINT_URL"] = slow.url
                cpu, server_cpu, proxy_cpu = children_cpu(), process_cpu(moto.pid), cpu_seconds()
                far, _ = synthc_build(config, work / "carol", *share)
                far_cpu = children_cpu() - cpu
                server_cpu = process_cpu(moto.pid) - server_cpu
                proxy_cpu = cpu_seconds() - proxy_cpu
                peak, asked, busy = slow.max_concurrency, slow.count, slow.busy
            subset = write_config(work, min(args.serial_samples, args.samples), url, workers=128)
            with SlowProxy(endpoint, args.delay) as slow:
                os.environ["AWS_ENDPOINT_URL"] = slow.url
                os.environ["SYNTHC_REMOTE_CACHE_LOOKUPS"] = "1"
                synthc_build(subset, work / "dave", *share)
                del os.environ["SYNTHC_REMOTE_CACHE_LOOKUPS"]
                serial = slow.count / slow.busy
        finally:
            for proc in (moto, llm):
                proc.terminate()
                proc.wait()
    print(f"object store: {args.samples} samples x 2 attributes = {nodes} LLM nodes, S3 (moto)")
    print(f"  first build, pushing every answer : {first:6.2f} s")
    print(
        f"  teammate, bucket on this machine  : {direct:6.2f} s  ({nodes / direct:,.0f} hits/s, "
        f"{direct_cpu / nodes * 1000:.2f} ms CPU a hit)"
    )
    away = f"{args.delay * 1000:.0f} ms away"
    print(
        f"  teammate, bucket {away:<17}: {far:6.2f} s  ({nodes / far:,.0f} hits/s, "
        f"{far_cpu / nodes * 1000:.2f} ms CPU a hit; {asked} requests, peak {peak} in flight)"
    )
    rate = asked / busy  # while the build talked to the bucket: start-up and writing aside
    print(
        f"  ... of which talking to the bucket: {busy:6.2f} s  ({rate:,.0f} requests/s; CPU a "
        f"request: {server_cpu / asked * 1000:.2f} ms S3 server, "
        f"{proxy_cpu / asked * 1000:.2f} ms proxy)"
    )
    print(
        f"  one lookup at a time (measured)   : {serial:,.1f} requests/s -> overlap "
        f"{rate / serial:.1f}x (target >= 20x; at most {1 / args.delay:.0f}/s in theory)"
    )


if __name__ == "__main__":
    main()
