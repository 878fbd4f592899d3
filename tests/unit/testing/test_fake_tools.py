"""FakeLLMServer speaking tool calls and structured outputs, read raw and by the official SDKs."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from synthc.testing import FakeLLMServer
from synthc.testing._wire import default_turn

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
LOOKUP = {
    "type": "object",
    "properties": {"book_id": {"type": "string"}, "copies": {"type": "integer", "minimum": 1}},
    "required": ["book_id"],
}
RENEW = {"type": "object", "properties": {"loan_id": {"type": "string"}}, "required": ["loan_id"]}
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {"name": "lookup", "description": "Find a book.", "parameters": LOOKUP},
    },
    {
        "type": "function",
        "function": {"name": "renew", "description": "Renew a loan.", "parameters": RENEW},
    },
]
ANTHROPIC_TOOLS = [
    {"name": "lookup", "description": "Find a book.", "input_schema": LOOKUP},
    {"name": "renew", "description": "Renew a loan.", "input_schema": RENEW},
]
SCHEMAS = {"lookup": LOOKUP, "renew": RENEW}


@pytest.fixture
def srv() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def _error(url: str, body: dict[str, Any]) -> tuple[int, str]:
    with pytest.raises(urllib.error.HTTPError) as info:
        _post(url, body)
    payload = json.loads(info.value.read())
    info.value.close()
    return info.value.code, payload["error"]["message"]


def _openai(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-x",
        "messages": [{"role": "user", "content": "Find Dune."}, *messages],
        **extra,
    }


def _anthropic(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    first = {"role": "user", "content": "Find Dune."}
    return {"model": "claude-x", "max_tokens": 100, "messages": [first, *messages], **extra}


# --- default replies ------------------------------------------------------------------


def test_openai_tool_call_reply_shape(srv: FakeLLMServer) -> None:
    reply = _post(srv.url(CHAT), _openai(tools=OPENAI_TOOLS))
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    jsonschema.validate(
        json.loads(call["function"]["arguments"]), SCHEMAS[call["function"]["name"]]
    )
    again = _post(srv.url(CHAT), _openai(tools=OPENAI_TOOLS))["choices"][0]["message"]
    assert again["tool_calls"] == [call]


def test_anthropic_tool_use_reply_shape(srv: FakeLLMServer) -> None:
    reply = _post(srv.url(MESSAGES), _anthropic(tools=ANTHROPIC_TOOLS))
    assert reply["stop_reason"] == "tool_use"
    (block,) = reply["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_")
    jsonschema.validate(block["input"], SCHEMAS[block["name"]])
    assert reply["usage"]["output_tokens"] > 0


def test_the_tool_is_picked_by_the_request_hash() -> None:
    turns = [default_turn(_openai(tools=OPENAI_TOOLS, seed=seed)) for seed in range(12)]
    assert all(isinstance(t, dict) for t in turns)
    assert {t["tool_calls"][0]["name"] for t in turns if isinstance(t, dict)} == {"lookup", "renew"}


def test_after_tool_results_the_reply_is_text(srv: FakeLLMServer) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    openai = _openai(
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"title": "Dune"}'},
        tools=OPENAI_TOOLS,
    )
    message = _post(srv.url(CHAT), openai)["choices"][0]["message"]
    assert message["content"].startswith("reply to: Find Dune. #") and "tool_calls" not in message

    use = {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}
    anthropic = _anthropic(
        {"role": "assistant", "content": [use]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
        },
        tools=ANTHROPIC_TOOLS,
    )
    reply = _post(srv.url(MESSAGES), anthropic)
    assert reply["stop_reason"] == "end_turn"
    assert reply["content"][0]["text"].startswith("reply to: Find Dune. #")


def test_a_new_user_message_after_results_gets_a_tool_call_again(srv: FakeLLMServer) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    body = _openai(
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "assistant", "content": "Found it."},
        {"role": "user", "content": "Renew it."},
        tools=OPENAI_TOOLS,
    )
    assert _post(srv.url(CHAT), body)["choices"][0]["finish_reason"] == "tool_calls"


def test_structured_output_requests_get_valid_json(srv: FakeLLMServer) -> None:
    schema = {
        "type": "object",
        "properties": {
            "library_id": {"type": "string"},
            "candidates": {"type": "array", "items": RENEW},
        },
        "required": ["library_id", "candidates"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    text = _post(srv.url(CHAT), _openai(response_format=fmt))["choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(text), schema)
    config = {"format": {"type": "json_schema", "schema": schema}}
    reply = _post(srv.url(MESSAGES), _anthropic(output_config=config))
    jsonschema.validate(json.loads(reply["content"][0]["text"]), schema)
    text = _post(srv.url(CHAT), _openai(response_format={"type": "json_object"}))["choices"][0]
    assert isinstance(json.loads(text["message"]["content"]), dict)


# --- the reply hook -------------------------------------------------------------------


def test_a_hook_scripts_calls_in_each_wire_format() -> None:
    def hook(body: dict[str, Any]) -> str | dict[str, Any]:
        if body["messages"][-1]["role"] == "user" and isinstance(
            body["messages"][-1]["content"], str
        ):
            return {
                "content": "One moment.",
                "tool_calls": [{"name": "renew", "arguments": {"loan_id": "L9"}, "id": "fixed"}],
            }
        return "Renewed."

    with FakeLLMServer(reply=hook) as srv:
        message = _post(srv.url(CHAT), _openai(tools=OPENAI_TOOLS))["choices"][0]["message"]
        assert message == {
            "role": "assistant",
            "content": "One moment.",
            "tool_calls": [
                {
                    "id": "fixed",
                    "type": "function",
                    "function": {"name": "renew", "arguments": '{"loan_id": "L9"}'},
                }
            ],
        }
        reply = _post(srv.url(MESSAGES), _anthropic(tools=ANTHROPIC_TOOLS))
        assert reply["content"] == [
            {"type": "text", "text": "One moment."},
            {"type": "tool_use", "id": "fixed", "name": "renew", "input": {"loan_id": "L9"}},
        ]
        assert reply["stop_reason"] == "tool_use"


def test_a_hook_may_send_broken_argument_text_to_openai_clients() -> None:
    hook = lambda body: {"tool_calls": [{"name": "lookup", "arguments": "{not json"}]}  # noqa: E731
    with FakeLLMServer(reply=hook) as srv:
        call = _post(srv.url(CHAT), _openai())["choices"][0]["message"]["tool_calls"][0]
        assert call["function"]["arguments"] == "{not json"
        assert _error(srv.url(MESSAGES), _anthropic()) == (
            500,
            "reply hook: tool_calls[0].arguments must be a JSON object for Anthropic",
        )


def test_a_schema_the_default_reply_cannot_fill_is_a_500_that_says_why(
    srv: FakeLLMServer,
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"schema": {"$ref": "https://x/s.json"}}}
    assert _error(srv.url(CHAT), _openai(response_format=fmt)) == (
        500,
        "reply hook: only local $ref is supported, not 'https://x/s.json'",
    )


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (42, "reply hook: a reply must be a str or a dict, not int"),
        (
            {"text": "hi"},
            "reply hook: unknown reply keys ['text']; expected 'content' and 'tool_calls'",
        ),
        ({"tool_calls": [{"arguments": {}}]}, "reply hook: tool_calls[0] needs a 'name'"),
        (
            {"tool_calls": [{"name": "f", "arguments": 3}]},
            "reply hook: tool_calls[0].arguments must be a dict or JSON text",
        ),
    ],
)
def test_a_hook_answer_the_server_cannot_send_is_a_500_that_says_why(
    answer: Any, message: str
) -> None:
    with FakeLLMServer(reply=lambda body: answer) as srv:
        assert _error(srv.url(CHAT), _openai()) == (500, message)


# --- what the real APIs insist on -------------------------------------------------------


def test_openai_tool_messages_must_answer_the_calls_before_them(srv: FakeLLMServer) -> None:
    stray = _openai({"role": "tool", "tool_call_id": "c1", "content": "x"})
    assert _error(srv.url(CHAT), stray) == (
        400,
        "messages[1].role: messages with role 'tool' must be a response to a preceeding "
        "message with 'tool_calls'.",
    )
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    unanswered = _openai(
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "user", "content": "?"},
    )
    status, message = _error(srv.url(CHAT), unanswered)
    assert status == 400 and message.endswith("did not have response messages: c1")


def test_anthropic_tool_use_must_be_answered_in_the_next_message(srv: FakeLLMServer) -> None:
    use = {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}
    body = _anthropic({"role": "assistant", "content": [use]}, {"role": "user", "content": "and?"})
    assert _error(srv.url(MESSAGES), body) == (
        400,
        "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: "
        "t1. Each `tool_use` block must have a corresponding `tool_result` block in the next "
        "message.",
    )
    result = {"type": "tool_result", "tool_use_id": "t9", "content": "x"}
    status, message = _error(
        srv.url(MESSAGES),
        _anthropic({"role": "assistant", "content": "hm"}, {"role": "user", "content": [result]}),
    )
    assert status == 400 and "unexpected `tool_use_id` found in `tool_result` blocks: t9" in message


# --- the official SDKs read the fake's tool calls -----------------------------------------


def test_openai_sdk_reads_tool_calls_and_sends_results(srv: FakeLLMServer) -> None:
    openai = pytest.importorskip("openai", reason="the openai SDK is not installed (dev extra)")
    with openai.OpenAI(base_url=srv.url("/v1"), api_key="test", max_retries=0) as client:
        messages: list[Any] = [{"role": "user", "content": "Find Dune."}]
        first = client.chat.completions.create(model="gpt-x", messages=messages, tools=OPENAI_TOOLS)
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        (call,) = choice.message.tool_calls
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
        messages += [
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"title": "Dune"}'},
        ]
        second = client.chat.completions.create(
            model="gpt-x", messages=messages, tools=OPENAI_TOOLS
        )
    assert second.choices[0].message.content.startswith("reply to: Find Dune. #")
    assert second.choices[0].message.tool_calls is None
    assert srv.requests[1]["messages"][1]["tool_calls"][0]["id"] == call.id


def test_anthropic_sdk_reads_tool_use_and_sends_results(srv: FakeLLMServer) -> None:
    anthropic = pytest.importorskip(
        "anthropic", reason="the anthropic SDK is not installed (dev extra)"
    )
    with anthropic.Anthropic(base_url=srv.url(), api_key="test", max_retries=0) as client:
        messages: list[Any] = [{"role": "user", "content": "Find Dune."}]
        first = client.messages.create(
            model="claude-x", max_tokens=100, messages=messages, tools=ANTHROPIC_TOOLS
        )
        assert first.stop_reason == "tool_use"
        (use,) = [b for b in first.content if b.type == "tool_use"]
        jsonschema.validate(use.input, SCHEMAS[use.name])
        messages += [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Dune"}],
            },
        ]
        second = client.messages.create(
            model="claude-x", max_tokens=100, messages=messages, tools=ANTHROPIC_TOOLS
        )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    assert second.content[0].text.startswith("reply to: Find Dune. #")
