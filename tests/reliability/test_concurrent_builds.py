"""Several ``synthc build`` processes share one cache directory at the same time.

Guaranteed (and tested): every build finishes with the output it would have
had alone, and the cache stays consistent (every record matches its key).
Not guaranteed: a node two builds need at the same moment may be requested by
both (there is no cross-process claim); the second answer overwrites the first
with an equally valid one, so the cost is at most the overlap, sent twice.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from synthc.cache.store import LocalStore
from synthc.testing.server import FakeLLMServer
from tests.reliability.helpers import cached_keys, run_synthc, synthc_command, write_config

SAMPLES = 60
OVERLAP = 30  # samples b shares with a (temperature 0: identical prompts share one node)


def test_overlapping_builds_share_a_cache_without_corrupting_it(tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"
    with FakeLLMServer(latency=0.005) as server:
        kw = {"samples": SAMPLES, "temperature": 0.0, "workers": 8}
        write_config(tmp_path / "a.yaml", server, output="a.jsonl", **kw)  # type: ignore[arg-type]
        write_config(
            tmp_path / "b.yaml",
            server,
            output="b.jsonl",
            first_item=SAMPLES - OVERLAP,
            **kw,  # type: ignore[arg-type]
        )
        builds = [
            subprocess.Popen(
                synthc_command("build", name, "-q", "--cache-dir", str(cache)),
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("a.yaml", "b.yaml", "a.yaml")  # a twice: same output file, same nodes
        ]
        for build in builds:
            _, stderr = build.communicate(timeout=120)
            assert build.returncode == 0, stderr
            assert "Traceback" not in stderr
        unique = 2 * (2 * SAMPLES - OVERLAP)
        sent = server.count
        assert unique <= sent <= 3 * 2 * SAMPLES  # no build sends more than it would alone

        concurrent = {n: (tmp_path / n).read_bytes() for n in ("a.jsonl", "b.jsonl")}
        assert list(tmp_path.glob(".*.tmp")) == []
        assert len(cached_keys(cache)) == unique
        store = LocalStore(cache)
        try:
            from synthc.cache.recover import verify

            assert verify(store).ok == unique
        finally:
            store.close()

        # Alone, from an empty cache, each build writes exactly what the concurrent one did.
        for name in ("a", "b"):
            server.reset()
            alone = tmp_path / f"alone-{name}"
            done = run_synthc(
                "build", f"{name}.yaml", "-q", "--cache-dir", str(alone / "cache"), cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr
            assert server.count == 2 * SAMPLES
            assert (tmp_path / f"{name}.jsonl").read_bytes() == concurrent[f"{name}.jsonl"]
        print(f"concurrent: {sent} requests for {unique} unique nodes")
