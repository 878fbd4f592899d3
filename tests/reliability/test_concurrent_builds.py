"""Several ``synthc build`` processes share one cache directory at the same time.

Guaranteed (and tested here): every build finishes with the output it would
have had alone, the cache stays consistent (``synthc cache verify`` is clean),
and a node is requested once between the builds, whether they start together
or one joins another in flight (:mod:`synthc.cache.claims`: builds claim nodes
once they see each other). A killed build's registration and claims block no
later build. Not guaranteed, and not tested because it needs a stalled build:
a peer that does not acknowledge a newcomer within ``ACK_TIMEOUT`` may have
the nodes it had in flight requested twice.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from synthc.cache.claims import CLAIMS, Claims
from synthc.cache.registry import BUILDS
from synthc.cache.server import CacheServer
from synthc.cache.store import LocalStore
from synthc.testing.server import FakeLLMServer
from synthc.testing.slow_proxy import SlowProxy
from tests.reliability.helpers import (
    cached_keys,
    interruptible_command,
    run_synthc,
    write_config,
)

SAMPLES = 60
OVERLAP = 30  # samples b shares with a (temperature 0: identical prompts share one node)


def _start(tmp_path: Path, config: str, cache: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        interruptible_command("build", config, "-q", "--cache-dir", str(cache), *extra),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(build: subprocess.Popen[str]) -> None:
    _, stderr = build.communicate(timeout=120)
    assert build.returncode == 0, stderr
    assert "Traceback" not in stderr


def _wait_for(server: FakeLLMServer, count: int, build: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while server.count < count:
        assert build.poll() is None, build.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)


def _check_cache(tmp_path: Path, cache: Path, unique: int) -> None:
    """Exactly the unique records, each under its key; no claim or registration left."""
    assert len(cached_keys(cache)) == unique
    done = run_synthc("cache", "verify", "--cache-dir", str(cache), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{unique} ok, 0 bad, 0 unreadable" in done.stdout
    assert [p.name for p in (cache / CLAIMS).iterdir() if not p.name.startswith(".")] == []
    assert list((cache / BUILDS).iterdir()) == []


def _same_as_alone(tmp_path: Path, server: FakeLLMServer, names: dict[str, int]) -> None:
    """Alone, from an empty cache, each build writes exactly what the concurrent one did."""
    server.latency = 0.0
    for name, requests in names.items():
        concurrent = (tmp_path / f"{name}.jsonl").read_bytes()
        server.reset()
        alone = tmp_path / f"alone-{name}" / "cache"
        done = run_synthc("build", f"{name}.yaml", "-q", "--cache-dir", str(alone), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert server.count == requests
        assert (tmp_path / f"{name}.jsonl").read_bytes() == concurrent


def test_builds_started_together_send_each_node_once(tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"
    with FakeLLMServer(latency=0.005) as server:
        kw: dict[str, Any] = {"samples": SAMPLES, "temperature": 0.0, "workers": 8}
        write_config(tmp_path / "a.yaml", server, output="a.jsonl", **kw)
        write_config(
            tmp_path / "b.yaml", server, output="b.jsonl", first_item=SAMPLES - OVERLAP, **kw
        )
        # a twice: same output file, same nodes
        builds = [_start(tmp_path, name, cache) for name in ("a.yaml", "b.yaml", "a.yaml")]
        for build in builds:
            _finish(build)
        unique = 2 * (2 * SAMPLES - OVERLAP)
        sent = server.count
        print(f"together: {sent} requests for {unique} unique nodes")
        assert sent == unique
        assert list(tmp_path.glob(".*.tmp")) == []
        _check_cache(tmp_path, cache, unique)
        _same_as_alone(tmp_path, server, {"a": 2 * SAMPLES, "b": 2 * SAMPLES})


def _item(body: dict[str, Any]) -> int:
    """The item a request is about: a question names it, its answer quotes the question."""
    found = re.search(r"item-([0-9]+)", str(body["messages"][-1]["content"]))
    assert found is not None
    return int(found[1])


def test_a_build_joining_one_in_flight_sends_nothing_twice(tmp_path: Path) -> None:
    """b starts while a is sending unclaimed (alone): a claims what it has in flight
    once it sees b, and b waits for that before it sends anything."""
    cache = tmp_path / "shared-cache"
    samples, shared = 160, 80
    with FakeLLMServer(latency=0.05) as server:
        kw: dict[str, Any] = {"samples": samples, "temperature": 0.0, "workers": 4}
        write_config(tmp_path / "a.yaml", server, output="a.jsonl", **kw)
        write_config(
            tmp_path / "b.yaml", server, output="b.jsonl", first_item=samples - shared, **kw
        )
        first = _start(tmp_path, "a.yaml", cache)
        _wait_for(server, 30, first)  # a is alone and mid-flight
        second = _start(tmp_path, "b.yaml", cache)
        _finish(second)
        _finish(first)
        unique = 2 * (2 * samples - shared)
        sent = server.count
        print(f"joining: {sent} requests for {unique} unique nodes")
        assert sent == unique
        # They did overlap: b sent a request of its own before a's last one of its own.
        bodies, arrivals = server.requests, server.arrivals
        items = [(_item(body), at) for body, at in zip(bodies, arrivals, strict=True)]
        b_first = min(at for item, at in items if item >= samples)
        a_last = max(at for item, at in items if item < samples - shared)
        assert b_first < a_last
        _check_cache(tmp_path, cache, unique)
        _same_as_alone(tmp_path, server, {"a": 2 * samples, "b": 2 * samples})


def test_builds_behind_a_slow_remote_send_each_node_once(tmp_path: Path) -> None:
    """A remote 50 ms away has b's nodes (built elsewhere): the builds read those from it,
    and claim and send a's own nodes once between them (remote lookups come first)."""
    cache = tmp_path / "shared-cache"
    with (
        FakeLLMServer(latency=0.005) as server,
        CacheServer(tmp_path / "remote", None) as remote,
        SlowProxy(remote.url, 0.05) as slow,
    ):
        kw: dict[str, Any] = {"samples": SAMPLES, "temperature": 0.0, "workers": 8}
        write_config(tmp_path / "a.yaml", server, output="a.jsonl", **kw)
        write_config(
            tmp_path / "b.yaml", server, output="b.jsonl", first_item=SAMPLES - OVERLAP, **kw
        )
        elsewhere = ("--cache-dir", str(tmp_path / "elsewhere"), "--remote-cache", remote.url)
        done = run_synthc("build", "b.yaml", "-q", *elsewhere, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        server.reset()
        share = ("--remote-cache", slow.url)
        builds = [_start(tmp_path, name, cache, *share) for name in ("a.yaml", "b.yaml", "a.yaml")]
        for build in builds:
            _finish(build)
        assert server.count == 2 * (SAMPLES - OVERLAP)  # only a's own nodes, each once
        assert slow.max_concurrency > 1
        _check_cache(tmp_path, cache, 2 * (2 * SAMPLES - OVERLAP))


def _claims_left(cache: Path) -> list[str]:
    return [p.name for p in (cache / CLAIMS).iterdir() if p.is_symlink()]


def test_interrupted_and_killed_builds_block_no_later_build(tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"
    samples = 200
    with FakeLLMServer(latency=0.02) as server:
        write_config(tmp_path / "c.yaml", server, samples=samples, temperature=0.0, workers=8)
        store = LocalStore(cache)
        peer = Claims.open(cache, store)  # an idle build here, so the others claim nodes
        assert peer is not None
        try:
            interrupted = _start(tmp_path, "c.yaml", cache)
            _wait_for(server, 20, interrupted)
            interrupted.send_signal(signal.SIGINT)  # lets go of its claims on the way out
            assert interrupted.communicate(timeout=30)[0] is not None
            assert interrupted.returncode == 130
            assert _claims_left(cache) == []
            assert [p.name for p in (cache / BUILDS).iterdir()] == [peer.id]

            server.reset()
            killed = _start(tmp_path, "c.yaml", cache)
            _wait_for(server, 40, killed)
            killed.kill()
            killed.communicate()
            assert _claims_left(cache)  # the kill left claims (requests queued or in flight)
            builds = [p.name for p in (cache / BUILDS).iterdir()]
            # ours, and the dead build's unless our watcher has already swept it away
            assert peer.id in builds and len(builds) <= 2

            missing = 2 * samples - len(cached_keys(cache))
            server.reset()
            # the dead build's claims do not hold us for their age limit (an hour): the
            # command's timeout would trip first
            done = run_synthc("build", "c.yaml", "-q", "--cache-dir", str(cache), cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert server.count == missing  # the dead build's claimed nodes were sent
            assert _claims_left(cache) == []
            assert [p.name for p in (cache / BUILDS).iterdir()] == [peer.id]
        finally:
            store.close()
            peer.close()
        _check_cache(tmp_path, cache, 2 * samples)
