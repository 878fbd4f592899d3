"""Serve a cache directory over HTTP: a directory and a token in, GET/HEAD/PUT of records out.

``synthc cache serve DIR`` keeps one file per record at ``DIR/<namespace>/<key>``
(the layout of a shared-directory remote, so the same directory can be served,
mounted, or handed to nginx). Every request must carry ``Authorization: Bearer
<token>``; anything else is a 401 that reveals nothing. Paths other than
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
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from synthc.cache.appserver import AppServer
from synthc.cache.remote import atomic_write
from synthc.core.records import Record

PATH_RE = re.compile(r"/(?P<namespace>v[0-9]{1,4})/(?P<key>[0-9a-f]{32})")
DEFAULT_MAX_SIZE = 4 * 1024 * 1024
# what binding to a --host that is not this machine's may raise: no such name, an address
# out of range, a name IDNA cannot encode, a NUL in it
LISTEN_ERRORS = (OSError, ValueError, OverflowError)
log = logging.getLogger("synthc.cache.server")


class CacheApp:
    """The request handler: authentication, path checks, then files on disk."""

    def __init__(self, root: Path, token: str | None, max_size: int = DEFAULT_MAX_SIZE):
        self.root = root
        self.max_size = max_size
        self._expected = f"Bearer {token}".encode() if token else None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_size)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        who = request.remote or "?"
        if not self._authorized(request):
            log.warning(
                "denied %s %r from %s: missing or wrong token", request.method, _path(request), who
            )
            return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="synthc"'})
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

    def _authorized(self, request: web.Request) -> bool:
        if self._expected is None:
            return True
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self._expected)

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
        if not _is_record_of(body, key):
            log.warning("rejected PUT %s from %s: not a record of that key", name, who)
            return web.Response(status=422, text="the body is not a record filed under this key\n")
        await asyncio.get_running_loop().run_in_executor(None, atomic_write, file, body)
        log.info("PUT %s stored (%d bytes) from %s", name, len(body), who)
        return web.Response(status=201)


def _is_record_of(body: bytes, key: str) -> bool:
    """Whether ``body`` is a record this synthc reads whose request hashes to ``key``."""
    try:
        return Record.from_bytes(body).hashes_to(key)
    except (ValueError, TypeError, KeyError, RecursionError):
        return False


def _path(request: web.Request) -> str:
    return request.raw_path[:200]


class CacheServer(AppServer):
    """``CacheApp`` on a TCP port, from a background thread (``with``) or in the caller's loop."""

    def __init__(
        self,
        root: Path,
        token: str | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_size: int = DEFAULT_MAX_SIZE,
    ):
        super().__init__(host, port)
        self.handler = CacheApp(root, token, max_size)

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
