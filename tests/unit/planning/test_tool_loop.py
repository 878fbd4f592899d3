"""The assistant's tool loop, driven step by step through a conversation's ``Ask``."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import synthc
from synthc.compiler.graph import MultiturnRule
from synthc.core.messages import Message, ToolCall
from synthc.planning.conversation import STRAGGLER_NUDGE, Cursor
from tests.conftest import OUMI_EXAMPLES
from tests.unit.planning.scripted import Reply, Scripted, converse


class Script(Scripted):
    """Answers steps from a table."""

    def __init__(self, replies: dict[str, Reply]):
        super().__init__()
        self.replies = replies

    def reply(self, name: str, messages: list[Message], extra: dict[str, Any]) -> Reply | None:
        if name.startswith("plan"):
            return '{"turns": []}'
        if name in self.replies:
            return self.replies[name]
        if name.startswith("turn") and "." not in name:
            return f"text of {name}"
        return None


def _rule(config: Path) -> tuple[MultiturnRule, dict[str, Any]]:
    """The config's multiturn rule and sample 0's values (generated ones made up)."""
    graph = synthc.compile(config)
    rule = next(r for r in graph.rules if isinstance(r, MultiturnRule))
    values = {**graph.sampler.draw(0), **{d: f"<{d}>" for d in rule.deps}}
    return rule, {**values, **graph.sampler.draw(0)}


def _calls(*calls: tuple[str, dict[str, Any]]) -> Message:
    return Message(
        "assistant",
        "",
        tuple(
            ToolCall(f"call_{i}", name, json.dumps(args)) for i, (name, args) in enumerate(calls)
        ),
    )


def _library(tmp_path: Path) -> tuple[MultiturnRule, dict[str, Any]]:
    shutil.copy(OUMI_EXAMPLES / "library_tool_use_synth.yaml", tmp_path / "lib.yaml")
    return _rule(tmp_path / "lib.yaml")


def test_tool_calls_are_answered_locally_then_the_model_answers(tmp_path: Path) -> None:
    rule, values = _library(tmp_path)
    script = Script(
        {
            "turn2": _calls(("lookup_book_status", {"book_id": "B003"}), ("list_book_catalog", {})),
            "turn2.r2": "1984 is available.",
        }
    )
    result = converse(rule, values, 2, script)
    assert result is not None
    messages = result[0]["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    assert messages[2]["tool_calls"][0]["function"] == {
        "name": "lookup_book_status",
        "arguments": '{"book_id": "B003"}',
    }
    assert json.loads(messages[3]["content"]) == {"title": "1984", "status": "available"}
    assert messages[3]["tool_call_id"] == "call_0"
    assert messages[5]["content"] == "1984 is available."
    sent, extra = script.asked["turn2.r2"]
    assert [m.role for m in sent[-3:]] == ["assistant", "tool", "tool"]  # the round so far
    assert [t["function"]["name"] for t in extra["tools"]] == [
        "list_book_catalog",
        "lookup_book_status",
    ]
    assert "tools" not in script.asked["turn1"][1]  # the user simulator gets no tools


def test_bad_calls_come_back_to_the_model_as_errors(tmp_path: Path) -> None:
    rule, values = _library(tmp_path)
    script = Script(
        {
            "turn2": _calls(
                ("renew_book", {"book_id": "B001"}),
                ("lookup_book_status", {"id": "B001"}),
                ("lookup_book_status", {"book_id": "B404"}),
            ),
            "turn2.r2": "Sorry.",
        }
    )
    result = converse(rule, values, 2, script)
    assert result is not None
    errors = [
        json.loads(m["content"])["error"] for m in result[0]["messages"] if m["role"] == "tool"
    ]
    assert errors[0].startswith("Unknown tool 'renew_book'. Known: ['list_book_catalog'")
    assert "'book_id' is a required property" in errors[1]
    assert errors[2].startswith("Tool 'lookup_book_status' raised: No lookup output matches")


def test_the_round_limit_forces_a_final_answer_without_tools(tmp_path: Path) -> None:
    rule, values = _library(tmp_path)  # max_consecutive_tool_turns: 6
    again = _calls(("list_book_catalog", {}))
    replies: dict[str, Reply] = {"turn2": again, **{f"turn2.r{k}": again for k in range(2, 7)}}
    script = Script({**replies, "turn2.final": "Here is the catalog."})
    result = converse(rule, values, 2, script)
    assert result is not None
    assert "turn2.r7" not in script.asked
    sent, extra = script.asked["turn2.final"]
    assert sent[-1] == Message("user", STRAGGLER_NUDGE) and extra == {}
    messages = result[0]["messages"]
    assert messages[-1] == {"content": "Here is the catalog.", "role": "assistant"}
    assert STRAGGLER_NUDGE not in json.dumps(messages)
    assert sum(m["role"] == "tool" for m in messages) == 6


def test_a_pending_step_stops_the_replay(tmp_path: Path) -> None:
    rule, values = _library(tmp_path)
    script = Script({"turn2": _calls(("list_book_catalog", {}))})  # turn2.r2 unanswered
    assert converse(rule, values, 2, script) is None
    assert "turn2.r2" in script.asked


def test_simulated_tools_are_model_steps_cached_by_input(tmp_path: Path) -> None:
    """A round's calls are answered in call order, each once; identical calls to a tool
    cached by input share one draw (one node for the whole build)."""
    shutil.copy(OUMI_EXAMPLES / "mcp_docs_lookup_synth.yaml", tmp_path / "mcp.yaml")
    rule, values = _rule(tmp_path / "mcp.yaml")
    react = ("resolve_library_id", {"name": "react"})
    script = Script({"turn2": _calls(react, react, ("resolve_library_id", {"name": "vue"}))})
    cursor = Cursor(rule, values, 2, [])
    assert cursor.advance(script) is None  # the first simulation is pending
    assert [n for n in script.asked if ".call" in n] == ["turn2.call1"]
    sent, extra = script.asked["turn2.call1"]
    assert sent[0].content.startswith("You are simulating an MCP-style documentation server")
    assert "You are simulating the `resolve_library_id` tool." in sent[0].content
    assert json.loads(sent[1].content) == {
        "arguments": {"name": "react"},
        "tool": "resolve_library_id",
    }
    assert extra["guided_decoding"]["json"]["required"] == ["library_id", "candidates"]
    assert script.shared["turn2.call1"] == 'simulated\x1fresolve_library_id::{"name": "react"}'
    react_says = '{"library_id": "/facebook/react", "candidates": []}'
    script.replies["turn2.call1"] = react_says
    assert cursor.advance(script) is None  # from where it stopped: the second call
    assert script.shared["turn2.call2"] == script.shared["turn2.call1"]
    assert script.asked["turn2.call2"] == script.asked["turn2.call1"]  # so one node, one key
    script.replies["turn2.call2"] = react_says
    script.replies["turn2.call3"] = '{"library_id": "/vuejs/core"}'  # misses "candidates"
    script.replies["turn2.r2"] = "Done."
    before = len(script.order)
    result = cursor.advance(script)
    assert result is not None
    # the pending call for its answer, then the rest: nothing before it is taken again
    assert script.order[before:] == ["turn2.call2", "turn2.call3", "turn2.r2"]
    tools = [m["content"] for m in result[0]["messages"] if m["role"] == "tool"]
    assert tools[0] == tools[1] == react_says
    assert "'candidates' is a required property" in json.loads(tools[2])["error"]


def test_a_conversation_with_tools_lists_them_as_oumi_does(tmp_path: Path) -> None:
    rule, values = _library(tmp_path)
    script = Script(
        {"turn2": _calls(("lookup_book_status", {"book_id": "B003"})), "turn2.r2": "ok"}
    )
    result = converse(rule, values, 2, script)
    assert result is not None
    row = result[0]
    assert list(row) == ["messages", "tools"]
    # a message that only calls tools: content null, written after the calls (oumi 0.9)
    assert row["messages"][2] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "lookup_book_status", "arguments": '{"book_id": "B003"}'},
            }
        ],
        "content": None,
    }
    assert row["tools"] == [
        {
            "function": {
                "name": "list_book_catalog",
                "description": "List all books in the library catalog with their book_ids.",
                "parameters": {"type": "object", "properties": {}},
            }
        },
        {
            "function": {
                "name": "lookup_book_status",
                "description": "Look up borrow status for a book by book_id. Returns title, "
                "status,\nand (when checked out) due_date.\n",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "book_id": {
                            "type": "string",
                            "description": "Catalog ID of the book (from list_book_catalog).",
                        }
                    },
                    "required": ["book_id"],
                },
            }
        },
    ]


def test_listed_tool_schemas_follow_oumis_key_order_and_drop_nulls(tmp_path: Path) -> None:
    rule, _ = _library(tmp_path)
    assert rule.toolset is not None
    tool = rule.toolset.offered[0]
    schema = {
        "additionalProperties": False,
        "required": ["q"],
        "properties": {"q": {"default": None, "description": "text", "type": "string"}},
        "type": "object",
    }
    listed = replace(tool, parameters=schema).listed()["function"]["parameters"]
    assert json.dumps(listed) == json.dumps(
        {
            "type": "object",
            "properties": {"q": {"type": "string", "description": "text"}},
            "required": ["q"],
            "additionalProperties": False,
        }
    )
