"""Send neutral requests to Anthropic's Messages API and read back completions.

``POST {api_url}`` (default ``https://api.anthropic.com/v1/messages``) with
``x-api-key`` and ``anthropic-version: 2023-06-01``. System messages go to the
top-level ``system`` field. Like oumi, ``top_p`` is sent only when it is not
1.0, and then without ``temperature`` (newer models refuse both at once).
"""

from __future__ import annotations

from typing import Any

from synthc.runtime.backends import ENGINE_DEFAULTS, EngineDefaults
from synthc.runtime.backends._http import HttpBackend, HttpClient, as_int
from synthc.runtime.config import EndpointConfig
from synthc.runtime.protocol import Completion, Outcome, Request, RequestFailure, Usage

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 256  # oumi's GenerationParams.max_new_tokens default; the API requires one


class AnthropicBackend(HttpBackend):
    """One Messages API call per neutral request, over a shared keep-alive pool."""

    def __init__(
        self,
        config: EndpointConfig,
        defaults: EngineDefaults | None = None,
        *,
        connections: int = 100,
    ):
        defaults = defaults or ENGINE_DEFAULTS["ANTHROPIC"]
        url = config.api_url or defaults.api_url or ""
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self._http = HttpClient(url, headers, config.connection_timeout, connections)

    def __repr__(self) -> str:
        return f"AnthropicBackend(url={self._http.url!r})"

    def build_body(self, request: Request) -> dict[str, Any]:
        return build_body(request)

    def parse_reply(self, reply: dict[str, Any]) -> Outcome:
        return parse_reply(reply)


def build_body(request: Request) -> dict[str, Any]:
    """The Messages API JSON body for ``request``."""
    params = request.params
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ],
        "max_tokens": params.get("max_new_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = system
    top_p = params.get("top_p")
    if top_p is not None and top_p != 1.0:
        body["top_p"] = top_p
    elif params.get("temperature") is not None:
        body["temperature"] = params["temperature"]
    stop = params.get("stop_strings") or params.get("stop")
    if stop:
        body["stop_sequences"] = list(stop)
    return body


def parse_reply(reply: dict[str, Any]) -> Outcome:
    """A completion from a Messages API reply, or a retryable failure if it has no text."""
    content = reply.get("content")
    if not isinstance(content, list):
        return RequestFailure("malformed reply: no content list", True)
    text = "".join(
        str(block.get("text", ""))
        for block in content
        if isinstance(block, dict) and block.get("type") == "text"
    )
    if not text:
        return RequestFailure("empty completion", True)
    usage = reply.get("usage") or {}
    return Completion(
        text=text,
        model=str(reply.get("model") or ""),
        usage=Usage(as_int(usage.get("input_tokens")), as_int(usage.get("output_tokens"))),
        finish_reason=reply.get("stop_reason"),
    )
