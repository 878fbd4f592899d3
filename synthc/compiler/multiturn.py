"""Drive a sample's multiturn attribute: its values in; the next request or the conversation out.

oumi's conversation synthesis, one cached node per call: a planner call
(``conv.plan``, retried as ``conv.plan.retry1`` / ``.retry2`` while its JSON does
not parse), then one call per turn (``conv.turn1``, ``conv.turn2``...), USER
first and alternating. Each turn's prompt is the speaker's persona, the
conversation so far and oumi's turn instruction, so a turn's key changes only
when something it reads changes: editing the assistant persona reruns the
assistant turns and whatever follows them, nothing before.

The number of turns is drawn per sample from (seed, sample, attribute) in
[min_turns, max_turns] and moved to an even number when it can be, so the
assistant speaks last (oumi's rule). ``{target_turns}`` and ``{current_turn}``
work in every template; oumi crashes on ``{current_turn}`` in a persona because
its planner formats personas before any turn exists: synthc gives the planner
turn 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from synthc.compiler.graph import LLMRule, MultiturnRule
from synthc.compiler.keys import unit_draw
from synthc.compiler.template import Template, TemplateError, render

MAX_PLAN_ATTEMPTS = 3
ROLES = ("user", "assistant")
SPECIAL_IDS = ("target_turns", "current_turn", "conversation_plan")

PLANNER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "turns": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"turn": {"type": "integer"}, "instruction": {"type": "string"}},
                "required": ["turn", "instruction"],
            },
        }
    },
    "required": ["turns"],
}

PLANNER_SYSTEM = (
    "You are a conversation planner. Create conversation outlines that flow logically from "
    "start to finish.\n\nIMPORTANT: Output your plan as a raw JSON object with a `turns` array. "
    "Do not use markdown or code fences. Each element of `turns` must have: turn (number) and "
    "instruction (string).\nYour instructions MUST be specific to the role context provided. "
    "Each turn's instruction should reflect what that specific role would do at that point in "
    "the conversation."
)
PLANNER_EXAMPLE = (
    "Plan a 4-turn conversation.\nTurn order: Turn 1: USER, Turn 2: ASSISTANT, Turn 3: USER, "
    "Turn 4: ASSISTANT\n\nRole context:\n[USER]\nYou are a customer who has an issue with a "
    "recent order.\n\n[ASSISTANT]\nYou are a helpful support agent who resolves customer "
    "issues.\n\nAdditional instructions: Focus on resolving the order issue efficiently while "
    "maintaining a polite and helpful tone."
)
PLANNER_EXAMPLE_ANSWER = (
    '{"turns": [\n'
    '  {"turn": 1, "instruction": "Greet support and explain the issue with the order"},\n'
    '  {"turn": 2, "instruction": "Acknowledge the issue and ask for order details"},\n'
    '  {"turn": 3, "instruction": "Provide order number and describe the problem further"},\n'
    '  {"turn": 4, "instruction": "Confirm the issue and offer a resolution"}\n'
    "]}"
)

# (step id, messages, extra request params) -> the step's text, None while it is pending
Ask = Callable[[str, list[tuple[str, str]], dict[str, Any]], "str | None"]


def target_turns(seed: int, sample: int, rule: MultiturnRule) -> int:
    """oumi's count: uniform in [min, max], then the nearest even count inside the range."""
    span = rule.max_turns - rule.min_turns + 1
    drawn = rule.min_turns + min(
        int(unit_draw(seed, sample, f"{rule.id}\x1dturns") * span), span - 1
    )
    if drawn % 2 == 0:
        return drawn
    if drawn + 1 <= rule.max_turns:
        return drawn + 1
    return drawn - 1 if drawn - 1 >= rule.min_turns else drawn


def step_rule(rule: MultiturnRule, name: str) -> LLMRule:
    """The rule a step's node belongs to: ``conv.turn2`` and so on."""
    return LLMRule(f"{rule.id}.{name}", (), rule.deps, rule.digest, rule.span)


def conversation(
    rule: MultiturnRule, values: dict[str, Any], turns: int, ask: Ask
) -> tuple[dict[str, Any], str] | None:
    """The finished conversation and raw plan, or None while a step is still pending.

    ``ask`` returns a step's text when it is known (cached or answered) and queues
    its request otherwise. Raises TemplateError when a template cannot be filled.
    """
    planned = _plan(rule, values, turns, ask)
    if planned is None:
        return None
    plan_text, instructions = planned
    history: list[tuple[str, str]] = []
    for turn in range(1, turns + 1):
        role = ROLES[(turn - 1) % 2]
        context = {
            **values,
            "target_turns": str(turns),
            "current_turn": str(turn),
            "conversation_plan": plan_text,
        }
        persona = render(rule.persona(role), context)
        messages = [
            ("system", persona),
            *history,
            ("user", _turn_info(turn, turns, role, instructions)),
        ]
        text = ask(f"turn{turn}", messages, {})
        if text is None:
            return None
        if not text.strip():
            raise TemplateError(f"turn {turn} came back empty")
        history.append((role, text.strip()))
    messages_out = [{"content": c, "role": r} for r, c in history]
    if rule.output_system_prompt is not None:
        context = {
            **values,
            "target_turns": str(turns),
            "current_turn": "1",
            "conversation_plan": plan_text,
        }
        system = render(rule.output_system_prompt, context).strip()
        messages_out.insert(0, {"content": system, "role": "system"})
    return {"messages": messages_out}, plan_text


def _turn_info(turn: int, turns: int, role: str, instructions: list[str]) -> str:
    instruction = instructions[turn - 1] if turn - 1 < len(instructions) else ""
    middle = f"For this turn: {instruction}\n\n" if instruction else ""
    return (
        f"You are generating turn {turn} of {turns} as the {role.upper()}.\n\n{middle}"
        "Generate ONLY your response for this turn. Stay in character."
    )


def _plan(
    rule: MultiturnRule, values: dict[str, Any], turns: int, ask: Ask
) -> tuple[str, list[str]] | None:
    messages = planner_messages(rule, values, turns)
    for attempt in range(MAX_PLAN_ATTEMPTS):
        name = "plan" if attempt == 0 else f"plan.retry{attempt}"
        text = ask(name, messages, {"guided_decoding": {"json": PLANNER_SCHEMA}})
        if text is None:
            return None
        parsed = parse_plan(text, turns)
        if parsed is not None:
            return text.strip(), parsed
    return "", [""] * turns  # oumi goes on without a plan


def planner_messages(
    rule: MultiturnRule, values: dict[str, Any], turns: int
) -> list[tuple[str, str]]:
    context = {**values, "target_turns": str(turns), "current_turn": "1", "conversation_plan": ""}
    order = ", ".join(f"Turn {t}: {ROLES[(t - 1) % 2].upper()}" for t in range(1, turns + 1))
    roles = "\n\n".join(f"[{p.role.upper()}]\n{render(p.template, context)}" for p in rule.personas)
    request = (
        f"Plan a {turns}-turn conversation.\nTurn order: {order}\n\nGuidelines:\n"
        "- Each turn should build on the previous turn.\n"
        f"- Pace the conversation naturally for {turns} turns.\n"
        "- Focus on what happens, not exact wording.\n"
        "- Instructions MUST be specific to the roles and context provided below.\n"
        f"\nRole context:\n{roles}\n"
    )
    if rule.planner is not None:
        request += f"\nAdditional instructions: {render(rule.planner, context)}\n"
    request += "\nOutput ONLY the JSON object. No markdown. No other text."
    return [
        ("system", PLANNER_SYSTEM),
        ("user", PLANNER_EXAMPLE),
        ("assistant", PLANNER_EXAMPLE_ANSWER),
        ("user", request),
    ]


def parse_plan(text: str, turns: int) -> list[str] | None:
    """Per-turn instructions from a planner reply, or None if it holds no ``turns`` list."""
    data = _json_object(text)
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        return None
    instructions = [""] * turns
    for item in data["turns"]:
        if not isinstance(item, dict):
            continue
        try:
            turn = int(item["turn"])
        except (KeyError, TypeError, ValueError):
            continue
        if 1 <= turn <= turns:
            instructions[turn - 1] = str(item.get("instruction", "")).strip()
    return instructions


def _json_object(text: str) -> Any:
    text = text.strip()
    for candidate in (text, text[text.find("{") : text.rfind("}") + 1]):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def templates(rule: MultiturnRule) -> list[Template]:
    found = [p.template for p in rule.personas]
    found += [t for t in (rule.output_system_prompt, rule.planner) if t is not None]
    return found
