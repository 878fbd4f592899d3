"""Send neutral requests to an OpenAI chat-completions endpoint and read back completions.

Speaks ``POST {api_url}`` (the full URL, e.g.
``http://127.0.0.1:8000/v1/chat/completions``) for OpenAI itself and every
compatible server: vLLM, SGLang, llama.cpp, Together, DeepSeek, Gemini...
Request parameters use oumi's names; this module maps them to the wire names.
"""

from __future__ import annotations

from typing import Any

from synthc.runtime.backends import ENGINE_DEFAULTS, EngineDefaults
from synthc.runtime.backends._http import HttpBackend, HttpClient, as_int
from synthc.runtime.config import EndpointConfig
from synthc.runtime.protocol import Completion, Outcome, Request, RequestFailure, Usage

# oumi parameter name -> chat-completions field, copied when present
_PLAIN_PARAMS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_GENERIC_SERVER = EngineDefaults(
    backend="", api_url=None, api_key_env=None, min_p=True, max_tokens_field="max_tokens"
)


class OpenAICompatBackend(HttpBackend):
    """One HTTP request per neutral request, over a shared keep-alive pool."""

    def __init__(
        self,
        config: EndpointConfig,
        defaults: EngineDefaults | None = None,
        *,
        connections: int = 100,
    ):
        if defaults is None:
            defaults = ENGINE_DEFAULTS.get(config.engine.upper(), _GENERIC_SERVER)
        url = config.api_url or defaults.api_url
        if not url:
            raise ValueError("OpenAICompatBackend needs an api_url")
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.engine = config.engine
        self._max_tokens_field = defaults.max_tokens_field
        self._min_p = defaults.min_p
        self._http = HttpClient(url, headers, config.connection_timeout, connections)

    def __repr__(self) -> str:
        return f"OpenAICompatBackend(engine={self.engine!r}, url={self._http.url!r})"

    def parse_reply(self, reply: dict[str, Any]) -> Outcome:
        return parse_reply(reply)

    def build_body(self, request: Request) -> dict[str, Any]:
        """The chat-completions JSON body for ``request``."""
        params = request.params
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if params.get("max_new_tokens") is not None:
            body[self._max_tokens_field] = params["max_new_tokens"]
        for name in _PLAIN_PARAMS:
            if params.get(name) is not None:
                body[name] = params[name]
        stop = params.get("stop_strings") or params.get("stop")
        if stop:
            body["stop"] = list(stop)
        seed = request.seed if request.seed is not None else params.get("seed")
        if seed is not None:
            body["seed"] = seed
        if self._min_p and params.get("min_p"):
            body["min_p"] = params["min_p"]
        response_format = _response_format(params.get("guided_decoding"))
        if response_format is not None:
            body["response_format"] = response_format
        return body


def _response_format(guided: Any) -> dict[str, Any] | None:
    """``response_format`` for oumi's ``guided_decoding: {json: <schema>}``; else None."""
    if not isinstance(guided, dict) or guided.get("json") is None:
        return None
    schema = guided["json"]
    if not isinstance(schema, dict):
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


def parse_reply(reply: dict[str, Any]) -> Outcome:
    """A completion from a chat-completions reply, or a retryable failure if it has no text."""
    try:
        choice = reply["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return RequestFailure("malformed reply: no choices[0].message.content", True)
    if not isinstance(text, str) or not text:
        return RequestFailure("empty completion", True)
    usage = reply.get("usage") or {}
    return Completion(
        text=text,
        model=str(reply.get("model") or ""),
        usage=Usage(as_int(usage.get("prompt_tokens")), as_int(usage.get("completion_tokens"))),
        finish_reason=choice.get("finish_reason"),
    )
