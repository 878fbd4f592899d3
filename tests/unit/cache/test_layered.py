"""layered: read-through, write-through, integrity checks, and remote failures as warnings."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthc.cache.layered import (
    LAST_BUILD,
    LOCAL,
    LayeredStore,
    checked,
    open_store,
    readonly_setting,
    remote_urls,
)
from synthc.cache.objects import ObjectRemote
from synthc.cache.pusher import MAX_ERRORS
from synthc.cache.remote import (
    NAMESPACE,
    DirRemote,
    HTTPRemote,
    RemoteError,
    redact,
)
from synthc.cache.remotes import open_remote
from synthc.cache.server import CacheServer
from synthc.cache.store import LocalStore
from synthc.core.errors import CacheError
from synthc.core.keys import node_key
from synthc.core.records import Record, remote_tiers
from synthc.testing.slow_proxy import SlowProxy

REQUEST = {"engine": "OPENAI", "model": "m", "messages": [["user", "Capital of France?"]]}
KEY = node_key("llm", REQUEST)


def _record(text: str = "Paris", request: dict[str, object] | None = None) -> Record:
    request = request or REQUEST
    return Record(key=node_key("llm", request), text=text, request=request, created=1.0)


class Flaky:
    """A remote that is down."""

    name = "flaky"
    concurrency = 1

    def __init__(self) -> None:
        self.calls = 0

    def get(self, key: str) -> bytes | None:
        self.calls += 1
        raise RemoteError("connection refused")

    def contains(self, key: str) -> bool:
        self.calls += 1
        raise RemoteError("connection refused")

    def put(self, key: str, data: bytes) -> None:
        self.calls += 1
        raise RemoteError("connection refused")

    def close(self) -> None:
        pass


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalStore]:
    store = LocalStore(tmp_path / "local")
    yield store
    store.close()


def test_checked_accepts_only_records_whose_request_hashes_to_the_key() -> None:
    good = _record()
    assert checked(KEY, good.to_bytes(), "r") == good
    assert checked("f" * 32, good.to_bytes(), "r") is None  # misfiled
    forged = Record(key=KEY, text="evil", request={**REQUEST, "model": "other"})
    assert checked(KEY, forged.to_bytes(), "r") is None  # tampered request
    newer = json.dumps({**json.loads(good.to_bytes()), "version": 99}).encode()
    assert checked(KEY, newer, "r") is None  # a format this synthc does not read
    assert checked(KEY, b"\x00garbage", "r") is None


def test_remote_hit_is_copied_to_local(tmp_path: Path) -> None:
    shared = DirRemote(tmp_path / "shared")
    shared.put(KEY, _record().to_bytes())
    store = open_store(tmp_path / "mine", [str(tmp_path / "shared")], record_stats=True)
    assert store.get(KEY) == _record()
    assert store.remote_hits() == {shared.name: 1}
    assert store.get(KEY) == _record()
    assert store.hits[LOCAL] == 1
    store.close()
    stats = json.loads((tmp_path / "mine" / LAST_BUILD).read_text())
    assert [(t["lookups"], t["hits"]) for t in stats["tiers"]] == [(2, 1), (1, 1)]
    mine = LocalStore(tmp_path / "mine")
    assert mine.get(KEY) == _record()
    mine.close()


def _records(count: int) -> list[Record]:
    return [_record(request={**REQUEST, "n": i}) for i in range(count)]


def test_get_many_asks_local_then_remotes_for_its_misses(tmp_path: Path) -> None:
    mine, theirs, nowhere = _records(3)
    shared = DirRemote(tmp_path / "shared")
    shared.put(theirs.key, theirs.to_bytes())
    store = open_store(tmp_path / "mine", [str(tmp_path / "shared")])
    store.put(mine.key, mine)
    keys = [mine.key, theirs.key, nowhere.key, mine.key]
    assert store.local_tier.get_many(keys) == {mine.key: mine}  # planning: local only
    assert store.get_many(keys) == {mine.key: mine, theirs.key: theirs}
    assert store.local_tier.get_many(keys) == {mine.key: mine, theirs.key: theirs}  # copied
    # each distinct key counted once per ask; the remote asked for local misses only
    assert (store.lookups[LOCAL], store.hits[LOCAL]) == (9, 4)
    assert (store.lookups[shared.name], store.hits[shared.name]) == (2, 1)
    store.close()


def test_remote_lookups_overlap(tmp_path: Path) -> None:
    """64 lookups on a remote 100 ms away, together and from an event loop: far under 6.4 s."""
    records = _records(64)
    for record in records[:48]:  # the directory the server serves
        DirRemote(tmp_path / "remote").put(record.key, record.to_bytes())
    with CacheServer(tmp_path / "remote", None) as server, SlowProxy(server.url, 0.1) as slow:
        store = open_store(tmp_path / "mine", [slow.url], record_stats=True)
        assert remote_tiers(store) is store and store.local_tier.get(records[0].key) is None
        found = store.get_remote_many(r.key for r in records[:32])

        async def one_by_one() -> list[Record | None]:
            return await asyncio.gather(*(store.fetch_remote(r.key) for r in records[32:]))

        fetched = asyncio.run(one_by_one())
        assert slow.max_concurrency >= 8  # the lookups overlap (counted at the proxy)
        store.close()
    assert found == {r.key: r for r in records[:32]}
    assert fetched == records[32:48] + [None] * 16
    assert slow.max_concurrency > 1
    stats = json.loads((tmp_path / "mine" / LAST_BUILD).read_text())
    assert [(t["lookups"], t["hits"]) for t in stats["tiers"]] == [(1, 0), (64, 48)]
    mine = LocalStore(tmp_path / "mine")
    assert all(mine.get(r.key) == r for r in records[:48])
    mine.close()


def test_a_store_without_remotes_is_planned_as_it_is(local: LocalStore, tmp_path: Path) -> None:
    assert remote_tiers(local) is None
    assert remote_tiers(open_store(tmp_path / "bare")) is None


def test_put_is_pushed_to_every_remote_unless_readonly(tmp_path: Path) -> None:
    urls = [str(tmp_path / "one"), f"file://{tmp_path / 'two'}"]
    store = open_store(tmp_path / "mine", urls, write_behind=True)
    store.put(KEY, _record())
    store.close()
    for name in ("one", "two"):
        assert (tmp_path / name / NAMESPACE / KEY).read_bytes() == _record().to_bytes()
    readonly = open_store(tmp_path / "ci", [str(tmp_path / "three")], readonly=True)
    readonly.put(KEY, _record())
    readonly.close()
    assert not (tmp_path / "three").exists()


def test_a_remote_that_is_down_is_switched_off(
    local: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Flaky()
    store = LayeredStore(local, [flaky])
    with caplog.at_level(logging.WARNING):
        for _ in range(10):
            assert store.get(KEY) is None
        store.put(KEY, _record())
        store.close()
    assert flaky.calls == MAX_ERRORS  # then off: no more attempts, no timeouts per node
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("cannot read from the remote cache" in w for w in warnings) == 1
    assert any("could not be pushed" in w for w in warnings)


def test_a_remote_that_is_down_is_switched_off_under_concurrent_lookups(
    local: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Flaky()
    store = LayeredStore(local, [flaky])
    with caplog.at_level(logging.WARNING):
        assert store.get_remote_many(r.key for r in _records(200)) == {}
        calls = flaky.calls
        assert asyncio.run(store.fetch_remote(KEY)) is None
        store.close()
    assert store.tiers[0].down and flaky.calls == calls  # off: asked no more
    assert calls < 200  # lookups queued after it was switched off were not sent
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("cannot read from the remote cache" in w for w in warnings) == 1
    assert sum("not used for the rest of this run" in w for w in warnings) == 1


def test_slow_push_does_not_hold_close_forever(
    local: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    class Slow(Flaky):
        def put(self, key: str, data: bytes) -> None:

            time.sleep(0.5)

    store = LayeredStore(local, [Slow()])
    assert store._pusher is not None
    for i in range(5):
        store.put(KEY, _record(str(i)))
    with caplog.at_level(logging.WARNING):
        store._pusher.close(wait=0.1)
    assert any("gave up waiting" in r.getMessage() for r in caplog.records)


def test_settings_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTHC_REMOTE_CACHE", raising=False)
    monkeypatch.delenv("SYNTHC_REMOTE_CACHE_READONLY", raising=False)
    assert remote_urls(None, None) == []
    assert remote_urls(None, "/cfg") == ["/cfg"]
    assert remote_urls(None, ["/a", "/b"]) == ["/a", "/b"]
    monkeypatch.setenv("SYNTHC_REMOTE_CACHE", "http://env/a, /env/b")
    assert remote_urls(None, "/cfg") == ["http://env/a", "/env/b"]
    assert remote_urls(["/cli"], "/cfg") == ["/cli"]
    assert readonly_setting(None, True) is True
    monkeypatch.setenv("SYNTHC_REMOTE_CACHE_READONLY", "0")
    assert readonly_setting(None, True) is False
    assert readonly_setting(True, False) is True


def test_open_remote_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHC_REMOTE_CACHE_TOKEN", "t0k")
    assert isinstance(open_remote("https://cache.example/team"), HTTPRemote)
    assert isinstance(open_remote(str(tmp_path)), DirRemote)
    assert isinstance(open_remote(f"file://{tmp_path}"), DirRemote)
    with pytest.raises(CacheError, match="unsupported remote cache"):
        open_remote("ftp://bucket/x")
    assert isinstance(open_remote("s3://bucket/x"), ObjectRemote)  # obstore: synthc[s3]
    assert redact("https://bob:pw@cache.example:8443/x") == "https://cache.example:8443/x"
    assert "pw" not in open_remote("https://bob:pw@cache.example/x").name
