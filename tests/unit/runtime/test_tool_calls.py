"""Tool calls through the real HTTP backends and a real local server: wire shapes both ways."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from synthc.core.messages import Completion, Message, Outcome, Request, RequestFailure, ToolCall
from synthc.runtime.backends import create_backend
from synthc.runtime.config import EndpointConfig
from synthc.testing import FakeLLMServer, Fault

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
BOTH = pytest.mark.parametrize(("engine", "path"), [("OPENAI", CHAT), ("ANTHROPIC", MESSAGES)])

GET_PATIENT = {
    "type": "object",
    "properties": {"patient_id": {"type": "string"}},
    "required": ["patient_id"],
}
RECORD_VITALS = {
    "type": "object",
    "properties": {
        "patient_id": {"type": "string"},
        "hr": {"type": "integer", "minimum": 30},
        "temp_f": {"type": "number"},
    },
    "required": ["patient_id", "hr", "temp_f"],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_patient",
            "description": "Return a patient's record.",
            "parameters": GET_PATIENT,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "record_vitals",
            "description": "Append vitals.",
            "parameters": RECORD_VITALS,
        },
    },
]
SCHEMAS = {"get_patient": GET_PATIENT, "record_vitals": RECORD_VITALS}
ASK = (Message("system", "You are an EHR agent."), Message("user", "Check P001."))


@pytest.fixture
def srv() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def _send(engine: str, url: str, *requests: Request) -> list[Outcome]:
    async def go() -> list[Outcome]:
        backend = create_backend(EndpointConfig(engine, "m-1", url, "k"))
        try:
            return [(await backend.generate([r]))[0] for r in requests]
        finally:
            await backend.aclose()

    return asyncio.run(go())


def _completion(outcome: Outcome) -> Completion:
    assert isinstance(outcome, Completion), outcome
    return outcome


def _follow_up(calls: tuple[ToolCall, ...], **params: Any) -> Request:
    """The conversation after ``calls``: the assistant's calls, then one result each."""
    results = [Message("tool", f'{{"ok": "{c.name}"}}', tool_call_id=c.id) for c in calls]
    messages = (*ASK, Message("assistant", "", tool_calls=calls), *results)
    return Request("m-1", messages, params)


# --- the default fake model: a tool call, then text once results arrive --------------


@BOTH
def test_offered_tools_get_a_call_then_results_get_text(
    srv: FakeLLMServer, engine: str, path: str
) -> None:
    first = _completion(_send(engine, srv.url(path), Request("m-1", ASK, {"tools": TOOLS}))[0])
    assert first.text == "" and len(first.tool_calls) == 1
    call = first.tool_calls[0]
    jsonschema.validate(json.loads(call.arguments), SCHEMAS[call.name])
    assert first.finish_reason in ("tool_calls", "tool_use")

    second = _completion(_send(engine, srv.url(path), _follow_up(first.tool_calls, tools=TOOLS))[0])
    assert second.tool_calls == () and second.text.startswith("reply to: Check P001.")
    assert srv.count == 2


@BOTH
def test_the_same_request_gets_the_same_call_and_id(
    srv: FakeLLMServer, engine: str, path: str
) -> None:
    request = Request("m-1", ASK, {"tools": TOOLS})
    one, two = _send(engine, srv.url(path), request, request)
    assert _completion(one).tool_calls == _completion(two).tool_calls


@BOTH
def test_scripted_calls_come_back_with_names_json_arguments_and_text(
    srv: FakeLLMServer, engine: str, path: str
) -> None:
    vitals = {"patient_id": "P001", "hr": 72, "temp_f": 98.4}
    srv.reply = lambda body: {
        "content": "Looking that up.",
        "tool_calls": [
            {"name": "get_patient", "arguments": {"patient_id": "P001"}},
            {"name": "record_vitals", "arguments": vitals},
        ],
    }
    done = _completion(_send(engine, srv.url(path), Request("m-1", ASK, {"tools": TOOLS}))[0])
    assert done.text == "Looking that up."
    assert [c.name for c in done.tool_calls] == ["get_patient", "record_vitals"]
    assert [json.loads(c.arguments) for c in done.tool_calls] == [{"patient_id": "P001"}, vitals]
    assert len({c.id for c in done.tool_calls}) == 2


# --- what goes over the wire ----------------------------------------------------


def test_openai_wire_shapes_for_tools_calls_and_results(srv: FakeLLMServer) -> None:
    calls = (
        ToolCall("call_a", "get_patient", '{"patient_id": "P001"}'),
        ToolCall("call_b", "get_patient", '{"patient_id": "P002"}'),
    )
    request = _follow_up(calls, tools=TOOLS, tool_choice="auto")
    _completion(_send("OPENAI", srv.url(CHAT), request)[0])
    body = srv.requests[0]
    assert body["tools"] == TOOLS and body["tool_choice"] == "auto"
    assert body["messages"][2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_patient", "arguments": '{"patient_id": "P001"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_patient", "arguments": '{"patient_id": "P002"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"ok": "get_patient"}'},
        {"role": "tool", "tool_call_id": "call_b", "content": '{"ok": "get_patient"}'},
    ]


def test_openai_sends_no_tool_fields_without_tools_even_after_tool_traffic(
    srv: FakeLLMServer,
) -> None:
    calls = (ToolCall("call_a", "get_patient", '{"patient_id": "P001"}'),)
    history = _follow_up(calls).messages  # oumi's final nudge: tool history, no tools offered
    nudge = Request("m-1", (*history, Message("user", "Wrap up.")), {"tool_choice": "auto"})
    done = _completion(_send("OPENAI", srv.url(CHAT), nudge)[0])
    assert done.text.startswith("reply to: Wrap up.")
    assert "tools" not in srv.requests[0] and "tool_choice" not in srv.requests[0]


def test_anthropic_wire_shapes_merge_results_and_alternate_roles(srv: FakeLLMServer) -> None:
    calls = (
        ToolCall("toolu_a", "get_patient", '{"patient_id": "P001"}'),
        ToolCall("toolu_b", "record_vitals", '{"patient_id": "P001", "hr": 72, "temp_f": 98.4}'),
    )
    messages = (
        *ASK,
        Message("assistant", "Let me look.", tool_calls=calls),
        Message("tool", "record", tool_call_id="toolu_a"),
        Message("tool", "saved", tool_call_id="toolu_b"),
        Message("user", "Now summarise."),
    )
    done = _completion(
        _send("ANTHROPIC", srv.url(MESSAGES), Request("m-1", messages, {"tools": TOOLS}))[0]
    )
    assert done.text.startswith("reply to: Now summarise.")
    body = srv.requests[0]
    assert body["system"] == "You are an EHR agent."
    assert body["tools"] == [
        {
            "name": "get_patient",
            "description": "Return a patient's record.",
            "input_schema": GET_PATIENT,
        },
        {"name": "record_vitals", "description": "Append vitals.", "input_schema": RECORD_VITALS},
    ]
    assert body["messages"] == [
        {"role": "user", "content": "Check P001."},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_a",
                    "name": "get_patient",
                    "input": {"patient_id": "P001"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_b",
                    "name": "record_vitals",
                    "input": {"patient_id": "P001", "hr": 72, "temp_f": 98.4},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "record"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "saved"},
                {"type": "text", "text": "Now summarise."},
            ],
        },
    ]


def test_anthropic_merges_adjacent_plain_messages_of_one_role(srv: FakeLLMServer) -> None:
    messages = (Message("user", "First."), Message("user", "Second."), Message("assistant", "Ok."))
    _completion(_send("ANTHROPIC", srv.url(MESSAGES), Request("m-1", messages, {}))[0])
    assert srv.requests[0]["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
        },
        {"role": "assistant", "content": "Ok."},
    ]


def test_anthropic_without_tools_names_the_used_ones_and_forbids_calls(srv: FakeLLMServer) -> None:
    calls = (ToolCall("toolu_a", "get_patient", '{"patient_id": "P001"}'),)
    history = _follow_up(calls).messages
    nudge = Request("m-1", (*history, Message("user", "Wrap up.")), {})
    done = _completion(_send("ANTHROPIC", srv.url(MESSAGES), nudge)[0])
    assert done.tool_calls == () and done.text.startswith("reply to: Wrap up.")
    body = srv.requests[0]
    assert body["tools"] == [{"name": "get_patient", "input_schema": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "none"}


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]", '"text"', ""])
def test_anthropic_sends_arguments_that_are_not_an_object_as_empty_input(
    srv: FakeLLMServer, arguments: str
) -> None:
    calls = (ToolCall("toolu_a", "get_patient", arguments),)
    _completion(_send("ANTHROPIC", srv.url(MESSAGES), _follow_up(calls, tools=TOOLS))[0])
    assistant = srv.requests[0]["messages"][1]
    assert assistant["content"] == [
        {"type": "tool_use", "id": "toolu_a", "name": "get_patient", "input": {}}
    ]


@pytest.mark.parametrize(
    ("choice", "wire", "called"),
    [
        ("none", {"type": "none"}, None),
        ("required", {"type": "any"}, "some tool"),
        (
            {"type": "function", "function": {"name": "record_vitals"}},
            {"type": "tool", "name": "record_vitals"},
            "record_vitals",
        ),
    ],
)
def test_tool_choice_is_translated_for_anthropic_and_honoured(
    srv: FakeLLMServer, choice: Any, wire: dict[str, str], called: str | None
) -> None:
    request = Request("m-1", ASK, {"tools": TOOLS, "tool_choice": choice})
    anthropic, openai = _send("ANTHROPIC", srv.url(MESSAGES), request) + _send(
        "OPENAI", srv.url(CHAT), request
    )
    assert srv.requests[0]["tool_choice"] == wire and srv.requests[1]["tool_choice"] == choice
    for done in (_completion(anthropic), _completion(openai)):
        names = [c.name for c in done.tool_calls]
        if called is None:
            assert names == []
        elif called == "some tool":
            assert len(names) == 1 and names[0] in SCHEMAS
        else:
            assert names == [called]


# --- replies the backends refuse --------------------------------------------------

OPENAI_BAD = [
    ({"function": {"arguments": "{}"}}, "message.tool_calls[0].function has no name"),
    (
        {"id": "c", "function": {"name": "f", "arguments": {"a": 1}}},
        "arguments is dict, not a JSON string",
    ),
    ({"id": "c", "type": "function"}, "message.tool_calls[0] has no function object"),
]


@pytest.mark.parametrize(("call", "text"), OPENAI_BAD)
def test_openai_malformed_tool_calls_are_retryable_failures(
    srv: FakeLLMServer, call: dict[str, Any], text: str
) -> None:
    reply = {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}
    srv.faults = lambda body, index: Fault(status=200, body=reply)
    outcome = _send("OPENAI", srv.url(CHAT), Request("m-1", ASK, {"tools": TOOLS}))[0]
    assert isinstance(outcome, RequestFailure) and outcome.retryable
    assert outcome.message.startswith("malformed reply: ") and text in outcome.message


def test_openai_tool_calls_not_a_list_and_nothing_at_all_fail(srv: FakeLLMServer) -> None:
    replies = [
        {"choices": [{"message": {"content": None, "tool_calls": {"id": "c"}}}]},
        {"choices": [{"message": {"content": None, "tool_calls": []}}]},
        {"choices": [{"message": {"content": None}}]},
    ]
    srv.faults = lambda body, index: Fault(status=200, body=replies[index])
    outcomes = _send("OPENAI", srv.url(CHAT), *[Request("m-1", ASK, {})] * 3)
    assert outcomes == [
        RequestFailure("malformed reply: message.tool_calls is not a list", True),
        RequestFailure("empty completion", True),
        RequestFailure("empty completion", True),
    ]


@pytest.mark.parametrize(
    ("block", "text"),
    [
        ({"type": "tool_use", "id": "t", "input": {}}, "tool_use block 0 has no name"),
        (
            {"type": "tool_use", "id": "t", "name": "f", "input": "{}"},
            "tool_use block 0 input is not an object",
        ),
    ],
)
def test_anthropic_malformed_tool_use_is_a_retryable_failure(
    srv: FakeLLMServer, block: dict[str, Any], text: str
) -> None:
    reply = {"content": [block], "stop_reason": "tool_use"}
    srv.faults = lambda body, index: Fault(status=200, body=reply)
    outcome = _send("ANTHROPIC", srv.url(MESSAGES), Request("m-1", ASK, {"tools": TOOLS}))[0]
    assert outcome == RequestFailure(f"malformed reply: {text}", True)


def test_a_server_without_call_ids_gets_positional_ones(srv: FakeLLMServer) -> None:
    call = {"type": "function", "function": {"name": "get_patient", "arguments": "{}"}}
    reply = {"choices": [{"message": {"content": "", "tool_calls": [call, call]}}]}
    srv.faults = lambda body, index: Fault(status=200, body=reply)
    done = _completion(_send("OPENAI", srv.url(CHAT), Request("m-1", ASK, {"tools": TOOLS}))[0])
    assert [c.id for c in done.tool_calls] == ["call_0", "call_1"]


def test_guided_decoding_goes_to_openai_only(srv: FakeLLMServer) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    request = Request("m-1", ASK, {"guided_decoding": {"json": schema}})
    openai, anthropic = _send("OPENAI", srv.url(CHAT), request) + _send(
        "ANTHROPIC", srv.url(MESSAGES), request
    )
    assert json.loads(_completion(openai).text) == {"n": 1}
    assert srv.requests[0]["response_format"]["json_schema"]["schema"] == schema
    assert "output_config" not in srv.requests[1]  # like oumi: see anthropic.py
    assert _completion(anthropic).text.startswith("reply to:")
