"""Drive a sample's multiturn attribute: its values in; the next request or the conversation out.

oumi's conversation synthesis, one cached node per call: a planner call
(``conv.plan``, retried as ``conv.plan.retry1`` / ``.retry2`` while its JSON does
not parse; where oumi then goes on without a plan, synthc fails the conversation
and keeps the last attempt out of the cache, so the next run asks for it again),
then one call per turn (``conv.turn1``, ``conv.turn2``...), USER
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
``conv.turn2.r2``...) offered the tools, and each tool call it makes is answered
in call order: by a lookup table here, by the model for a simulated tool
(``conv.turn2.call1``, an LLM node), or by its executor (``conv.turn2.call1``, a
tool node the runtime runs; its key holds the environment state the
conversation has reached). After ``max_consecutive_tool_turns`` rounds,
``conv.turn2.final`` asks for an answer without tools. Grounding facts drawn per
sample go into the planner prompt.

A :class:`Cursor` holds where a conversation is; each step is taken once, as its
answer arrives (from the cache or from the runtime), so advancing a conversation
never replays it and planning never runs an executor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from synthc.compiler.graph import SPECIAL_IDS, LLMRule, MultiturnRule
from synthc.compiler.template import Template, TemplateError, render
from synthc.compiler.tools import (
    Environment,
    Tool,
    ToolError,
    grounding_block,
    json_object_in,
    look_up,
    parse_simulated,
    simulator_messages,
)
from synthc.core.keys import unit_draw
from synthc.core.messages import Message, ToolCall
from synthc.planning.steps import Step

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


def step_rule(rule: MultiturnRule, step: Step) -> LLMRule:
    """The rule a step's node belongs to: ``dialog.turn2`` and so on."""
    return LLMRule(step.rule_id, (), rule.deps, rule.digest, rule.span)


class Ask(Protocol):
    """What a conversation needs of its sample: each step's answer once it is known.

    Both return None while the step must run (its node is queued) and the answer
    once it is cached or answered. ``shared`` names a draw every sample shares: a
    simulated tool call cached by input is answered once per build, as oumi 0.9's
    stateless simulated environment (one per build, its cache with it) answers it
    once, whichever conversation asks. ``accept`` says what a reply must be for the
    step to use it: a reply it finds a problem with fails the step and is not cached,
    so the next run sends the step again.
    """

    def llm(
        self,
        step: Step,
        messages: Callable[[], list[Message]],
        extra: dict[str, Any],
        shared: str | None = None,
        accept: Callable[[str], str | None] | None = None,
    ) -> str | Message | None: ...

    def tool(self, step: Step, tool: Tool, args: dict[str, Any], state: str | None) -> Ran | None:
        """An executor's answer: the tool message's content and the key of the
        environment state it left (None for a stateless environment)."""
        ...


@dataclass(frozen=True)
class Ran:
    """What an executor call answered: the tool message, and the state it left."""

    content: str
    state: str | None


@dataclass
class _Turn:
    """The assistant turn under way: its prompt, the tool traffic so far, the round and
    the round's calls not answered yet."""

    base: list[Message]
    staged: list[Message] = field(default_factory=list)
    round: int = 1
    calls: list[ToolCall] = field(default_factory=list)
    answered: int = 0  # of ``calls``


class Cursor:
    """Where one sample's conversation is: each step is taken once, from here, as its
    answer arrives; nothing is replayed.

    :meth:`advance` takes every step whose answer is known and stops at the first
    that must run; call it again once that one is answered. It raises TemplateError
    when a template cannot be filled or a turn comes back empty.
    """

    def __init__(
        self, rule: MultiturnRule, values: dict[str, Any], turns: int, facts: list[dict[str, Any]]
    ):
        self.rule, self.values, self.turns, self.facts = rule, values, turns, facts
        self.attempt = 0  # planner attempts answered
        self.plan: tuple[str, list[str]] | None = None
        self.turn = 1  # the turn being taken
        self.history: list[Message] = []
        self.assistant: _Turn | None = None
        toolset = rule.toolset
        self.states = {e.id: e.state for e in toolset.environments.values()} if toolset else {}

    def advance(self, ask: Ask) -> tuple[dict[str, Any], str] | None:
        """The finished conversation and raw plan, or None while a step must run."""
        while self.plan is None:
            if not self._planned(ask):
                return None
        while self.turn <= self.turns:
            if not self._took_turn(ask):
                return None
        return self._row(), self.plan[0]

    def step(self, **numbers: Any) -> Step:
        return Step(self.rule.id, **numbers)

    # --- the plan ----------------------------------------------------------------------

    def _planned(self, ask: Ask) -> bool:
        step = self.step(attempt=self.attempt)
        extra = {"guided_decoding": {"json": PLANNER_SCHEMA}}
        last = self.attempt == MAX_PLAN_ATTEMPTS - 1
        reply = ask.llm(
            step,
            lambda: planner_messages(self.rule, self.values, self.turns, self.facts),
            extra,
            accept=PlanCheck(self.turns) if last else None,
        )
        if reply is None:
            return False
        text = _text(reply)
        parsed = parse_plan(text, self.turns)
        self.attempt += 1
        if parsed is not None:
            self.plan = (text.strip(), parsed)
        elif last:  # a reply the check did not see (another build's, kept before it existed)
            raise TemplateError(PlanCheck(self.turns)(text) or "the plan did not parse")
        return True

    # --- turns -------------------------------------------------------------------------

    def _took_turn(self, ask: Ask) -> bool:
        role = ROLES[(self.turn - 1) % 2]
        if role == "assistant" and self.rule.toolset is not None:
            return self._took_tool_turn(ask)
        reply = ask.llm(self.step(turn=self.turn), lambda: self._base(role), {})
        if reply is None:
            return False
        text = _text(reply)
        if not text.strip():
            raise TemplateError(f"turn {self.turn} came back empty")
        self.history.append(Message(role, text.strip() if role == "user" else text))
        self.turn += 1
        return True

    def _base(self, role: str) -> list[Message]:
        """A turn's prompt: the speaker's persona, the conversation so far, the turn's
        instruction."""
        assert self.plan is not None
        plan_text, instructions = self.plan
        persona = render(
            self.rule.persona(role), _context(self.values, self.turns, self.turn, plan_text)
        )
        info = _turn_info(self.turn, self.turns, role, instructions)
        return [Message("system", persona), *self.history, Message("user", info)]

    def _took_tool_turn(self, ask: Ask) -> bool:
        """One step of an assistant turn with tools (oumi's loop): a round's request,
        one of its tool calls, or the answer forced after the last round."""
        toolset = self.rule.toolset
        assert toolset is not None
        turn = self.assistant = self.assistant or _Turn(self._base("assistant"))
        if turn.answered < len(turn.calls):
            return self._answered_call(ask, turn)
        if turn.round > toolset.max_rounds:
            return self._forced(ask, turn)
        tools = {"tools": toolset.definitions()}
        step = self.step(turn=self.turn, round=turn.round)
        reply = ask.llm(step, lambda: turn.base + turn.staged, tools)
        if reply is None:
            return False
        if isinstance(reply, Message) and reply.tool_calls:
            turn.staged.append(reply)
            turn.calls, turn.answered = list(reply.tool_calls), 0
            return True
        turn.staged.append(Message("assistant", _text(reply)))
        self._end_tool_turn(turn)
        return True

    def _forced(self, ask: Ask, turn: _Turn) -> bool:
        step = self.step(turn=self.turn, final=True)
        nudge = Message("user", STRAGGLER_NUDGE)
        reply = ask.llm(step, lambda: [*turn.base, *turn.staged, nudge], {})
        if reply is None:
            return False
        # calls made despite no tools being offered are dropped: nothing would answer them
        turn.staged.append(Message("assistant", _text(reply)))
        self._end_tool_turn(turn)
        return True

    def _end_tool_turn(self, turn: _Turn) -> None:
        final = turn.staged[-1]
        if not final.tool_calls and not final.content.strip():
            raise TemplateError(f"turn {self.turn} came back empty")
        self.history += turn.staged
        self.assistant = None
        self.turn += 1

    # --- tool calls --------------------------------------------------------------------

    def _answered_call(self, ask: Ask, turn: _Turn) -> bool:
        """The next call of the round: answered here (a lookup, or a call that cannot be
        made), or by a node (a simulated tool, an executor)."""
        call = turn.calls[turn.answered]
        step = self.step(turn=self.turn, round=turn.round, call=turn.answered + 1)
        try:
            content = self._call(ask, step, call)
        except ToolError as exc:
            content = json.dumps({"error": str(exc)})
        if content is None:
            return False
        turn.staged.append(Message("tool", content, tool_call_id=call.id))
        turn.answered += 1
        if turn.answered == len(turn.calls):
            turn.round += 1
            turn.calls, turn.answered = [], 0
        return True

    def _call(self, ask: Ask, step: Step, call: ToolCall) -> str | None:
        toolset = self.rule.toolset
        assert toolset is not None
        tool = toolset.known.get(call.name)
        if tool is None:
            raise ToolError(f"Unknown tool '{call.name}'. Known: {sorted(toolset.known)}")
        args = tool.arguments(call.arguments)
        env = toolset.environments[tool.env]
        if env.kind == "lookup":
            return _content(look_up(env, tool, args))
        if tool.simulated:
            return _simulated(ask, step, tool, env, args)
        ran = ask.tool(step, tool, args, self.states.get(env.id))
        if ran is None:
            return None
        self.states[env.id] = ran.state
        return ran.content

    # --- the row -----------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        """The conversation as oumi writes it."""
        assert self.plan is not None
        messages_out = [_message_dict(m) for m in self.history]
        prompt = self.rule.output_system_prompt
        if prompt is not None:
            context = _context(self.values, self.turns, 1, self.plan[0])
            messages_out.insert(0, {"content": render(prompt, context).strip(), "role": "system"})
        out: dict[str, Any] = {"messages": messages_out}
        if self.rule.toolset is not None and self.rule.toolset.offered:
            out["tools"] = self.rule.toolset.listing()
        return out


def _simulated(
    ask: Ask, step: Step, tool: Tool, env: Environment, args: dict[str, Any]
) -> str | None:
    """A model-simulated tool's answer (oumi's simulator prompt, guided by the output
    schema); identical calls share one node when the environment caches by input."""
    memo = f"{tool.id}::{json.dumps(args, sort_keys=True)}"
    schema = tool.output_schema or {"type": "object"}
    reply = ask.llm(
        step,
        lambda: simulator_messages(tool, env.persona, args),
        {"guided_decoding": {"json": schema}},
        f"simulated\x1f{memo}" if env.cache_by_input else None,
    )
    return None if reply is None else json.dumps(parse_simulated(tool, _text(reply)))


def _content(output: Any) -> str:
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


@dataclass(frozen=True)
class PlanCheck:
    """The planner's last attempt must parse: a reply that is no plan fails the
    conversation (it is not cached; the next run asks again) instead of going on
    without a plan as oumi 0.9 does."""

    turns: int

    def __call__(self, text: str) -> str | None:
        if parse_plan(text, self.turns) is not None:
            return None
        return (
            f"the planner's reply is not a JSON object with a `turns` list after "
            f"{MAX_PLAN_ATTEMPTS} attempts: {text.strip()[:80]!r}"
        )


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
