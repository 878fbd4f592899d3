"""Put a fixed delay in front of a loopback HTTP server: a target URL in, a slower URL out.

``SlowProxy`` forwards every request (method, path, headers, body) to ``target``
after sleeping ``delay`` seconds, and passes the answer back, so a test or a
benchmark can give ``synthc cache serve`` (or any server) the round trip of a
remote cache across a network without touching the server:

    with CacheServer(root, token) as cache, SlowProxy(cache.url, delay=0.05) as slow:
        ...  # point --remote-cache at slow.url
        assert slow.count == 120 and slow.max_concurrency > 1

Requests are served concurrently; the proxy counts them, records the peak
number in flight, and when the first arrived and the last was answered
(``busy``: the seconds in between, the remote phase of a build).
"""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
from aiohttp import web

from synthc.cache.appserver import AppServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class SlowProxy(AppServer):
    """A forwarding server on 127.0.0.1 that answers each request ``delay`` seconds late."""

    def __init__(self, target: str, delay: float, *, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.target = target.rstrip("/")
        self.delay = delay
        self._lock = threading.Lock()
        self._count = 0
        self._in_flight = 0
        self._peak = 0
        self._first: float | None = None
        self._last: float | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return self._count

    @property
    def max_concurrency(self) -> int:
        """The most requests that were in flight at once."""
        with self._lock:
            return self._peak

    @property
    def busy(self) -> float:
        """Seconds from the first request's arrival to the last one's answer (0 before any)."""
        with self._lock:
            return 0.0 if self._first is None or self._last is None else self._last - self._first

    async def _forward(self, request: web.Request) -> web.Response:
        with self._lock:
            self._first = time.monotonic() if self._first is None else self._first
            self._count += 1
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
        try:
            await asyncio.sleep(self.delay)
            assert self._session is not None
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            body = await request.read()
            async with self._session.request(
                request.method, self.target + request.raw_path, headers=headers, data=body or None
            ) as answer:
                data = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                return web.Response(status=answer.status, body=data, headers=kept)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last = time.monotonic()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        return app

    async def start_async(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        await super().start_async()

    async def stop_async(self) -> None:
        await super().stop_async()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
