"""Answer OpenAI chat-completions and Anthropic messages requests over real HTTP, offline.

``FakeLLMServer`` is an aiohttp server on 127.0.0.1 for tests and for trying
configs without a provider (like httpx's ``MockTransport``, but a real socket,
so the official SDKs work against it too):

    with FakeLLMServer(latency=0.01) as srv:
        url = srv.url("/v1/chat/completions")   # or srv.url("/v1/messages")
        ...
        assert srv.count == 3

Replies are deterministic: the same body gets the same reply, and a different
seed or temperature a different one. By default (:func:`default_turn`):

- a request that offers ``tools`` gets one tool call (OpenAI: ``message.tool_calls``,
  ``content`` null, ``finish_reason "tool_calls"``; Anthropic: a ``tool_use`` block,
  ``stop_reason "tool_use"``), the tool picked by the request's hash and its
  arguments valid against the tool's parameters schema, until a tool result
  (a ``tool`` message, a ``tool_result`` block) follows the user's last message;
  ``tool_choice`` "none" / a named tool / "required" are honoured;
- a structured-output request (OpenAI ``response_format`` ``json_schema``,
  Anthropic ``output_config.format``) gets JSON text valid against the schema;
- a multiturn planner's request without a schema ("Plan a 4-turn conversation."
  opening a user message, as a model told to output only the JSON answers it) gets
  a plan, ``{"turns": [{"turn": 1, "instruction": "turn 1 #<hash>"}, ...]}``;
- anything else gets ``reply to: <last user text> #<hash>``.

``reply`` replaces that: a hook ``reply(body: dict) -> str | dict`` given the
parsed request body. A ``str`` is the reply text. A ``dict`` is an assistant
turn, rendered in the provider's wire format::

    {"content": "optional text",
     "tool_calls": [{"name": "get_patient", "arguments": {"patient_id": "P001"},
                     "id": "optional; derived from the request otherwise"}]}

``arguments`` may also be JSON text (sent as-is to OpenAI clients, so a test
can send broken JSON). A hook answer the server cannot send is a 500 whose
message starts ``reply hook:``. ``faults`` injects failures (HTTP errors with
``Retry-After``, connection resets, delays); ``max_in_flight`` answers 429 to a
request that arrives while that many are being answered, as a concurrency
limit does (``throttled`` counts them). Requests must pair tool results
with the calls before them as the real APIs insist (else a 400 with the real
message). The server records request bodies, arrival times and the peak number
of requests in flight, so tests can check what a client sent and how fast.

The same server speaks both providers' batch APIs (:mod:`synthc.testing.batches`:
OpenAI's files and batches, Anthropic's message batches) with time compressed to
``batch_seconds``; a batch's line is answered exactly as the same body online,
faults included, and counts as a request.

As a script it serves until killed and prints the bound port on stdout:

    python -m synthc.testing.server --port 0 --latency 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from synthc.cache.appserver import AppServer
from synthc.testing._wire import ANTHROPIC, OPENAI, Dialect, as_turn, default_turn
from synthc.testing.batches import BatchDesk, ExpireHook

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


@dataclass(frozen=True)
class Fault:
    """A failure to inject instead of (or before) a normal reply.

    ``status``: answer with this HTTP status and ``body`` (a dict is sent as
    JSON; the default is a provider-style error). ``retry_after`` becomes the
    ``Retry-After`` header. ``reset``: drop the connection without answering.
    ``delay``: extra seconds before answering (with no ``status``, then a
    normal reply follows).
    """

    status: int | None = None
    body: str | dict[str, Any] | None = None
    retry_after: float | str | None = None
    reset: bool = False
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


FaultHook = Callable[[dict[str, Any], int], "Fault | None"]
ReplyHook = Callable[[dict[str, Any]], "str | dict[str, Any]"]


class _Stats:
    """Counters shared with the test's thread; every access holds the lock."""

    def __init__(self, record: bool):
        self.lock = threading.Lock()
        self.record = record
        self.count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []

    def arrive(self, body: dict[str, Any]) -> int:
        with self.lock:
            index = self.count
            self.count += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.record:
                self.requests.append(body)
                self.arrivals.append(time.monotonic())
            return index

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


def _json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class FakeLLMServer(AppServer):
    """A local LLM API server; in a background thread (``with``) or in the caller's loop."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        reply: ReplyHook | None = None,
        faults: FaultHook | None = None,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        batch_seconds: float = 0.2,
        expire: ExpireHook | None = None,
        max_in_flight: int | None = None,
    ):
        super().__init__(host, port)
        self.latency = latency
        self.reply: ReplyHook = reply or default_turn
        self.faults = faults
        self.api_key = api_key
        self.max_in_flight = max_in_flight  # more at once get a 429, as concurrency limits do
        self.throttled = 0  # requests answered 429 for exceeding max_in_flight
        self._stats = _Stats(record)
        self.batches = BatchDesk(
            self._batch_line,
            batch_seconds=batch_seconds,
            expire=expire,
            base_url=self.url,
            authorized=lambda request, dialect: (
                not self.api_key or dialect.authorized(request, self.api_key)
            ),
        )

    def url(self, path: str = "") -> str:
        """``http://127.0.0.1:<port><path>``, e.g. ``srv.url("/v1/chat/completions")``."""
        return f"http://{self.host}:{self.port}{path}"

    @property
    def count(self) -> int:
        """Requests received so far (including rejected and faulted ones)."""
        with self._stats.lock:
            return self._stats.count

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The parsed JSON bodies received, in arrival order."""
        with self._stats.lock:
            return list(self._stats.requests)

    @property
    def arrivals(self) -> list[float]:
        """``time.monotonic()`` at each request's arrival, in order."""
        with self._stats.lock:
            return list(self._stats.arrivals)

    @property
    def max_concurrency(self) -> int:
        """The most requests that were being answered at the same moment."""
        with self._stats.lock:
            return self._stats.max_in_flight

    def reset(self) -> None:
        """Forget every request seen so far."""
        self._stats = _Stats(self._stats.record)

    # --- serving -------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(OPENAI_PATH, self._openai)
        app.router.add_post(ANTHROPIC_PATH, self._anthropic)
        self.batches.routes(app)
        return app

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, OPENAI)

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, ANTHROPIC)

    async def _handle(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _json_response(400, dialect.error(400, "request body is not valid JSON"))
        if not isinstance(body, dict):
            return _json_response(400, dialect.error(400, "request body must be a JSON object"))
        stats = self._stats  # reset() may swap it while this request is in flight
        index = stats.arrive(body)
        try:
            return await self._answer(request, dialect, body, index)
        finally:
            stats.leave()

    async def _answer(
        self, request: web.Request, dialect: Dialect, body: dict[str, Any], index: int
    ) -> web.StreamResponse:
        if self.api_key and not dialect.authorized(request, self.api_key):
            return _json_response(401, dialect.error(401, "invalid API key"))
        refused = _refusal(dialect, body)
        if refused is not None:
            return _json_response(*refused)
        if self.max_in_flight is not None and self._stats.in_flight > self.max_in_flight:
            self.throttled += 1
            message = f"too many requests in flight (at most {self.max_in_flight})"
            return _json_response(429, dialect.error(429, message))
        fault = self.faults(body, index) if self.faults else None
        delay = self.latency + (fault.delay if fault else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is not None and (fault.reset or fault.status is not None):
            return _fault_response(request, dialect, fault)
        return _json_response(*self._reply(dialect, body, index))

    def _reply(self, dialect: Dialect, body: dict[str, Any], index: int) -> tuple[int, Any]:
        try:
            return 200, dialect.reply(body, as_turn(self.reply(body)), index)
        except ValueError as exc:  # a ReplyError, or a schema the default reply cannot fill
            return 500, dialect.error(500, f"reply hook: {exc}")

    def _batch_line(self, dialect: Dialect, body: dict[str, Any]) -> tuple[int, Any]:
        """A batch's line answered as the same body online would be (faults as statuses)."""
        stats = self._stats
        index = stats.arrive(body)
        try:
            refused = _refusal(dialect, body)
            if refused is not None:
                return refused
            fault = self.faults(body, index) if self.faults else None
            if fault is not None and (fault.reset or fault.status is not None):
                status = fault.status or 500
                error = fault.body if isinstance(fault.body, dict) else None
                return status, error or dialect.error(status, f"fault {status}")
            return self._reply(dialect, body, index)
        finally:
            stats.leave()

    async def __aenter__(self) -> FakeLLMServer:
        await self.start_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()


def _refusal(dialect: Dialect, body: dict[str, Any]) -> tuple[int, Any] | None:
    """The 400 the API gives a body it does not accept, or None."""
    missing = [name for name in dialect.required if name not in body]
    if missing or not isinstance(body["messages"], list):
        problem = f"{missing[0]}: Field required" if missing else "messages: must be a list"
        return 400, dialect.error(400, problem)
    invalid = dialect.check(body)
    if invalid is not None:
        return 400, dialect.error(400, invalid)
    return None


def _fault_response(request: web.Request, dialect: Dialect, fault: Fault) -> web.StreamResponse:
    if fault.reset:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)
    status = fault.status or 500
    headers = dict(fault.headers)
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    if isinstance(fault.body, str):
        return web.Response(text=fault.body, status=status, headers=headers)
    payload = fault.body if fault.body is not None else dialect.error(status, f"fault {status}")
    return _json_response(status, payload, headers)


def main(argv: list[str] | None = None) -> None:
    """Serve until killed; print the bound port on stdout first."""
    parser = argparse.ArgumentParser(prog="python -m synthc.testing.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per reply")
    parser.add_argument("--api-key", default=None, help="require this key")
    args = parser.parse_args(argv)
    server = FakeLLMServer(
        latency=args.latency, api_key=args.api_key, host=args.host, port=args.port, record=False
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(server))


async def _serve_forever(server: FakeLLMServer) -> None:
    await server.start_async()
    sys.stdout.write(f"{server.port}\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop_async()


if __name__ == "__main__":
    main()
