"""Serve a cache directory over HTTP: a directory and a token in, GET/HEAD/PUT of records out.

``synthc cache serve DIR`` keeps one file per record at ``DIR/<namespace>/<key>``
(the layout of a shared-directory remote, so the same directory can be served,
mounted, or handed to nginx). Every request must carry ``Authorization: Bearer
<token>`` with one of the server's tokens (compared in constant time, every one
of them each time); anything else is a 401 that reveals nothing. A read token
may GET and HEAD; a PUT with it is a 403. Paths other than
``/<namespace>/<key>`` (``..``, absolute paths, encoded slashes) are a 400,
bodies over ``max_size`` a 413, and a PUT whose body is not a record whose
request hashes to the key in the path a 422 (the server recomputes the hash: a
record copied under another key, with its ``key`` field edited, is refused).
Writes are atomic (temporary file, then rename). Each request is logged as a
hit, miss, store or denial; the token never is.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from synthc.cache.appserver import AppServer
from synthc.cache.remote import atomic_write
from synthc.core.records import is_record_of

PATH_RE = re.compile(r"/(?P<namespace>v[0-9]{1,4})/(?P<key>[0-9a-f]{32})")
DEFAULT_MAX_SIZE = 4 * 1024 * 1024
# what binding to a --host that is not this machine's may raise: no such name, an address
# out of range, a name IDNA cannot encode, a NUL in it
LISTEN_ERRORS = (OSError, ValueError, OverflowError)
log = logging.getLogger("synthc.cache.server")


@dataclass(frozen=True)
class Tokens:
    """Who may do what: bearer tokens that may read and write, and tokens that may only
    read. None of either: anyone may do anything (``--no-token``, a trusted network)."""

    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()

    @classmethod
    def of(cls, write: str | Iterable[str] | None, read: Iterable[str] = ()) -> Tokens:
        writers = (write,) if isinstance(write, str) else tuple(write or ())
        return cls(tuple(t for t in writers if t), tuple(t for t in read if t))

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.write + other.write, self.read + other.read)

    @property
    def open(self) -> bool:
        return not (self.write or self.read)


def read_token_file(path: Path) -> Tokens:
    """Tokens from ``path``: a line ``write TOKEN`` or ``read TOKEN`` each (blank lines and
    ``#`` comments aside); ValueError naming the line of anything else."""
    write: list[str] = []
    read: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2 or words[0] not in ("read", "write"):
            raise ValueError(f"{path}:{n}: expected 'read TOKEN' or 'write TOKEN'")
        (write if words[0] == "write" else read).append(words[1])
    return Tokens(tuple(write), tuple(read))


class CacheApp:
    """The request handler: authentication, path checks, then files on disk."""

    def __init__(self, root: Path, tokens: Tokens, max_size: int = DEFAULT_MAX_SIZE):
        self.root = root
        self.max_size = max_size
        self._open = tokens.open
        self._expected = [(True, f"Bearer {t}".encode()) for t in tokens.write] + [
            (False, f"Bearer {t}".encode()) for t in tokens.read
        ]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_size)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        who = request.remote or "?"
        access = self._access(request)
        if access is None:
            log.warning(
                "denied %s %r from %s: missing or wrong token", request.method, _path(request), who
            )
            return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="synthc"'})
        if request.method not in ("GET", "HEAD") and access == "read":
            log.warning(
                "denied %s %r from %s: a read-only token", request.method, _path(request), who
            )
            return web.Response(status=403, text="this token may read, not write\n")
        match = PATH_RE.fullmatch(request.raw_path)
        if match is None:
            log.warning(
                "rejected %s %r from %s: not /<namespace>/<key>",
                request.method,
                _path(request),
                who,
            )
            return web.Response(status=400, text="expected /<namespace>/<32 hex digit key>\n")
        file = self.root / match["namespace"] / match["key"]
        name = f"{match['namespace']}/{match['key']}"
        if request.method in ("GET", "HEAD"):
            return self._read(request.method, file, name, who)
        if request.method == "PUT":
            return await self._write(request, file, match["key"], name, who)
        return web.Response(status=405, headers={"Allow": "GET, HEAD, PUT"})

    def _access(self, request: web.Request) -> str | None:
        """``"write"``, ``"read"`` or None (no such token), comparing the header with every
        token in constant time, so the time taken says nothing of which one came close."""
        if self._open:
            return "write"
        given = request.headers.get("Authorization", "").encode()
        found: str | None = None
        for writes, expected in self._expected:
            if hmac.compare_digest(given, expected) and found is None:
                found = "write" if writes else "read"
        return found

    def _read(self, method: str, file: Path, name: str, who: str) -> web.Response:
        try:
            data = file.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            log.info("%s %s miss from %s", method, name, who)
            return web.Response(status=404)
        log.info("%s %s hit (%d bytes) from %s", method, name, len(data), who)
        if method == "HEAD":
            return web.Response(status=200, headers={"Content-Length": str(len(data))})
        return web.Response(body=data, content_type="application/json")

    async def _write(
        self, request: web.Request, file: Path, key: str, name: str, who: str
    ) -> web.Response:
        if request.content_length is not None and request.content_length > self.max_size:
            log.warning("rejected PUT %s from %s: %d bytes", name, who, request.content_length)
            return web.Response(status=413, text=f"at most {self.max_size} bytes\n")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            log.warning("rejected PUT %s from %s: over %d bytes", name, who, self.max_size)
            return web.Response(status=413, text=f"at most {self.max_size} bytes\n")
        if not is_record_of(body, key):
            log.warning("rejected PUT %s from %s: not a record of that key", name, who)
            return web.Response(status=422, text="the body is not a record filed under this key\n")
        await asyncio.get_running_loop().run_in_executor(None, atomic_write, file, body)
        log.info("PUT %s stored (%d bytes) from %s", name, len(body), who)
        return web.Response(status=201)


def _path(request: web.Request) -> str:
    return request.raw_path[:200]


class CacheServer(AppServer):
    """``CacheApp`` on a TCP port, from a background thread (``with``) or in the caller's loop."""

    def __init__(
        self,
        root: Path,
        token: str | Iterable[str] | None,
        *,
        read_tokens: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        max_size: int = DEFAULT_MAX_SIZE,
    ):
        """``token``: what may read and write (one, several, or None); ``read_tokens``: what
        may only read. No token at all: open to anyone who can reach it."""
        super().__init__(host, port)
        self.handler = CacheApp(root, Tokens.of(token, read_tokens), max_size)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        return self.handler.app()


async def serve_forever(server: CacheServer, announce: Callable[[str], None]) -> None:
    """Run ``server`` in this loop until cancelled; ``announce(url)`` once it listens."""
    await server.start_async()
    try:
        announce(server.url)
        await asyncio.Event().wait()
    finally:
        await server.stop_async()
