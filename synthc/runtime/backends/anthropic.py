"""Send neutral requests to Anthropic's Messages API and read back completions.

``POST {api_url}`` (default ``https://api.anthropic.com/v1/messages``) with
``x-api-key`` and ``anthropic-version: 2023-06-01``. System messages go to the
top-level ``system`` field. Like oumi, ``top_p`` is sent only when it is not
1.0, and then without ``temperature`` (newer models refuse both at once).

Tools arrive in OpenAI's function format and go out as ``{name, description,
input_schema}``. An assistant's tool calls become ``tool_use`` blocks, tool
results become ``tool_result`` blocks in a user message, and adjacent messages
of one role are merged into one message of content blocks, as oumi does (the
API wants user and assistant turns to alternate, and tool results to open the
user turn after the calls). Reply ``tool_use`` blocks become :class:`ToolCall`
objects with their ``input`` as JSON text.

What a model accepts follows oumi 0.9's table of Claude versions: a
``guided_decoding`` JSON schema goes out as ``output_config.format`` (every
object schema closed with ``additionalProperties: false``) to Claude 4.5 and
later, and is left out for older models, which refuse it; the reasoning-first
models (Opus 4.7+, Sonnet 5+, Fable, Mythos) are sent no sampling parameters.
``remote_params.user_id`` becomes ``metadata.user_id`` and
``generation.prompt_cache_ttl`` a top-level ``cache_control``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
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

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 256  # oumi's GenerationParams.max_new_tokens default; the API requires one
Block = dict[str, Any]

# oumi 0.9's reading of a Claude model name: family, major, and a minor of at most two
# digits (so a snapshot date is not a minor: claude-opus-4-20250514 is 4.0)
_VERSION = re.compile(r"^claude-(opus|sonnet|haiku)-(\d+)(?:-(\d{1,2})(?!\d))?")
_REASONING_FIRST = ("claude-fable", "claude-mythos")
_OUTPUT_CONFIG_SINCE = (4, 5)
_NO_SAMPLING_SINCE = {"opus": (4, 7), "sonnet": (5, 0)}  # Haiku keeps them


class AnthropicBackend(HttpBackend):
    """One Messages API call per neutral request, over a shared keep-alive pool."""

    def __init__(
        self,
        config: EndpointConfig,
        facts: EngineFacts | None = None,
        *,
        connections: int = 100,
    ):
        facts = facts or ENGINES[Engine.ANTHROPIC]
        url = config.api_url or facts.api_url or ""
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self._http = HttpClient(url, headers, config.connection_timeout, connections)
        self._fixed: dict[str, Any] = {}  # the same in every body
        if config.user_id:
            self._fixed["metadata"] = {"user_id": config.user_id}
        if config.prompt_cache_ttl:
            self._fixed["cache_control"] = {"type": "ephemeral", "ttl": config.prompt_cache_ttl}

    def __repr__(self) -> str:
        return f"AnthropicBackend(url={self._http.url!r})"

    def build_body(self, request: Request) -> dict[str, Any]:
        return {**build_body(request), **self._fixed}

    def parse_reply(self, reply: dict[str, Any]) -> Outcome:
        return parse_reply(reply)


def build_body(request: Request) -> dict[str, Any]:
    """The Messages API JSON body for ``request``."""
    params = request.params
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    body: dict[str, Any] = {
        "model": request.model,
        "messages": wire_messages(request.messages),
        "max_tokens": params.get("max_new_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = system
    if takes_sampling(request.model):
        top_p = params.get("top_p")
        if top_p is not None and top_p != 1.0:
            body["top_p"] = top_p
        elif params.get("temperature") is not None:
            body["temperature"] = params["temperature"]
    stop = params.get("stop_strings") or params.get("stop")
    if stop:
        body["stop_sequences"] = list(stop)
    schema = (params.get("guided_decoding") or {}).get("json")
    if isinstance(schema, dict) and takes_output_config(request.model):
        body["output_config"] = {"format": {"type": "json_schema", "schema": closed_schema(schema)}}
    body.update(_tool_fields(params, request.messages))
    return body


def _version(model: str) -> tuple[str, tuple[int, int]] | None:
    match = _VERSION.match(model)
    if match is None:
        return None
    return match[1], (int(match[2]), int(match[3] or 0))


def takes_output_config(model: str) -> bool:
    """Whether ``model`` accepts ``output_config`` (structured outputs): Claude 4.5 on."""
    if model.startswith(_REASONING_FIRST):
        return True
    version = _version(model)
    return version is not None and version[1] >= _OUTPUT_CONFIG_SINCE


def takes_sampling(model: str) -> bool:
    """Whether ``model`` accepts temperature and top_p (reasoning-first models refuse them)."""
    if model.startswith(_REASONING_FIRST):
        return False
    version = _version(model)
    if version is None or version[0] not in _NO_SAMPLING_SINCE:
        return True
    return version[1] < _NO_SAMPLING_SINCE[version[0]]


def _tool_fields(params: dict[str, Any], messages: Sequence[Message]) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` for the body; none when no tool is offered or used."""
    if params.get("tools"):
        fields: dict[str, Any] = {"tools": [wire_tool(t) for t in params["tools"]]}
        choice = wire_tool_choice(params.get("tool_choice"))
        if choice is not None:
            fields["tool_choice"] = choice
        return fields
    # A request that offers no tools (oumi's final nudge) may still carry earlier tool
    # traffic; Anthropic has refused tool_use/tool_result blocks in a request that
    # defines no tools, so name the tools the history used and forbid calling them.
    used = dict.fromkeys(c.name for m in messages for c in m.tool_calls)
    if not used:
        return {}
    placeholders = [{"name": name, "input_schema": {"type": "object"}} for name in used]
    return {"tools": placeholders, "tool_choice": {"type": "none"}}


def wire_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI function tool as an Anthropic tool."""
    function = tool.get("function") or {}
    wired: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        wired["description"] = function["description"]
    wired["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return wired


def wire_tool_choice(choice: Any) -> dict[str, Any] | None:
    """OpenAI's ``tool_choice`` ("auto", "none", "required" or one function) in Anthropic's form."""
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        return {"type": "tool", "name": name} if name else None
    return {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}.get(
        str(choice)
    )


def wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The non-system messages as alternating turns; adjacent same-role turns become one."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role, content = _turn(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = _blocks(turns[-1]["content"]) + _blocks(content)
        else:
            turns.append({"role": role, "content": content})
    return turns


def _turn(message: Message) -> tuple[str, str | list[Block]]:
    if message.role == "tool":
        result = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": message.content,
        }
        return "user", [result]
    if not message.tool_calls:
        return message.role, message.content
    uses = [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": _tool_input(c.arguments)}
        for c in message.tool_calls
    ]
    return message.role, _blocks(message.content) + uses


def _tool_input(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the object ``tool_use.input`` must be.

    Arguments that are not a JSON object (a model's broken JSON, a bare list) are
    sent as ``{}``: the API refuses any other ``input``, which would make the whole
    conversation unsendable, and the tool result that followed the call already
    tells the model what went wrong with it.
    """
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _blocks(content: str | list[Block]) -> list[Block]:
    """Content as a list of blocks; an empty text adds none (the API refuses empty text blocks)."""
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if content else []


def parse_reply(reply: dict[str, Any]) -> Outcome:
    """A completion from a Messages API reply (text blocks joined, ``tool_use`` blocks as
    tool calls), or a retryable failure if it has neither or is malformed."""
    content = reply.get("content")
    if not isinstance(content, list):
        return RequestFailure("malformed reply: no content list", True)
    blocks = [b for b in content if isinstance(b, dict)]
    text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    calls = parse_tool_uses([b for b in blocks if b.get("type") == "tool_use"])
    if isinstance(calls, RequestFailure):
        return calls
    if not text and not calls:
        return RequestFailure("empty completion", True)
    usage = reply.get("usage") or {}
    return Completion(
        text=text,
        model=str(reply.get("model") or ""),
        usage=Usage(as_int(usage.get("input_tokens")), as_int(usage.get("output_tokens"))),
        finish_reason=reply.get("stop_reason"),
        tool_calls=calls,
    )


def parse_tool_uses(blocks: list[Block]) -> tuple[ToolCall, ...] | RequestFailure:
    """``tool_use`` blocks as ToolCalls, or a retryable failure naming the first bad one."""
    calls = []
    for index, block in enumerate(blocks):
        name, arguments = block.get("name"), block.get("input")
        if not isinstance(name, str) or not name:
            return RequestFailure(f"malformed reply: tool_use block {index} has no name", True)
        if not isinstance(arguments, dict):
            return RequestFailure(
                f"malformed reply: tool_use block {index} input is not an object", True
            )
        call_id = block.get("id")
        call_id = call_id if isinstance(call_id, str) and call_id else f"toolu_{index}"
        calls.append(ToolCall(call_id, name, json.dumps(arguments)))  # as oumi writes it
    return tuple(calls)
