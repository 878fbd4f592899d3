"""The neutral request and completion types every layer speaks: messages, tool calls, requests,
completions and failures.

The runtime hands a backend a batch of :class:`Request` objects and gets back,
in the same order, one :class:`Completion` or :class:`RequestFailure` each;
planning builds requests and reads completions, the cache stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One function call a model asked for: the provider's call id, the tool, its JSON arguments."""

    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant message that calls tools
    tool_call_id: str | None = None  # a tool message: the call it answers


@dataclass(frozen=True)
class Request:
    """One chat request, fully rendered.

    ``params`` holds the output-affecting generation parameters in oumi's names
    (``max_new_tokens``, ``temperature``, ``top_p``, ``stop_strings``, ``seed``,
    ``frequency_penalty``, ``presence_penalty``, ...); ``None`` values are absent.
    ``seed`` is the node's draw seed, or ``None`` at temperature 0. ``params["tools"]``,
    when present, lists the tools the model may call, in OpenAI's function format
    (``{"type": "function", "function": {"name", "description", "parameters"}}``).
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
    text: str  # may be empty when the model answered with tool calls only
    model: str = ""  # the model the provider says answered
    usage: Usage = Usage()
    finish_reason: str | None = None
    latency: float = 0.0  # seconds, set by the runtime
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class RequestFailure:
    """A request that did not produce a completion.

    ``retryable`` failures (429, 5xx, connection errors, timeouts) are retried by
    the runtime, after ``retry_after`` seconds when the provider said so.
    ``systemic`` failures await every request to the endpoint alike (the host
    cannot be reached, the key is refused, the model is not found): a few in a
    row stop the build (:class:`synthc.runtime.dispatch.Breaker`).
    ``unusable``: the model answered, but not in a form the node can use (a plan
    that does not parse); the answer is not cached, so the next run asks again.
    """

    message: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    systemic: bool = False
    unusable: bool = False


Outcome = Completion | RequestFailure


@dataclass(frozen=True)
class ToolResult:
    """What a tool executor may return: its output, and for a stateful tool the new state."""

    output: Any
    updated_state: Any = None
