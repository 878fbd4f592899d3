"""server: `cache serve` refuses bad tokens, path tricks and oversize bodies; never logs a token."""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthc.cache.remote import NAMESPACE, HTTPRemote, RemoteError
from synthc.cache.server import CacheServer
from synthc.core.keys import node_key
from synthc.core.records import Record

TOKEN = "tok-9b2e-very-secret"
REQUEST = {"q": 1}
KEY = node_key("llm", REQUEST)  # a record's key is the hash of its request
RECORD = Record(key=KEY, text="Paris", request=REQUEST).to_bytes()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CacheServer]:
    with CacheServer(tmp_path / "root", TOKEN, max_size=4096) as running:
        yield running


def _send(
    server: CacheServer,
    method: str,
    path: str,
    token: str | None = TOKEN,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_put_get_head_round_trip(server: CacheServer, tmp_path: Path) -> None:
    path = f"/{NAMESPACE}/{KEY}"
    assert _send(server, "GET", path)[0] == 404
    assert _send(server, "PUT", path, body=RECORD)[0] == 201
    assert _send(server, "GET", path) == (200, RECORD)
    assert _send(server, "HEAD", path)[0] == 200
    assert (tmp_path / "root" / NAMESPACE / KEY).read_bytes() == RECORD
    assert [p.name for p in (tmp_path / "root" / NAMESPACE).iterdir()] == [KEY]  # no temp left


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", ""])
def test_wrong_or_missing_token_is_401_and_no_data(
    server: CacheServer, tmp_path: Path, token: str | None
) -> None:
    path = f"/{NAMESPACE}/{KEY}"
    assert _send(server, "PUT", path, body=RECORD)[0] == 201
    assert _send(server, "GET", path, token=token) == (401, b"")
    assert _send(server, "HEAD", path, token=token)[0] == 401
    status, _ = _send(server, "PUT", path, token=token, body=b'{"key":"%s"}' % KEY.encode())
    assert status == 401
    assert (tmp_path / "root" / NAMESPACE / KEY).read_bytes() == RECORD


@pytest.mark.parametrize(
    "path",
    [
        f"/{NAMESPACE}/../../etc/passwd",
        f"/{NAMESPACE}/..%2f..%2fetc%2fpasswd",
        f"/{NAMESPACE}/%2e%2e/{KEY}",
        "/../root/secret",
        "//etc/passwd",
        f"/{NAMESPACE}//etc/passwd",
        f"/{NAMESPACE}/{KEY}/..",
        f"/{NAMESPACE}/{KEY.upper()}",
        f"/{NAMESPACE}/{KEY}?x=1",
        f"/etc/{KEY}",
        "/",
    ],
)
def test_path_tricks_are_rejected(server: CacheServer, tmp_path: Path, path: str) -> None:
    assert _send(server, "GET", path)[0] == 400
    assert _send(server, "PUT", path, body=RECORD)[0] == 400
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


def test_client_refuses_keys_that_are_paths(server: CacheServer) -> None:
    remote = HTTPRemote(server.url, TOKEN)
    for key in ("../../etc/passwd", "/etc/passwd", KEY + "/..", ""):
        with pytest.raises(ValueError, match="not a cache key"):
            remote.get(key)


def test_oversize_put_is_rejected(server: CacheServer, tmp_path: Path) -> None:
    big = Record(key=KEY, text="x" * 10_000, request={}).to_bytes()
    status, _ = _send(server, "PUT", f"/{NAMESPACE}/{KEY}", body=big)
    assert status == 413
    assert not (tmp_path / "root" / NAMESPACE / KEY).exists()


def test_put_of_something_else_is_rejected(server: CacheServer) -> None:
    path = f"/{NAMESPACE}/{KEY}"
    assert _send(server, "PUT", path, body=b"not json")[0] == 422
    other = Record(key="f" * 32, text="t", request={}).to_bytes()
    assert _send(server, "PUT", path, body=other)[0] == 422
    assert _send(server, "DELETE", path)[0] == 405


def test_a_record_whose_request_does_not_hash_to_the_key_is_refused(
    server: CacheServer, tmp_path: Path
) -> None:
    """A real record of another request, its key field edited to the key in the path:
    the server recomputes the hash and refuses it (clients would too, on read)."""
    forged = Record(key=KEY, text="Lyon", request={"q": 2}).to_bytes()
    assert _send(server, "PUT", f"/{NAMESPACE}/{KEY}", body=forged)[0] == 422
    assert not (tmp_path / "root" / NAMESPACE / KEY).exists()
    assert _send(server, "PUT", f"/{NAMESPACE}/{KEY}", body=RECORD)[0] == 201


def test_token_never_logged(
    server: CacheServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    path = f"/{NAMESPACE}/{KEY}"
    _send(server, "GET", path)
    _send(server, "PUT", path, body=RECORD)
    _send(server, "GET", path)
    _send(server, "GET", path, token=TOKEN + "-typo")
    _send(server, "GET", "/../x")
    remote = HTTPRemote(server.url, TOKEN)
    assert remote.get(KEY) == RECORD
    bad = HTTPRemote(server.url, "guess-" + TOKEN)
    with pytest.raises(RemoteError, match="HTTP 401") as denied:
        bad.get(KEY)
    remote.close()
    bad.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("hit" in m for m in messages) and any("miss" in m for m in messages)
    assert any("denied" in m for m in messages)
    assert TOKEN not in caplog.text
    assert TOKEN not in str(denied.value)


READER, WRITER2 = "read-only-4f1c", "second-writer-77aa"


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[CacheServer]:
    with CacheServer(tmp_path / "root", [TOKEN, WRITER2], read_tokens=[READER]) as running:
        yield running


def test_a_read_token_reads_and_gets_403_on_write(shared: CacheServer, tmp_path: Path) -> None:
    path = f"/{NAMESPACE}/{KEY}"
    assert _send(shared, "PUT", path, token=READER, body=RECORD)[0] == 403
    assert not (tmp_path / "root" / NAMESPACE / KEY).exists()
    assert _send(shared, "PUT", path, token=WRITER2, body=RECORD)[0] == 201
    assert _send(shared, "GET", path, token=READER) == (200, RECORD)
    assert _send(shared, "HEAD", path, token=READER)[0] == 200
    assert _send(shared, "GET", path, token=TOKEN) == (200, RECORD)
    for wrong in (None, "", "nope", READER + "x", TOKEN[:-1]):
        assert _send(shared, "GET", path, token=wrong)[0] == 401
        assert _send(shared, "PUT", path, token=wrong, body=RECORD)[0] == 401


def test_a_client_with_a_read_token_keeps_reading_and_stops_pushing(
    shared: CacheServer, caplog: pytest.LogCaptureFixture
) -> None:
    from synthc.cache.pusher import Tier

    writer = HTTPRemote(shared.url, TOKEN)
    writer.put(KEY, RECORD)
    writer.close()
    other = node_key("llm", {"q": 2})
    tier = Tier(HTTPRemote(shared.url, READER))
    try:
        with caplog.at_level(logging.WARNING):
            record = Record(key=other, text="x", request={"q": 2}).to_bytes()
            assert tier.store(other, record) is False
            assert tier.store(other, b"{}") is False  # not tried again: no second refusal
            assert tier.fetch(KEY) == RECORD and tier.has(KEY)  # reads go on
    finally:
        tier.remote.close()
    assert not tier.down
    warned = [r.getMessage() for r in caplog.records if r.name == "synthc.cache"]
    assert len(warned) == 1 and "only read" in warned[0]
    assert "a read-only token" in caplog.text  # the server's log says why it refused
    assert READER not in caplog.text and TOKEN not in caplog.text  # no token is logged


def test_the_token_file_names_readers_and_writers(tmp_path: Path) -> None:
    from synthc.cache.server import Tokens, read_token_file

    good = tmp_path / "tokens"
    good.write_text("# team\nwrite alice-token\n\nread ci-token\nread laptop-token\n")
    assert read_token_file(good) == Tokens(("alice-token",), ("ci-token", "laptop-token"))
    bad = tmp_path / "bad"
    bad.write_text("write a\nadmin b\n")
    with pytest.raises(ValueError, match=r"bad:2: expected 'read TOKEN' or 'write TOKEN'"):
        read_token_file(bad)
