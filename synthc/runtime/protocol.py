"""The neutral request and completion types every backend translates to and from.

The runtime hands a backend a batch of :class:`Request` objects and gets back,
in the same order, one :class:`Completion` or :class:`RequestFailure` each.
Concurrency, rate limits and retries live in the runtime, not in backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Request:
    """One chat request, fully rendered.

    ``params`` holds the output-affecting generation parameters in oumi's names
    (``max_new_tokens``, ``temperature``, ``top_p``, ``stop_strings``, ``seed``,
    ``frequency_penalty``, ``presence_penalty``, ...); ``None`` values are absent.
    ``seed`` is the node's draw seed, or ``None`` at temperature 0.
    """

    model: str
    messages: tuple[Message, ...]
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    model: str = ""  # the model the provider says answered
    usage: Usage = Usage()
    finish_reason: str | None = None
    latency: float = 0.0  # seconds, set by the runtime


@dataclass(frozen=True)
class RequestFailure:
    """A request that did not produce a completion.

    ``retryable`` failures (429, 5xx, connection errors, timeouts) are retried by
    the runtime, after ``retry_after`` seconds when the provider said so.
    """

    message: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None


Outcome = Completion | RequestFailure


class Backend(Protocol):
    """What the runtime needs from an inference engine.

    ``max_batch`` is how many requests one ``generate`` call takes: 1 for HTTP
    APIs (the runtime runs many calls concurrently), larger for batch engines
    that want every ready request at once.
    """

    max_batch: int

    async def generate(self, requests: Sequence[Request]) -> list[Outcome]: ...

    async def aclose(self) -> None: ...
