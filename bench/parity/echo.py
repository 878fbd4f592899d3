"""The parity server's reply hook: deterministic, and a function of the conversation only.

Both tools send different generation parameters (model, temperature, seed,
max tokens...), so a reply depends on nothing but what the conversation says:
the messages' roles and texts, tool calls and tool results, whether tools are
offered and whether a JSON schema is requested. Both wire dialects (OpenAI
chat-completions, Anthropic messages) are first read into one neutral list of
items, so the same conversation gets the same reply on either path.

- planner request (a schema is requested and the last user text says "Plan a
  N-turn conversation"): ``{"turns": [{"turn": k, "instruction": ...}, ...]}``;
- any other schema request (a simulated tool): a schema-valid JSON value;
- tools offered, no tool result since the last user text: one tool call;
- tools offered and tool results since then: ``done: <results joined>``;
- anything else: ``echo: <last user text>``.

Two markers in a system text change the tool behaviour for dedicated cases:
``[[parity:faulty-tools]]`` makes some calls name an unknown tool or send
arguments of the wrong type; ``[[parity:greedy-tools]]`` keeps calling tools
even after results came back (so ``max_consecutive_tool_turns`` is reached).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from typing import Any

from synthc.testing._schema import schema_instance

Item = dict[str, Any]

FAULTY = "[[parity:faulty-tools]]"
GREEDY = "[[parity:greedy-tools]]"
PLAN = re.compile(r"Plan a (\d+)-turn conversation")


def digest(value: Any) -> str:
    """A sha256 hex digest of ``value`` as canonical JSON."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def reply(body: dict[str, Any]) -> str | dict[str, Any]:
    """The hook given to ``FakeLLMServer(reply=...)``; never raises."""
    try:
        return _reply(body)
    except Exception as exc:  # a 500 would make the clients retry for minutes
        return f"hook error: {type(exc).__name__}: {exc}"


def _reply(body: dict[str, Any]) -> str | dict[str, Any]:
    items = neutral(body)
    schema = response_schema(body)
    tools = offered_tools(body)
    key = digest({"items": items, "schema": schema is not None, "tools": bool(tools)})
    last = last_user_text(items)
    if schema is not None:
        plan = PLAN.search(last)
        if plan:
            return json.dumps(planner_reply(int(plan.group(1)), last))
        return json.dumps(instance(schema, last))
    if tools:
        results = results_since_user(items)
        if results and not _marked(items, GREEDY):
            return "done: " + " | ".join(results)
        return {"tool_calls": [tool_call(tools, key, _marked(items, FAULTY))]}
    return f"echo: {last}"


# --- reading both dialects ------------------------------------------------------------


def neutral(body: dict[str, Any]) -> list[Item]:
    """The conversation as ``{"role", "text", "calls"}`` items, ids and params left out.

    One reader serves both dialects: a top-level ``system`` (Anthropic) is the first
    item; each text block and each tool result (an OpenAI ``tool`` message or an
    Anthropic ``tool_result`` block) is an item of its own, so Anthropic's merged
    turns read the same as OpenAI's separate messages.
    """
    items: list[Item] = []
    if body.get("system"):
        items.append({"role": "system", "text": _text(body["system"]), "calls": []})
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            items.extend(_message_items(message))
    return items


def _message_items(message: dict[str, Any]) -> list[Item]:
    role, content = message.get("role"), message.get("content")
    blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
    if role == "assistant":
        calls = [
            _call(c["function"].get("name"), c["function"].get("arguments"))
            for c in message.get("tool_calls") or []
            if isinstance(c, dict) and isinstance(c.get("function"), dict)
        ]
        uses = [b for b in blocks if b.get("type") == "tool_use"]
        calls += [_call(b.get("name"), b.get("input")) for b in uses]
        text = _text([b for b in blocks if b.get("type") == "text"] if blocks else content)
        return [{"role": role, "text": text, "calls": calls}]
    if not isinstance(content, list):
        return [{"role": role, "text": _text(content), "calls": []}]
    items = []
    for block in blocks:
        kind = "tool" if block.get("type") == "tool_result" else role
        text = _text(block.get("text", block.get("content")))
        items.append({"role": kind, "text": text, "calls": []})
    return items


def _call(name: Any, arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments)
    return {"name": name, "arguments": arguments}


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b.get("text", b.get("content")) for b in content if isinstance(b, dict)]
        return "".join(_text(p) for p in parts)
    return str(content)


def last_user_text(items: list[Item]) -> str:
    """The text of the last user item (tool results are items of their own)."""
    return next((i["text"] for i in reversed(items) if i["role"] == "user"), "")


def results_since_user(items: list[Item]) -> list[str]:
    """The tool results that came after the last user text, in order."""
    results: list[str] = []
    for item in reversed(items):
        if item["role"] == "user":
            break
        if item["role"] == "tool":
            results.append(item["text"])
    return results[::-1]


def _marked(items: list[Item], marker: str) -> bool:
    return any(marker in i["text"] for i in items if i["role"] == "system")


def response_schema(body: dict[str, Any]) -> Any:
    """The JSON schema a request asks for (OpenAI ``response_format``, Anthropic
    ``output_config.format``), or None."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"type": "object"}
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt.get("schema") or {}
    return None


def offered_tools(body: dict[str, Any]) -> dict[str, Any]:
    """``{name: parameters schema}`` of the tools a request offers, either dialect;
    none when ``tool_choice`` is "none" (tools sent only because the history has calls)."""
    choice = body.get("tool_choice")
    if choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none"):
        return {}
    tools: dict[str, Any] = {}
    for tool in body.get("tools") or []:
        function = tool.get("function", tool) if isinstance(tool, dict) else {}
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            tools[function["name"]] = function.get(
                "parameters", function.get("input_schema", {"type": "object"})
            )
    return tools


# --- building replies --------------------------------------------------------------------


def planner_reply(turns: int, text: str) -> dict[str, Any]:
    tag = digest(text)[:8]
    steps = [
        {"turn": k, "instruction": f"step {k} of {turns}, plan {tag}"} for k in range(1, turns + 1)
    ]
    return {"turns": steps}


def tool_call(tools: dict[str, Any], key: str, faulty: bool) -> dict[str, Any]:
    """One call: the tool picked by ``key`` among the sorted names, valid arguments
    (or, with ``faulty``, sometimes an unknown tool or wrongly typed arguments)."""
    names = sorted(tools)
    name = names[int(key[:8], 16) % len(names)]
    arguments = instance(tools[name], key)
    fault = int(key[8:16], 16) % 3 if faulty else 2
    if fault == 0:
        name, arguments = "no_such_tool", {"query": "x"}
    elif fault == 1:
        arguments = _mistyped(tools[name], arguments)
    return {"name": name, "arguments": arguments, "id": f"call_{key[:12]}"}


def _mistyped(schema: Any, arguments: Any) -> dict[str, Any]:
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not properties:
        return {"unexpected": True}
    first = next(iter(properties))
    wrong = "not-a-number" if isinstance(arguments.get(first), (int, float)) else 12345
    return {**arguments, first: wrong}


def instance(schema: Any, salt: str) -> Any:
    """A JSON value valid against ``schema``, a function of the schema and the salt
    (synthc.testing's generator); ``book_id`` and ``patient_id`` are ids the shipped
    lookup tables and databases know, so calls reach their rows."""
    value = schema_instance(schema, salt)
    if isinstance(value, dict):
        if isinstance(value.get("book_id"), str):
            value["book_id"] = f"B{1 + _pick(salt + 'book_id', 8):03d}"
        if isinstance(value.get("patient_id"), str):
            value["patient_id"] = f"P{1 + _pick(salt + 'patient_id', 10):03d}"
    return value


def _pick(text: str, count: int) -> int:
    return int(digest(text)[:8], 16) % count
