"""SlowProxy: forwards requests unchanged, each one late by the delay, several at once."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from synthc.cache.server import CacheServer
from synthc.core.keys import node_key
from synthc.core.records import Record
from synthc.testing.slow_proxy import SlowProxy

REQUEST = {"q": "hi"}
KEY = node_key("llm", REQUEST)  # the server takes only a record whose request hashes to its key
BODY = Record(key=KEY, text="hi", request=REQUEST).to_bytes()


def _call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, body, {"Authorization": "Bearer t"}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_forwards_method_path_headers_and_body_late(tmp_path: Path) -> None:
    with CacheServer(tmp_path, "t") as server, SlowProxy(server.url, 0.2) as slow:
        started = time.perf_counter()
        assert _call(f"{slow.url}/v1/{KEY}") == (404, b"")
        assert time.perf_counter() - started >= 0.2
        assert _call(f"{slow.url}/v1/{KEY}", "PUT", BODY)[0] == 201
        assert _call(f"{slow.url}/v1/{KEY}") == (200, BODY)
        assert _call(f"{slow.url}/v1/..")[0] == 400
        assert slow.count == 4
    assert (tmp_path / "v1" / KEY).read_bytes() == BODY


def test_requests_wait_together(tmp_path: Path) -> None:
    requests = 8
    with (
        CacheServer(tmp_path, "t") as server,
        SlowProxy(server.url, 0.3) as slow,
        ThreadPoolExecutor(requests) as pool,
    ):
        codes = list(pool.map(lambda _: _call(f"{slow.url}/v1/{KEY}")[0], range(requests)))
    assert codes == [404] * requests
    assert slow.max_concurrency >= requests // 2  # held together, not one after another
