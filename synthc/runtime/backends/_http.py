"""Send one JSON POST over a shared aiohttp session and turn the reply into a dict or a failure.

What the HTTP backends share: one lazily opened ``ClientSession`` with a
keep-alive connection pool, and one mapping from HTTP trouble to
:class:`RequestFailure`:

    429, 408, 409, 5xx (incl. 529)   retryable, with ``retry_after`` from the headers
    connection error, timeout        retryable
    2xx whose body is not JSON       retryable (a proxy or a server mid-restart)
    any other 4xx                    not retryable; the provider's message, truncated

A provider's message may quote the API key back ("Incorrect API key provided:
sk-..."); every secret header value is replaced by ``[redacted]`` in failures.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from synthc.core.messages import Outcome, Request, RequestFailure

RETRYABLE_STATUS = frozenset({408, 409, 429})
SYSTEMIC_STATUS = frozenset({401, 403, 404})  # every request to the endpoint gets the same
MAX_MESSAGE = 300  # characters of a provider's error text kept in a failure message
SECRET_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")
REDACTED = "[redacted]"


class HttpClient:
    """A keep-alive connection pool to one endpoint; opened on first use, inside the loop."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float, connections: int):
        self.url = url
        self._headers = {"Content-Type": "application/json", **headers}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._secrets = _secrets(headers)

    def __repr__(self) -> str:  # headers hold the API key: never show them
        return f"HttpClient(url={self.url!r})"

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._connections, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector, headers=self._headers, timeout=self._timeout
        )
        return self._session

    async def post_json(self, body: dict[str, Any]) -> dict[str, Any] | RequestFailure:
        """POST ``body``; the parsed JSON reply, or the failure it amounts to (no secrets in it)."""
        reply = await self._post(body)
        if isinstance(reply, RequestFailure) and self._secrets:
            message = reply.message
            for secret in self._secrets:
                message = message.replace(secret, REDACTED)
            reply = dataclasses.replace(reply, message=message)
        return reply

    async def _post(self, body: dict[str, Any]) -> dict[str, Any] | RequestFailure:
        session = self._session or self._open()
        data = orjson.dumps(body)
        try:
            async with session.post(self.url, data=data) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except aiohttp.ClientConnectorError as exc:  # refused, or no such host: every request
            return RequestFailure(_describe(exc), retryable=True, systemic=True)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return RequestFailure(_describe(exc), retryable=True)
        if status >= 300:
            return http_failure(status, headers, raw)
        try:
            parsed = orjson.loads(raw)
        except ValueError:
            return RequestFailure(f"HTTP {status}: reply is not JSON", True, status)
        if not isinstance(parsed, dict):
            return RequestFailure(f"HTTP {status}: reply is not a JSON object", True, status)
        return parsed

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _secrets(headers: dict[str, str]) -> list[str]:
    """The secret values in ``headers`` (a bearer token without its ``Bearer``), longest first."""
    found = set()
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS and value:
            found.add(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() == "bearer":
                found.add(token)
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "request timed out"
    text = str(exc) or type(exc).__name__
    return f"connection error: {text[:MAX_MESSAGE]}"


def http_failure(status: int, headers: CIMultiDictProxy[str], raw: bytes) -> RequestFailure:
    """The failure an HTTP error status amounts to."""
    retryable = status in RETRYABLE_STATUS or status >= 500
    message = f"HTTP {status}: {error_text(raw)}"
    after = parse_retry_after(headers) if retryable else None
    return RequestFailure(message, retryable, status, after, systemic=status in SYSTEMIC_STATUS)


def error_text(raw: bytes) -> str:
    """The provider's own error message if the body has one, else the body, truncated."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text[:MAX_MESSAGE] or "(empty body)"
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])[:MAX_MESSAGE]
    if isinstance(err, str):
        return err[:MAX_MESSAGE]
    return text[:MAX_MESSAGE]


def parse_retry_after(headers: CIMultiDictProxy[str] | dict[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP-date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = _number(millis)
        if seconds is not None:
            return seconds / 1000.0
    value = headers.get("Retry-After")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class HttpBackend:
    """What every HTTP backend shares: one request per round trip over ``self._http``;
    subclasses say how a request becomes a body and a reply becomes an outcome."""

    max_batch = 1
    _http: HttpClient

    def build_body(self, request: Request) -> dict[str, Any]:
        raise NotImplementedError

    def parse_reply(self, reply: dict[str, Any]) -> Outcome:
        raise NotImplementedError

    async def generate(self, requests: Sequence[Request]) -> list[Outcome]:
        if len(requests) == 1:
            return [await self.send(requests[0])]
        return list(await asyncio.gather(*(self.send(r) for r in requests)))

    async def send(self, request: Request) -> Outcome:
        """One request, one HTTP round trip."""
        reply = await self._http.post_json(self.build_body(request))
        if isinstance(reply, RequestFailure):
            return reply
        return self.parse_reply(reply)

    async def aclose(self) -> None:
        await self._http.aclose()


def as_int(value: Any) -> int:
    """A token count from a reply's usage, 0 when absent or not an integer."""
    return value if isinstance(value, int) else 0


def closed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with ``additionalProperties: false`` on every object schema that sets none,
    as strict structured outputs require."""
    out = copy.deepcopy(schema)
    stack: list[Any] = [out]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "object":
                node.setdefault("additionalProperties", False)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out
