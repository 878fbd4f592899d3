"""Put a fixed delay in front of a loopback HTTP server: a target URL in, a slower URL out.

``SlowProxy`` forwards every request (method, path, headers, body) to ``target``
after sleeping ``delay`` seconds, and passes the answer back, so a test or a
benchmark can give ``synthc cache serve`` (or any server) the round trip of a
remote cache across a network without touching the server:

    with CacheServer(root, token) as cache, SlowProxy(cache.url, delay=0.05) as slow:
        ...  # point --remote-cache at slow.url
        assert slow.count == 120 and slow.max_concurrency > 1

Requests are served concurrently; the proxy counts them and records the peak
number in flight.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

import aiohttp
from aiohttp import web

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class SlowProxy:
    """A forwarding server on 127.0.0.1 that answers each request ``delay`` seconds late."""

    def __init__(self, target: str, delay: float, *, host: str = "127.0.0.1", port: int = 0):
        self.target = target.rstrip("/")
        self.delay = delay
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._count = 0
        self._in_flight = 0
        self._peak = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
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

    async def _forward(self, request: web.Request) -> web.Response:
        with self._lock:
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

    async def _start_async(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        sockets = getattr(getattr(site, "_server", None), "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def _stop_async(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def start(self) -> SlowProxy:
        """Serve from a background thread with its own event loop; returns once bound."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_async())
            except BaseException as exc:
                failure.append(exc)
            ready.set()
            if not failure:
                loop.run_forever()
            loop.run_until_complete(self._stop_async())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="SlowProxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop = self._thread = None

    def __enter__(self) -> SlowProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
