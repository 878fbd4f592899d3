"""Shape replies and errors the way OpenAI's and Anthropic's APIs do, from a request body.

The fake server's wire formats: the default deterministic reply text, the
OpenAI ``chat.completion`` and Anthropic ``message`` objects with word-count
usage, each provider's error body, and what each API insists a request has.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xxhash
from aiohttp import web


def default_reply(body: dict[str, Any]) -> str:
    """``reply to: <last user text> #<hash>``; the hash covers messages, seed and temperature."""
    messages = body.get("messages") or []
    last: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    key = [body.get("system"), messages, body.get("seed"), body.get("temperature")]
    digest = xxhash.xxh64_hexdigest(json.dumps(key, sort_keys=True, separators=(",", ":")).encode())
    return f"reply to: {_text(last.get('content'))[:40]} #{digest}"


def _text(content: Any) -> str:
    """Message content as text, whether a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


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


def _openai_reply(body: dict[str, Any], text: str, index: int) -> dict[str, Any]:
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    text, cut = _truncate(text, limit)
    prompt, completion = _prompt_words(body), _words(text)
    return {
        "id": f"chatcmpl-fake{index}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length" if cut else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _anthropic_reply(body: dict[str, Any], text: str, index: int) -> dict[str, Any]:
    text, cut = _truncate(text, body.get("max_tokens"))
    return {
        "id": f"msg_fake{index}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake"),
        "content": [{"type": "text", "text": text}],
        "stop_reason": "max_tokens" if cut else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": _prompt_words(body), "output_tokens": _words(text)},
    }


def _openai_error(status: int, message: str) -> dict[str, Any]:
    kind = "rate_limit_error" if status == 429 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}
    error_type = kind.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": error_type, "message": message}}


@dataclass(frozen=True)
class Dialect:
    """How one API shapes replies and errors, and what it insists on."""

    reply: Callable[[dict[str, Any], str, int], dict[str, Any]]
    error: Callable[[int, str], dict[str, Any]]
    required: tuple[str, ...]
    authorized: Callable[[web.Request, str], bool]


OPENAI = Dialect(
    _openai_reply,
    _openai_error,
    ("model", "messages"),
    lambda req, key: req.headers.get("Authorization") == f"Bearer {key}",
)
ANTHROPIC = Dialect(
    _anthropic_reply,
    _anthropic_error,
    ("model", "messages", "max_tokens"),
    lambda req, key: req.headers.get("x-api-key") == key,
)
