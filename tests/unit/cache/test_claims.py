"""claims: two builds on one cache directory send a node once; dead or failed holders block nobody.

Each test opens real Claims on a temporary cache directory, as two builds in
one process (each holds its own flock'd registration, so they see each other
exactly as two processes do).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from synthc.cache.claims import CLAIMS, MAX_AGE, TICK, Claims
from synthc.cache.registry import BUILDS
from synthc.cache.store import LocalStore
from synthc.core.records import Record

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="claims need flock")

KEY = "0123456789abcdef0123456789abcdef"
DEAD = "999999-0badf00d"  # a build id nobody holds: a killed build's


class Build:
    """What a build hands to Claims: its local store on the shared directory."""

    def __init__(self, cache: Path):
        self.store = LocalStore(cache)
        claims = Claims.open(cache, self.store)
        assert claims is not None
        self.claims = claims

    def close(self) -> None:
        self.store.close()
        self.claims.close()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def builds(cache: Path) -> Iterator[Callable[[], Build]]:
    opened: list[Build] = []

    def open_build() -> Build:
        opened.append(Build(cache))
        return opened[-1]

    yield open_build
    for build in opened:
        build.close()


def _record(key: str = KEY) -> Record:
    return Record(key=key, text="made by the first build", request={"k": key})


def _holder(cache: Path, key: str = KEY) -> str | None:
    try:
        return os.readlink(cache / CLAIMS / key)
    except FileNotFoundError:
        return None


def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _pair(builds: Callable[[], Build]) -> tuple[Build, Build]:
    """Two builds that have both seen each other."""
    first, second = builds(), builds()
    _until(lambda: first.claims.shared and second.claims.shared)
    return first, second


def test_alone_a_build_claims_nothing(cache: Path, builds: Callable[[], Build]) -> None:
    build = builds()
    assert not build.claims.shared
    assert asyncio.run(build.claims.claim(KEY)) is None
    assert _holder(cache) is None  # no file per node while alone
    build.claims.release(KEY)


def test_a_node_one_build_holds_is_read_by_the_other_not_sent(
    cache: Path, builds: Callable[[], Build]
) -> None:
    first, second = _pair(builds)

    async def go() -> Record | None:
        assert await first.claims.claim(KEY) is None  # first sends it
        assert _holder(cache) == first.claims.id
        waiting = asyncio.create_task(second.claims.claim(KEY))
        await asyncio.sleep(4 * TICK)
        assert not waiting.done()  # held: second waits
        first.store.put(KEY, _record())
        first.claims.release(KEY)
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(go()) == _record()
    assert _holder(cache) is None


def test_a_failed_node_is_taken_over_and_sent_by_the_waiter(
    cache: Path, builds: Callable[[], Build]
) -> None:
    first, second = _pair(builds)

    async def go() -> Record | None:
        assert await first.claims.claim(KEY) is None
        waiting = asyncio.create_task(second.claims.claim(KEY))
        await asyncio.sleep(2 * TICK)
        first.claims.release(KEY)  # no record: the request failed
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(go()) is None  # second sends it itself
    assert _holder(cache) == second.claims.id


def test_a_dead_builds_claim_is_taken_over_at_once(
    cache: Path, builds: Callable[[], Build]
) -> None:
    first, _ = _pair(builds)
    os.symlink(DEAD, cache / CLAIMS / KEY)
    # taken over because its holder is dead, not after the claim's age limit (an hour):
    # waiting for that would trip this guard
    assert asyncio.run(asyncio.wait_for(first.claims.claim(KEY), 60)) is None
    assert _holder(cache) == first.claims.id


def test_a_claim_older_than_max_age_is_taken_over_even_from_a_live_build(
    cache: Path, builds: Callable[[], Build]
) -> None:
    first, second = _pair(builds)
    assert asyncio.run(second.claims.claim(KEY)) is None
    old = time.time() - MAX_AGE - 60
    os.utime(cache / CLAIMS / KEY, (old, old), follow_symlinks=False)
    assert asyncio.run(first.claims.claim(KEY)) is None
    assert _holder(cache) == first.claims.id


def test_a_build_that_meets_another_claims_what_it_sent_alone(
    cache: Path, builds: Callable[[], Build]
) -> None:
    first = builds()

    async def go() -> Record | None:
        assert await first.claims.claim(KEY) is None  # alone: sent unclaimed
        second = builds()
        other = "f" * 32
        assert await second.claims.claim(other) is None
        # second sent nothing before first acknowledged it, and first acknowledges
        # only after claiming what it had in flight
        assert second.claims.id in second.claims.registry.peers()[first.claims.id]
        assert _holder(cache) == first.claims.id
        waiting = asyncio.create_task(second.claims.claim(KEY))
        await asyncio.sleep(2 * TICK)
        assert not waiting.done()
        first.store.put(KEY, _record())
        first.claims.release(KEY)
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(go()) == _record()


def test_claims_a_dead_build_left_are_swept_when_the_next_starts(
    cache: Path, builds: Callable[[], Build]
) -> None:
    (cache / CLAIMS).mkdir(parents=True)
    (cache / BUILDS).mkdir(parents=True)
    (cache / BUILDS / DEAD).write_text("")  # its registration, no longer locked
    for key in (KEY, "e" * 32):
        os.symlink(DEAD, cache / CLAIMS / key)
    build = builds()
    assert not build.claims.shared  # the dead build does not count
    _until(lambda: _holder(cache) is None and _holder(cache, "e" * 32) is None)
    assert not (cache / BUILDS / DEAD).exists()


def test_close_lets_go_of_every_claim_and_leaves(cache: Path, builds: Callable[[], Build]) -> None:
    first, second = _pair(builds)
    assert asyncio.run(first.claims.claim(KEY)) is None
    first.close()
    assert _holder(cache) is None
    assert list(second.claims.registry.peers()) == []


def test_after_a_peer_left_a_node_it_made_is_read_not_sent(
    cache: Path, builds: Callable[[], Build]
) -> None:
    first, second = _pair(builds)
    second.store.put(KEY, _record())  # made after first looked KEY up, then second leaves
    second.close()
    _until(lambda: not first.claims.shared)
    assert asyncio.run(first.claims.claim(KEY)) == _record()
    assert asyncio.run(first.claims.claim("e" * 32)) is None  # not made: send, unclaimed
    assert _holder(cache, "e" * 32) is None
