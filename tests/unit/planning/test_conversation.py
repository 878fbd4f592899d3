"""oumi 0.9's multiturn semantics: rounds, the prompts that name them, the row's shape."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import synthc
from synthc.compiler.graph import MultiturnRule
from synthc.core.messages import Message
from synthc.planning.conversation import parse_plan, planner_messages, rounds, target_turns
from tests.unit.planning.scripted import Scripted, StepRefused, converse

CONFIG = """\
num_samples: 4
strategy_params:
  sampled_attributes:
    - id: topic
      name: Topic
      description: what it is about
      possible_values: [{id: tea, name: Tea, description: the drink}]
  multiturn_attributes:
    - id: chat
      min_turns: MIN
      max_turns: MAX
      role_instruction_messages:
        USER: "You ask about {topic}; {target_turns} turns in all."
        ASSISTANT: "You answer."
      output_system_prompt: "Talk about {topic}."
"""


class Echo(Scripted):
    """Answers every step: a plan with one instruction, each turn with its prompt's last
    message's first line."""

    def reply(self, name: str, messages: list[Message], extra: dict[str, Any]) -> str:
        if name.startswith("plan"):
            return '{"turns": [{"turn": 1, "instruction": "greet"}]}'
        return messages[-1].content.splitlines()[0]


def _rule(tmp_path: Path, low: int, high: int) -> tuple[MultiturnRule, dict[str, Any], int]:
    config = tmp_path / "chat.yaml"
    config.write_text(CONFIG.replace("MIN", str(low)).replace("MAX", str(high)))
    graph = synthc.compile(config)
    rule = next(r for r in graph.rules if isinstance(r, MultiturnRule))
    return rule, graph.sampler.draw(0), graph.seed


@pytest.mark.parametrize("count", [1, 2, 3])
def test_min_and_max_turns_count_rounds_of_a_user_and_an_assistant_message(
    tmp_path: Path, count: int
) -> None:
    rule, values, seed = _rule(tmp_path, count, count)
    assert rounds(seed, 0, rule) == count
    assert target_turns(seed, 0, rule) == 2 * count
    echo = Echo()
    result = converse(rule, values, target_turns(seed, 0, rule), echo)
    assert result is not None
    messages = result[0]["messages"]
    assert messages[0] == {"content": "Talk about Tea.", "role": "system"}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * count
    assert list(result[0]) == ["messages"]  # no tools offered, no tools key
    # every prompt names the message count, as oumi 0.9's "turn t of 2R" does
    total = 2 * count
    assert [m["content"] for m in messages[1:]] == [
        f"You are generating turn {t} of {total} as the {'USER' if t % 2 else 'ASSISTANT'}."
        for t in range(1, total + 1)
    ]
    assert echo.asked["turn1"][0][0].content == f"You ask about Tea; {total} turns in all."
    planned = planner_messages(rule, values, total, [])[-1].content
    assert planned.startswith(f"Plan a {total}-turn conversation.\nTurn order: Turn 1: USER, ")
    assert planned.count("Turn ") == total + 1  # "Turn order:" and one per message


def test_user_turns_are_stripped_and_assistant_turns_kept_as_written(tmp_path: Path) -> None:
    rule, values, _ = _rule(tmp_path, 1, 1)

    class Padded(Scripted):
        def reply(self, name: str, messages: list[Message], extra: dict[str, Any]) -> str:
            return '{"turns": []}' if name == "plan" else f"  {name} said\n"

    result = converse(rule, values, 2, Padded())
    assert result is not None
    assert [m["content"] for m in result[0]["messages"][1:]] == ["turn1 said", "  turn2 said\n"]


def test_round_counts_are_uniform_over_the_range(tmp_path: Path) -> None:
    rule, _, seed = _rule(tmp_path, 2, 5)
    counts = Counter(rounds(seed, i, rule) for i in range(8000))
    assert set(counts) == {2, 3, 4, 5}
    assert all(abs(n / 8000 - 0.25) < 0.02 for n in counts.values())  # 4 sd at 8,000 draws


def test_raising_max_turns_moves_only_samples_that_now_draw_a_new_count(tmp_path: Path) -> None:
    rule, _, seed = _rule(tmp_path, 2, 4)
    wider = replace(rule, max_turns=6)
    before = [rounds(seed, i, rule) for i in range(3000)]
    after = [rounds(seed, i, wider) for i in range(3000)]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert all(a in (5, 6) for _, a in moved)  # a sample keeps its count or draws a new one
    assert abs(len(moved) / 3000 - 2 / 5) < 0.04  # and as many move as must: 2 of 5 counts


def test_the_planner_sees_persona_braces_doubled_as_oumi_sends_them(tmp_path: Path) -> None:
    """oumi doubles the braces of the role context for a formatting pass it never makes."""
    rule, values, _ = _rule(tmp_path, 1, 1)
    config = tmp_path / "chat.yaml"
    config.write_text(config.read_text().replace('"You answer."', '"Answer as {{\\"a\\": 1}}."'))
    graph = synthc.compile(config)
    rule = next(r for r in graph.rules if isinstance(r, MultiturnRule))
    planned = planner_messages(rule, values, 2, [])[-1].content
    assert '[ASSISTANT]\nAnswer as {{"a": 1}}.' in planned
    echo = Echo()
    converse(rule, values, 2, echo)
    assert echo.asked["turn2"][0][0].content == 'Answer as {"a": 1}.'


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            '{"turns": [{"turn": "2", "instruction": " b "}, {"turn": 1, "instruction": "a"}]}',
            ["a", "b"],
        ),
        (
            '{"turns": [{"turn": 1.0, "instruction": "a"}, {"turn": 3, "instruction": "c"}]}',
            ["", ""],
        ),
        ('Here:\n```json\n{"turns": [{"turn": 2, "instruction": "b"}]}\n```', ["", "b"]),
        ('Sure. {"turns": []} Done.', ["", ""]),
        ('{"steps": []}', None),
        ("", None),
    ],
)
def test_plans_are_read_as_oumi_reads_them(reply: str, expected: list[str] | None) -> None:
    """oumi's ``_parse_plan``: JSON found in a fence or between the outer braces; a turn
    is an int or text holding one (a float is skipped); turns out of range are ignored."""
    assert parse_plan(reply, 2) == expected


class NoPlan(Scripted):
    """The planner never answers with a plan; ``parsed_at`` names the attempt that does."""

    def __init__(self, parsed_at: str = "") -> None:
        super().__init__()
        self.parsed_at = parsed_at

    def reply(self, name: str, messages: list[Message], extra: dict[str, Any]) -> str:
        if name == self.parsed_at or not name.startswith("plan"):
            return Echo().reply(name, messages, extra)
        return "I would rather chat."


def test_a_plan_is_asked_for_three_times_and_only_the_last_attempt_must_parse(
    tmp_path: Path,
) -> None:
    """Attempts before the last are the conversation's history (cached whatever they
    say); the last one is checked, so a plan that never parses fails the conversation
    instead of leaving an empty plan (oumi 0.9 goes on without one)."""
    rule, values, seed = _rule(tmp_path, 1, 1)
    turns = target_turns(seed, 0, rule)
    never = NoPlan()
    with pytest.raises(StepRefused, match=r"plan\.retry2: the planner's reply is not a JSON"):
        converse(rule, values, turns, never)
    assert never.order == ["plan", "plan.retry1", "plan.retry2"]
    late = NoPlan(parsed_at="plan.retry2")
    result = converse(rule, values, turns, late)
    assert result is not None and result[1].startswith('{"turns"')
    assert late.order == ["plan", "plan.retry1", "plan.retry2", "turn1", "turn2"]
