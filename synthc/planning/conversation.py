"""Drive a sample's multiturn attribute: its values in; the next request or the conversation out.

oumi's conversation synthesis, one cached node per call: a planner call
(``conv.plan``, retried as ``conv.plan.retry1`` / ``.retry2`` while its JSON does
not parse), then one call per turn (``conv.turn1``, ``conv.turn2``...), USER
first and alternating. Each turn's prompt is the speaker's persona, the
conversation so far and oumi's turn instruction, so a turn's key changes only
when something it reads changes: editing the assistant persona reruns the
assistant turns and whatever follows them, nothing before.

``min_turns``/``max_turns`` count *rounds*, a USER message and the ASSISTANT's
reply, as in oumi 0.9: a sample drawing R rounds has 2R turns, and its prompts
say "turn t of 2R" (``{target_turns}`` is 2R). R is drawn per sample from (seed,
sample, attribute), uniform in [min_turns, max_turns]. ``{target_turns}`` and
``{current_turn}`` work in every template; oumi crashes on ``{current_turn}`` in
a persona because its planner formats personas before any turn exists: synthc
gives the planner turn 1. USER turns are stripped of surrounding whitespace,
ASSISTANT turns are kept as the model wrote them (oumi 0.9 does the same).

With tools (``available_environments`` / ``available_tools``) an assistant turn
is oumi's native tool-calling loop: each round is a node (``conv.turn2``,
``conv.turn2.r2``...) offered the tools; its tool calls are answered locally by
the sample's own environments (:mod:`synthc.compiler.environments`) or, for a
simulated tool, by a node of its own (``conv.turn2.call1``); after
``max_consecutive_tool_turns`` rounds, ``conv.turn2.final`` asks for an answer
without tools. Grounding facts drawn per sample go into the planner prompt.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from synthc.compiler.environments import (
    Session,
    ToolError,
    grounding_block,
    json_object_in,
    parse_simulated,
    simulator_messages,
)
from synthc.compiler.graph import SPECIAL_IDS, LLMRule, MultiturnRule
from synthc.compiler.template import Template, TemplateError, render
from synthc.core.keys import unit_draw
from synthc.core.messages import Message, ToolCall

MAX_PLAN_ATTEMPTS = 3
ROLES = ("user", "assistant")

# oumi 0.9's PLANNER_JSON_SCHEMA (pydantic's schema of its PlannerOutput), as it sends it
PLANNER_SCHEMA: dict[str, Any] = {
    "$defs": {
        "PlannedTurn": {
            "additionalProperties": False,
            "description": "A single turn in a planned multi-turn conversation.",
            "properties": {
                "turn": {
                    "description": "1-indexed turn number.",
                    "title": "Turn",
                    "type": "integer",
                },
                "instruction": {
                    "description": "What should happen on this turn.",
                    "title": "Instruction",
                    "type": "string",
                },
            },
            "required": ["turn", "instruction"],
            "title": "PlannedTurn",
            "type": "object",
        }
    },
    "additionalProperties": False,
    "description": "Top-level planner output: a list of planned turns wrapped in an object.",
    "properties": {
        "turns": {"items": {"$ref": "#/$defs/PlannedTurn"}, "title": "Turns", "type": "array"}
    },
    "required": ["turns"],
    "title": "PlannerOutput",
    "type": "object",
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


class Ask(Protocol):
    """Asks for a step: (step id, messages, extra request params) in; the step's reply (its
    text, or the assistant message when it calls tools) out, None while it is pending.

    ``shared`` names a draw every sample shares: a simulated tool call cached by input
    is answered once per build, as oumi 0.9's stateless simulated environment (one per
    build, its cache with it) answers it once, whichever conversation asks.
    """

    def __call__(
        self, name: str, messages: list[Message], extra: dict[str, Any], shared: str | None = None
    ) -> str | Message | None: ...


STRAGGLER_NUDGE = (
    "Stop calling tools. Based on the information gathered so far, provide a final "
    "natural-language answer to the user."
)


def rounds(seed: int, sample: int, rule: MultiturnRule) -> int:
    """The rounds sample ``sample`` gets: uniform in [min_turns, max_turns].

    Every count in the range scores a draw from (seed, sample, attribute, count) and
    the highest score wins (rendezvous hashing): widening the range moves only the
    samples whose winner is a new count, so raising ``max_turns`` reruns few
    conversations, and the rest keep their count and their cached turns.
    """
    return max(
        range(rule.min_turns, rule.max_turns + 1),
        key=lambda count: unit_draw(seed, sample, f"{rule.id}\x1drounds\x1d{count}"),
    )


def target_turns(seed: int, sample: int, rule: MultiturnRule) -> int:
    """The number of messages sample ``sample``'s conversation has: two per round."""
    return len(ROLES) * rounds(seed, sample, rule)


def step_rule(rule: MultiturnRule, name: str) -> LLMRule:
    """The rule a step's node belongs to: ``conv.turn2`` and so on."""
    return LLMRule(f"{rule.id}.{name}", (), rule.deps, rule.digest, rule.span)


def conversation(
    rule: MultiturnRule,
    values: dict[str, Any],
    turns: int,
    ask: Ask,
    facts: list[dict[str, Any]],
) -> tuple[dict[str, Any], str] | None:
    """The finished conversation and raw plan, or None while a step is still pending.

    ``ask`` returns a step's reply when it is known (cached or answered) and queues
    its request otherwise. ``facts`` ground the planner (tool environments' grounding).
    Raises TemplateError when a template cannot be filled.
    """
    planned = _plan(rule, values, turns, ask, facts)
    if planned is None:
        return None
    plan_text, instructions = planned
    session = rule.toolset.session() if rule.toolset is not None else None
    try:
        history = _turns(rule, values, turns, ask, plan=(plan_text, instructions), session=session)
    finally:
        if session is not None:
            session.close()
    if history is None:
        return None
    messages_out = [_message_dict(m) for m in history]
    if rule.output_system_prompt is not None:
        system = render(rule.output_system_prompt, _context(values, turns, 1, plan_text)).strip()
        messages_out.insert(0, {"content": system, "role": "system"})
    out: dict[str, Any] = {"messages": messages_out}
    if rule.toolset is not None and rule.toolset.offered:
        out["tools"] = rule.toolset.listing()
    return out, plan_text


def _turns(
    rule: MultiturnRule,
    values: dict[str, Any],
    turns: int,
    ask: Ask,
    *,
    plan: tuple[str, list[str]],
    session: Session | None,
) -> list[Message] | None:
    plan_text, instructions = plan
    history: list[Message] = []
    for turn in range(1, turns + 1):
        role = ROLES[(turn - 1) % 2]
        persona = render(rule.persona(role), _context(values, turns, turn, plan_text))
        base = [
            Message("system", persona),
            *history,
            Message("user", _turn_info(turn, turns, role, instructions)),
        ]
        if role == "assistant" and session is not None:
            staged = _agentic_turn(f"turn{turn}", base, ask, session)
            if staged is None:
                return None
            final = staged[-1]
            if not final.tool_calls and not final.content.strip():
                raise TemplateError(f"turn {turn} came back empty")
            history += staged
            continue
        reply = ask(f"turn{turn}", base, {})
        if reply is None:
            return None
        text = _text(reply)
        if not text.strip():
            raise TemplateError(f"turn {turn} came back empty")
        history.append(Message(role, text.strip() if role == "user" else text))
    return history


def _agentic_turn(
    name: str, base: list[Message], ask: Ask, session: Session
) -> list[Message] | None:
    """One assistant turn with tools: rounds of tool calls until a text answer (oumi's
    loop). Round ``k`` is step ``turnN.rK``; a simulated tool call is ``turnN.rK.callJ``;
    the answer forced after ``max_consecutive_tool_turns`` rounds is ``turnN.final``."""
    toolset = session.toolset
    tools = {"tools": toolset.definitions()}
    staged: list[Message] = []
    for round_ in range(1, toolset.max_rounds + 1):
        step = name if round_ == 1 else f"{name}.r{round_}"
        reply = ask(step, base + staged, tools)
        if reply is None:
            return None
        if isinstance(reply, str) or not reply.tool_calls:
            staged.append(Message("assistant", _text(reply)))
            return staged
        staged.append(reply)
        results = _run_tools(step, reply.tool_calls, ask, session)
        if results is None:
            return None
        staged += results
    reply = ask(f"{name}.final", [*base, *staged, Message("user", STRAGGLER_NUDGE)], {})
    if reply is None:
        return None
    # calls made despite no tools being offered are dropped: nothing would answer them
    staged.append(Message("assistant", _text(reply)))
    return staged


def _run_tools(
    step: str, calls: tuple[ToolCall, ...], ask: Ask, session: Session
) -> list[Message] | None:
    """One tool message per call, in call order; None while a simulated call is pending
    (every pending call is asked for first, so they are sent together)."""
    results: list[Message] = []
    pending = False
    for j, call in enumerate(calls, 1):
        try:
            content = _run_tool(f"{step}.call{j}", call, ask, session)
        except ToolError as exc:
            content = json.dumps({"error": str(exc)})
        if content is None:
            pending = True
            continue
        results.append(Message("tool", content, tool_call_id=call.id))
    return None if pending else results


def _run_tool(step: str, call: ToolCall, ask: Ask, session: Session) -> str | None:
    tool = session.toolset.known.get(call.name)
    if tool is None:
        known = sorted(session.toolset.known)
        raise ToolError(f"Unknown tool '{call.name}'. Known: {known}")
    args = tool.arguments(call.arguments)
    if tool.simulated:
        env = session.toolset.environments[tool.env]
        memo = f"{tool.id}::{json.dumps(args, sort_keys=True)}"
        if env.cache_by_input and memo in session.memo:
            return session.memo[memo]  # None: the same call is already being simulated
        schema = tool.output_schema or {"type": "object"}
        reply = ask(
            step,
            simulator_messages(tool, env.persona, args),
            {"guided_decoding": {"json": schema}},
            f"simulated\x1f{memo}" if env.cache_by_input else None,
        )
        if reply is None:
            session.memo[memo] = None
            return None
        output = json.dumps(parse_simulated(tool, _text(reply)))
        session.memo[memo] = output
        return output
    output = session.run(tool, args)
    return output if isinstance(output, str) else json.dumps(output)


def _text(reply: str | Message) -> str:
    return reply if isinstance(reply, str) else reply.content


def _message_dict(message: Message) -> dict[str, Any]:
    """A message as oumi writes it: content, role, then tool_calls or tool_call_id; a
    message that only calls tools has ``"content": null``, last."""
    out: dict[str, Any] = {}
    if message.content or not message.tool_calls:
        out["content"] = message.content
    out["role"] = message.role
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    out.setdefault("content", None)
    return out


def _context(values: dict[str, Any], turns: int, turn: int, plan: str) -> dict[str, Any]:
    """What a multiturn template is filled from: the sample's values and SPECIAL_IDS."""
    return {**values, **dict(zip(SPECIAL_IDS, (str(turns), str(turn), plan), strict=True))}


def _turn_info(turn: int, turns: int, role: str, instructions: list[str]) -> str:
    instruction = instructions[turn - 1] if turn - 1 < len(instructions) else ""
    middle = f"For this turn: {instruction}\n\n" if instruction else ""
    return (
        f"You are generating turn {turn} of {turns} as the {role.upper()}.\n\n{middle}"
        "Generate ONLY your response for this turn. Stay in character."
    )


def _plan(
    rule: MultiturnRule,
    values: dict[str, Any],
    turns: int,
    ask: Ask,
    facts: list[dict[str, Any]],
) -> tuple[str, list[str]] | None:
    messages = planner_messages(rule, values, turns, facts)
    for attempt in range(MAX_PLAN_ATTEMPTS):
        name = "plan" if attempt == 0 else f"plan.retry{attempt}"
        reply = ask(name, messages, {"guided_decoding": {"json": PLANNER_SCHEMA}})
        if reply is None:
            return None
        text = _text(reply)
        parsed = parse_plan(text, turns)
        if parsed is not None:
            return text.strip(), parsed
    return "", [""] * turns  # oumi goes on without a plan


def planner_messages(
    rule: MultiturnRule, values: dict[str, Any], turns: int, facts: list[dict[str, Any]]
) -> list[Message]:
    context = _context(values, turns, 1, "")
    order = ", ".join(f"Turn {t}: {ROLES[(t - 1) % 2].upper()}" for t in range(1, turns + 1))
    roles = "\n\n".join(f"[{p.role.upper()}]\n{render(p.template, context)}" for p in rule.personas)
    # oumi doubles every brace of the role context for a formatting pass that never comes
    roles = roles.replace("{", "{{").replace("}", "}}")
    request = (
        f"Plan a {turns}-turn conversation.\nTurn order: {order}\n\nGuidelines:\n"
        "- Each turn should build on the previous turn.\n"
        f"- Pace the conversation naturally for {turns} turns.\n"
        "- Focus on what happens, not exact wording.\n"
        "- Instructions MUST be specific to the roles and context provided below.\n"
        f"\nRole context:\n{roles}\n"
    )
    if facts:
        request += grounding_block(facts)
    if rule.planner is not None:
        request += f"\nAdditional instructions: {render(rule.planner, context)}\n"
    request += "\nOutput ONLY the JSON object. No markdown. No other text."
    return [
        Message("system", PLANNER_SYSTEM),
        Message("user", PLANNER_EXAMPLE),
        Message("assistant", PLANNER_EXAMPLE_ANSWER),
        Message("user", request),
    ]


def parse_plan(text: str, turns: int) -> list[str] | None:
    """Per-turn instructions from a planner reply, or None if it holds no ``turns`` list."""
    data = json_object_in(text)
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        return None
    instructions = [""] * turns
    for item in data["turns"]:
        turn = _turn_number(item.get("turn")) if isinstance(item, dict) else None
        if turn is not None and 1 <= turn <= turns:
            instructions[turn - 1] = str(item.get("instruction", "")).strip()
    return instructions


def _turn_number(value: Any) -> int | None:
    """A plan entry's turn as oumi reads it: an int, or text that is one; else None."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return value if isinstance(value, int) else None


def templates(rule: MultiturnRule) -> list[Template]:
    found = [p.template for p in rule.personas]
    found += [t for t in (rule.output_system_prompt, rule.planner) if t is not None]
    return found
