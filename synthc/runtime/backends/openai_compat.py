"""Send neutral requests to an OpenAI chat-completions endpoint and read back completions.

Speaks ``POST {api_url}`` (the full URL, e.g.
``http://127.0.0.1:8000/v1/chat/completions``) for OpenAI itself and every
compatible server: vLLM, SGLang, llama.cpp, Together, DeepSeek, Gemini...
Request parameters use oumi's names; this module maps them to the wire names.
Tools (``params["tools"]``, already in OpenAI's function format) and
``tool_choice`` go out as given; an assistant message's tool calls and a tool
message's ``tool_call_id`` use the chat-completions shapes, and a reply's
``message.tool_calls`` become :class:`ToolCall` objects.
"""

from __future__ import annotations

from typing import Any

from synthc.compiler.engines import ENGINES, Engine, EngineFacts
from synthc.core.messages import (
    Completion,
    Message,
    Outcome,
    Request,
    RequestFailure,
    ToolCall,
    Usage,
)
from synthc.runtime.backends._http import HttpBackend, HttpClient, as_int, closed_schema
from synthc.runtime.config import EndpointConfig

# oumi parameter name -> chat-completions field, copied when present
_PLAIN_PARAMS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


class OpenAICompatBackend(HttpBackend):
    """One HTTP request per neutral request, over a shared keep-alive pool."""

    def __init__(
        self,
        config: EndpointConfig,
        facts: EngineFacts | None = None,
        *,
        connections: int = 100,
    ):
        facts = facts or ENGINES.get(config.engine, ENGINES[Engine.REMOTE])  # a generic server
        url = config.api_url or facts.api_url
        if not url:
            raise ValueError("OpenAICompatBackend needs an api_url")
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.engine = config.engine
        self._max_tokens_field = facts.max_tokens_field
        self._min_p = facts.min_p
        self._http = HttpClient(url, headers, config.connection_timeout, connections)

    def __repr__(self) -> str:
        return f"OpenAICompatBackend(engine={str(self.engine)!r}, url={self._http.url!r})"

    def parse_reply(self, reply: dict[str, Any]) -> Outcome:
        return parse_reply(reply)

    def build_body(self, request: Request) -> dict[str, Any]:
        """The chat-completions JSON body for ``request``."""
        params = request.params
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [wire_message(m) for m in request.messages],
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
        if params.get("tools"):  # tool_choice without tools is a 400 at OpenAI
            body["tools"] = params["tools"]
            if params.get("tool_choice") is not None:
                body["tool_choice"] = params["tool_choice"]
        return body


def wire_message(message: Message) -> dict[str, Any]:
    """One chat-completions message: plain, an assistant's tool calls, or a tool result."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.tool_calls:
        return {
            "role": message.role,
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def _response_format(guided: Any) -> dict[str, Any] | None:
    """``response_format`` for oumi's ``guided_decoding: {json: <schema>}``; else None."""
    if not isinstance(guided, dict) or guided.get("json") is None:
        return None
    schema = guided["json"]
    if not isinstance(schema, dict):
        return {"type": "json_object"}
    if guided.get("strict"):
        return {
            "type": "json_schema",
            "json_schema": {"name": "Response", "schema": closed_schema(schema), "strict": True},
        }
    return {"type": "json_schema", "json_schema": {"name": "Response", "schema": schema}}


def parse_reply(reply: dict[str, Any]) -> Outcome:
    """A completion from a chat-completions reply: text, tool calls or both; otherwise a
    retryable failure (an empty or malformed reply is worth asking for again)."""
    try:
        choice = reply["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        return RequestFailure("malformed reply: no choices[0].message", True)
    if not isinstance(message, dict):
        return RequestFailure("malformed reply: choices[0].message is not an object", True)
    text = message.get("content")
    text = text if isinstance(text, str) else ""  # null when the model only calls tools
    calls = parse_tool_calls(message.get("tool_calls"))
    if isinstance(calls, RequestFailure):
        return calls
    if not text and not calls:
        return RequestFailure("empty completion", True)
    usage = reply.get("usage") or {}
    return Completion(
        text=text,
        model=str(reply.get("model") or ""),
        usage=Usage(as_int(usage.get("prompt_tokens")), as_int(usage.get("completion_tokens"))),
        finish_reason=choice.get("finish_reason"),
        tool_calls=calls,
    )


def parse_tool_calls(raw: Any) -> tuple[ToolCall, ...] | RequestFailure:
    """``message.tool_calls`` as ToolCalls, or a retryable failure naming the first bad one."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return RequestFailure("malformed reply: message.tool_calls is not a list", True)
    calls = []
    for index, call in enumerate(raw):
        where = f"malformed reply: message.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            return RequestFailure(f"{where} has no function object", True)
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str) or not name:
            return RequestFailure(f"{where}.function has no name", True)
        if not isinstance(arguments, str):
            kind = type(arguments).__name__
            return RequestFailure(f"{where}.function.arguments is {kind}, not a JSON string", True)
        calls.append(ToolCall(_call_id(call.get("id"), index), name, arguments))
    return tuple(calls)


def _call_id(raw: Any, index: int) -> str:
    """The provider's call id; a server that sends none still needs one for the tool
    message that answers the call, and the call's position is stable."""
    return raw if isinstance(raw, str) and raw else f"call_{index}"
