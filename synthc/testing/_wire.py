"""Shape replies and errors the way OpenAI's and Anthropic's APIs do, from a request body.

The fake server's wire formats: the default deterministic reply (text, a JSON
value for a structured-output request or a conversation plan for a planner's
request, or a tool call when tools are offered),
the OpenAI ``chat.completion`` and Anthropic ``message`` objects with
word-count usage, each provider's error body, and what each API insists a
request has (required fields; tool results that answer the calls before them).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xxhash
from aiohttp import web

from synthc.testing._schema import schema_instance


class ReplyError(ValueError):
    """A reply hook returned something the server cannot send."""


@dataclass(frozen=True)
class Call:
    """One tool call to send: its name, its arguments (an object or JSON text), an id or ''."""

    name: str
    arguments: dict[str, Any] | str
    id: str = ""


@dataclass(frozen=True)
class Turn:
    """What the assistant says: text, tool calls, or both."""

    text: str
    calls: tuple[Call, ...] = ()


# --- the default reply -----------------------------------------------------------


def request_digest(body: dict[str, Any]) -> str:
    """A hash of what makes replies differ: system, messages, seed and temperature."""
    key = [body.get("system"), body.get("messages"), body.get("seed"), body.get("temperature")]
    return xxhash.xxh64_hexdigest(json.dumps(key, sort_keys=True, separators=(",", ":")).encode())


def default_reply(body: dict[str, Any]) -> str:
    """``reply to: <last user text> #<hash>``, or for a structured-output request a JSON
    value valid against its schema, or for a conversation planner's request a plan; the
    hash covers messages, seed and temperature."""
    digest = request_digest(body)
    schema = response_schema(body)
    if schema is not None:
        return json.dumps(schema_instance(schema, digest))
    last = _last_user_text(body.get("messages") or [])
    planned = _PLAN_REQUEST.search(last)
    if planned is not None:  # the planner asks for its JSON alone, as a model would answer
        turns = range(1, int(planned.group(1)) + 1)
        return json.dumps(
            {"turns": [{"turn": t, "instruction": f"turn {t} #{digest}"} for t in turns]}
        )
    return f"reply to: {last[:40]} #{digest}"


_PLAN_REQUEST = re.compile(r"^Plan a (\d{1,3})-turn conversation\.", re.MULTILINE)


def _last_user_text(messages: list[Any]) -> str:
    """The text of the user's last own message (an Anthropic user message that only
    carries tool results does not count; nor do the results beside a user's text)."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = _blocks_of(message, "text")
        if texts or not _blocks_of(message, "tool_result"):
            return " ".join(str(b.get("text", "")) for b in texts)
    return ""


def default_turn(body: dict[str, Any]) -> str | dict[str, Any]:
    """The server's default reply hook: one tool call while the request offers tools and
    none has been answered since the user last spoke (the tool picked by the request's
    hash, its arguments valid against its parameters); otherwise :func:`default_reply`."""
    tools = offered_tools(body)
    choice = _tool_choice(body.get("tool_choice"))
    if not tools or choice == "none" or (choice == "auto" and tools_answered(body)):
        return default_reply(body)
    digest = request_digest(body)
    named = [t for t in tools if t[0] == choice]
    name, parameters = named[0] if named else tools[int(digest[:8], 16) % len(tools)]
    arguments = schema_instance(parameters, digest)
    return {
        "tool_calls": [
            {"name": name, "arguments": arguments if isinstance(arguments, dict) else {}}
        ]
    }


def response_schema(body: dict[str, Any]) -> Any:
    """The JSON schema a structured-output request asks for: OpenAI's ``response_format``
    (``json_object`` counts as any object) or Anthropic's ``output_config.format``."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema", {})
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"type": "object", "properties": {"reply": {"type": "string"}}}
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt.get("schema", {})
    return None


def offered_tools(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(name, parameters schema)`` of each tool, from OpenAI or Anthropic tool shapes."""
    tools = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        function: dict[str, Any] = (
            tool["function"] if isinstance(tool.get("function"), dict) else tool
        )
        schema = function.get("parameters", function.get("input_schema", {}))
        if isinstance(function.get("name"), str):
            tools.append((function["name"], schema))
    return tools


def _tool_choice(choice: Any) -> str:
    """ "auto", "none", "required", or the name of the one tool to call."""
    if isinstance(choice, dict):
        kind = choice.get("type")
        name = choice.get("name") or (choice.get("function") or {}).get("name")
        return str(name) if name else {"any": "required", "none": "none"}.get(str(kind), "auto")
    return choice if choice in ("none", "required") else "auto"


def tools_answered(body: dict[str, Any]) -> bool:
    """Whether a tool result (an OpenAI ``tool`` message or Anthropic ``tool_result``
    block) came after the user's last own message."""
    for message in reversed(body.get("messages") or []):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool" or _blocks_of(message, "tool_result"):
            return True
        if message.get("role") == "user":
            return False
    return False


def as_turn(answer: Any) -> Turn:
    """A reply hook's answer as a Turn: a str is text; a dict is ``{"content": str | None,
    "tool_calls": [{"name": str, "arguments": dict | JSON str, "id": str (optional)}]}``."""
    if isinstance(answer, str):
        return Turn(answer)
    if not isinstance(answer, dict):
        raise ReplyError(f"a reply must be a str or a dict, not {type(answer).__name__}")
    unknown = sorted(set(answer) - {"content", "tool_calls"})
    if unknown:
        raise ReplyError(f"unknown reply keys {unknown}; expected 'content' and 'tool_calls'")
    text = answer.get("content") or ""
    if not isinstance(text, str):
        raise ReplyError("reply 'content' must be a str or None")
    return Turn(text, tuple(_call(c, i) for i, c in enumerate(answer.get("tool_calls") or [])))


def _call(raw: Any, index: int) -> Call:
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str) or not name:
        raise ReplyError(f"tool_calls[{index}] needs a 'name'")
    arguments = raw.get("arguments", {})
    if not isinstance(arguments, (dict, str)):
        raise ReplyError(f"tool_calls[{index}].arguments must be a dict or JSON text")
    return Call(name, arguments, str(raw.get("id") or ""))


# --- replies in each provider's shape -------------------------------------------


def _text(content: Any) -> str:
    """Message content as text, whether a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            _text(b.get("text", b.get("content"))) for b in content if isinstance(b, dict)
        )
    return ""


def _blocks_of(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    return [b for b in blocks if isinstance(b, dict) and b.get("type") == kind]


def _words(text: str) -> int:
    return len(text.split())


def _prompt_words(body: dict[str, Any]) -> int:
    system = _text(body.get("system"))
    return _words(system) + sum(_words(_text(m.get("content"))) for m in body["messages"])


def _truncate(text: str, limit: Any) -> tuple[str, bool]:
    """The first ``limit`` words of ``text``, and whether it was cut."""
    if not isinstance(limit, int) or limit <= 0:
        return text, False
    words = text.split(" ")
    return (text, False) if len(words) <= limit else (" ".join(words[:limit]), True)


def _arguments_text(call: Call) -> str:
    return call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)


def _call_words(turn: Turn) -> int:
    return sum(_words(c.name) + _words(_arguments_text(c)) for c in turn.calls)


def _openai_reply(body: dict[str, Any], turn: Turn, index: int) -> dict[str, Any]:
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    text, cut = _truncate(turn.text, limit) if not turn.calls else (turn.text, False)
    # content is null beside tool calls; a text reply keeps even an empty string
    message: dict[str, Any] = {"role": "assistant", "content": text or None if turn.calls else text}
    finish = "length" if cut else "stop"
    if turn.calls:
        digest = request_digest(body)[:12]
        message["tool_calls"] = [
            {
                "id": c.id or f"call_{digest}_{i}",
                "type": "function",
                "function": {"name": c.name, "arguments": _arguments_text(c)},
            }
            for i, c in enumerate(turn.calls)
        ]
        finish = "tool_calls"
    prompt, completion = _prompt_words(body), _words(text) + _call_words(turn)
    return {
        "id": f"chatcmpl-fake{index}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _anthropic_reply(body: dict[str, Any], turn: Turn, index: int) -> dict[str, Any]:
    text, cut = (
        _truncate(turn.text, body.get("max_tokens")) if not turn.calls else (turn.text, False)
    )
    content: list[dict[str, Any]] = (
        [{"type": "text", "text": text}] if text or not turn.calls else []
    )
    digest = request_digest(body)[:12]
    for i, call in enumerate(turn.calls):
        use_id = call.id or f"toolu_{digest}_{i}"
        content.append(
            {"type": "tool_use", "id": use_id, "name": call.name, "input": _input(call, i)}
        )
    stop = "tool_use" if turn.calls else "max_tokens" if cut else "end_turn"
    return {
        "id": f"msg_fake{index}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": _prompt_words(body),
            "output_tokens": _words(text) + _call_words(turn),
        },
    }


def _input(call: Call, index: int) -> dict[str, Any]:
    """A call's arguments as the object Anthropic's ``tool_use.input`` is."""
    if isinstance(call.arguments, dict):
        return call.arguments
    try:
        value = json.loads(call.arguments)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ReplyError(f"tool_calls[{index}].arguments must be a JSON object for Anthropic")
    return value


# --- errors and request checks ----------------------------------------------------


def _openai_error(status: int, message: str) -> dict[str, Any]:
    kind = "rate_limit_error" if status == 429 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}
    error_type = kind.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _openai_check(body: dict[str, Any]) -> str | None:
    """OpenAI's rule: tool messages answer, one each, the tool calls just before them."""
    pending: list[str] = []
    for i, message in enumerate(body["messages"]):
        if not isinstance(message, dict):
            return f"messages[{i}]: must be an object"
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in pending:
                return (
                    f"messages[{i}].role: messages with role 'tool' must be a response "
                    "to a preceeding message with 'tool_calls'."
                )
            pending.remove(message["tool_call_id"])
            continue
        if pending:
            return _unanswered(pending)
        calls = message.get("tool_calls") or []
        pending = [str(c.get("id")) for c in calls if isinstance(c, dict)]
    return _unanswered(pending) if pending else None


def _unanswered(ids: list[str]) -> str:
    return (
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        f"{', '.join(map(str, ids))}"
    )


def _anthropic_check(body: dict[str, Any]) -> str | None:
    """Anthropic's rule: the message after ``tool_use`` blocks holds their ``tool_result``
    blocks, and a ``tool_result`` answers a ``tool_use`` in the message just before."""
    uses: list[str] = []
    for i, message in enumerate(body["messages"]):
        if not isinstance(message, dict):
            return f"messages.{i}: Input should be an object"
        results = [b.get("tool_use_id") for b in _blocks_of(message, "tool_result")]
        stray = [r for r in results if r not in uses]
        if stray:
            return (
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{stray[0]}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )
        missing = [u for u in uses if u not in results]
        if missing:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )
        uses = [str(b.get("id")) for b in _blocks_of(message, "tool_use")]
    return None


@dataclass(frozen=True)
class Dialect:
    """How one API shapes replies and errors, and what it insists on."""

    reply: Callable[[dict[str, Any], Turn, int], dict[str, Any]]
    error: Callable[[int, str], dict[str, Any]]
    required: tuple[str, ...]
    authorized: Callable[[web.Request, str], bool]
    check: Callable[[dict[str, Any]], str | None]


def _bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


OPENAI = Dialect(
    _openai_reply,
    _openai_error,
    ("model", "messages"),
    lambda req, key: req.headers.get("Authorization") == f"Bearer {key}",
    _openai_check,
)
ANTHROPIC = Dialect(
    _anthropic_reply,
    _anthropic_error,
    ("model", "messages", "max_tokens"),
    # the API's x-api-key header; the official SDK (2.x) sends the key as a bearer token
    lambda req, key: key in (req.headers.get("x-api-key"), _bearer(req)),
    _anthropic_check,
)
