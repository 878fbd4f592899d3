"""Submit, poll and collect provider batches through the official SDKs: requests in, outcomes out.

OpenAI's Batch API (a JSONL file uploaded to ``/v1/files``, then ``/v1/batches``;
OpenAI-compatible servers that speak it too) and Anthropic's Message Batches
(``/v1/messages/batches``). Each line's body is exactly what the online backend
would send for the same :class:`~synthc.core.messages.Request`, and each result is
parsed by that backend, so a batch answer and an online answer are the same node.

A :class:`BatchClient` knows nothing of nodes or the cache: it submits
``(custom_id, request)`` pairs, reports the batch's state, and returns per
custom_id an :class:`~synthc.core.messages.Outcome` (a completion, or the line's
own failure) or ``None`` for a line the provider did not run (the batch expired
or was cancelled first): those are for the caller to submit again.

Each batch is submitted under an *intent* id the caller records first; ``find``
looks a batch up by it, for a caller that crashed before it learned the
provider's id (OpenAI keeps it as the batch's metadata; Anthropic's batches have
none, so there the one unknown batch of the intent's size made since is taken).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthc.compiler.engines import Engine
from synthc.core.errors import EngineError
from synthc.core.messages import Outcome, Request, RequestFailure
from synthc.runtime.backends._http import RETRYABLE_STATUS, HttpBackend
from synthc.runtime.config import EndpointConfig
from synthc.runtime.protocol import Backend

try:
    import anthropic
    import openai
except ImportError as exc:  # pragma: no cover - the extra is installed in CI
    missing = f"batches need the providers' SDKs ({exc.name}): pip install 'synthc[batch]'"
    raise EngineError(missing) from exc

OPENAI_LIMITS = (50_000, 200 * 2**20)  # requests and bytes per batch input file
ANTHROPIC_LIMITS = (100_000, 256 * 2**20)  # requests and bytes per message batch
RETRYABLE_ERRORS = ("rate_limit_error", "overloaded_error", "api_error")  # Anthropic's types
INTENT = "synthc_intent"  # the metadata field naming an OpenAI batch's intent
CLOCK_SLACK = 600.0  # seconds: a batch found by ``find`` may predate its intent by this much


@dataclass(frozen=True)
class BatchState:
    """Where a batch is: ``ended`` once its results can be collected (completed, expired
    or cancelled); ``refused`` says why the provider failed the batch as a whole."""

    id: str
    status: str  # the provider's own word
    ended: bool
    refused: str | None = None


class BatchClient:
    """One provider's batch endpoints, speaking for one online backend."""

    max_requests: int
    max_bytes: int

    def __init__(self, backend: HttpBackend):
        self.backend = backend

    def line_size(self, custom_id: str, request: Request) -> int:
        """Bytes ``request`` adds to a batch (for cutting batches within the limits)."""
        return len(json.dumps(self.backend.build_body(request))) + len(custom_id) + 80

    async def submit(self, items: Sequence[tuple[str, Request]], intent: str) -> str:
        raise NotImplementedError

    async def find(self, intent: str, since: float, size: int, known: set[str]) -> str | None:
        """The id of the batch submitted for ``intent`` (``size`` lines, at ``since``),
        if the provider has one; ``known`` ids are other intents' batches."""
        raise NotImplementedError

    async def state(self, batch_id: str) -> BatchState:
        raise NotImplementedError

    async def results(self, batch_id: str) -> dict[str, Outcome | None]:
        raise NotImplementedError

    async def cancel(self, batch_id: str) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.backend.aclose()


class OpenAIBatches(BatchClient):
    max_requests, max_bytes = OPENAI_LIMITS

    def __init__(self, backend: HttpBackend, base_url: str, api_key: str | None):
        super().__init__(backend)
        self._sdk = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "unused")

    async def submit(self, items: Sequence[tuple[str, Request]], intent: str) -> str:
        lines = (
            {
                "custom_id": custom_id,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": self.backend.build_body(request),
            }
            for custom_id, request in items
        )
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        try:
            uploaded = await self._sdk.files.create(file=("synthc.jsonl", data), purpose="batch")
            batch = await self._sdk.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={INTENT: intent},
            )
        except openai.APIError as exc:
            raise EngineError(f"the batch could not be submitted: {exc.message}") from None
        return batch.id

    async def find(self, intent: str, since: float, size: int, known: set[str]) -> str | None:
        async for batch in self._sdk.batches.list(limit=100):
            if (batch.metadata or {}).get(INTENT) == intent:
                return batch.id
            if batch.created_at < since - CLOCK_SLACK:
                break  # newest first: the rest are older than the intent
        return None

    async def state(self, batch_id: str) -> BatchState:
        batch = await self._sdk.batches.retrieve(batch_id)
        refused = None
        if batch.status == "failed":
            problems = batch.errors.data if batch.errors and batch.errors.data else []
            refused = "; ".join(
                f"{p.message} (line {p.line})" if p.line else str(p.message) for p in problems
            )
            refused = refused or "the provider failed the batch"
        ended = batch.status in ("completed", "expired", "cancelled", "failed")
        return BatchState(batch.id, batch.status, ended, refused)

    async def results(self, batch_id: str) -> dict[str, Outcome | None]:
        batch = await self._sdk.batches.retrieve(batch_id)
        found: dict[str, Outcome | None] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id is None:
                continue
            text = (await self._sdk.files.content(file_id)).text
            for raw in text.splitlines():
                entry = json.loads(raw)
                found[entry["custom_id"]] = self._outcome(entry)
        return found

    def _outcome(self, entry: dict[str, Any]) -> Outcome | None:
        response = entry.get("response")
        if not isinstance(response, dict):
            return None  # not run: expired (or cancelled) before its turn
        status, body = response.get("status_code"), response.get("body")
        if status == 200 and isinstance(body, dict):
            return self.backend.parse_reply(body)
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message") if isinstance(error, dict) else str(error)
        code = status if isinstance(status, int) else 0
        retryable = code in RETRYABLE_STATUS or code >= 500
        return RequestFailure(f"HTTP {code}: {message}", retryable, code or None)

    async def cancel(self, batch_id: str) -> None:
        await self._sdk.batches.cancel(batch_id)

    async def aclose(self) -> None:
        await self._sdk.close()
        await super().aclose()


class AnthropicBatches(BatchClient):
    max_requests, max_bytes = ANTHROPIC_LIMITS

    def __init__(self, backend: HttpBackend, base_url: str, api_key: str | None):
        super().__init__(backend)
        self._sdk = anthropic.AsyncAnthropic(base_url=base_url, api_key=api_key or "unused")

    async def submit(self, items: Sequence[tuple[str, Request]], intent: str) -> str:
        requests: Any = [
            {"custom_id": custom_id, "params": self.backend.build_body(request)}
            for custom_id, request in items
        ]
        try:
            batch = await self._sdk.messages.batches.create(requests=requests)
        except anthropic.APIError as exc:
            raise EngineError(f"the batch could not be submitted: {exc.message}") from None
        return batch.id

    async def find(self, intent: str, since: float, size: int, known: set[str]) -> str | None:
        candidates = []
        async for batch in self._sdk.messages.batches.list(limit=100):
            made = batch.created_at.timestamp()
            if made < since - CLOCK_SLACK:
                break
            counts = batch.request_counts
            lines = (
                counts.processing + counts.succeeded + counts.errored + counts.canceled
            ) + counts.expired
            if lines == size and made >= since - CLOCK_SLACK and batch.id not in known:
                candidates.append(batch.id)
        return candidates[0] if len(candidates) == 1 else None

    async def state(self, batch_id: str) -> BatchState:
        batch = await self._sdk.messages.batches.retrieve(batch_id)
        return BatchState(batch.id, batch.processing_status, batch.processing_status == "ended")

    async def results(self, batch_id: str) -> dict[str, Outcome | None]:
        found: dict[str, Outcome | None] = {}
        async for item in await self._sdk.messages.batches.results(batch_id):
            result = item.result
            if result.type == "succeeded":
                found[item.custom_id] = self.backend.parse_reply(result.message.model_dump())
            elif result.type == "errored":
                error = result.error.error
                retryable = error.type in RETRYABLE_ERRORS
                found[item.custom_id] = RequestFailure(f"{error.type}: {error.message}", retryable)
            else:  # expired or canceled: not run
                found[item.custom_id] = None
        return found

    async def cancel(self, batch_id: str) -> None:
        await self._sdk.messages.batches.cancel(batch_id)

    async def aclose(self) -> None:
        await self._sdk.close()
        await super().aclose()


def batch_client(backend: Backend, endpoint: EndpointConfig) -> BatchClient:
    """The batch client for ``endpoint``'s engine (``backend`` is its online backend), at
    its ``api_url`` less the route: ``.../v1/chat/completions`` → ``.../v1`` for OpenAI
    and compatible servers, ``.../v1/messages`` → ``...`` for Anthropic."""
    if not isinstance(backend, HttpBackend):
        raise EngineError(f"engine {endpoint.engine} has no batch API: batches are for HTTP APIs")
    url = (endpoint.api_url or "").rstrip("/")
    if endpoint.engine is Engine.ANTHROPIC:
        if not url.endswith("/v1/messages"):
            raise EngineError(f"batches need an api_url ending in /v1/messages, not {url!r}")
        return AnthropicBatches(backend, url.removesuffix("/v1/messages"), endpoint.api_key)
    if not url.endswith("/chat/completions"):
        raise EngineError(f"batches need an api_url ending in /chat/completions, not {url!r}")
    return OpenAIBatches(backend, url.removesuffix("/chat/completions"), endpoint.api_key)
