"""A conversation driven by a script instead of a sample: steps answered by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthc.compiler.graph import MultiturnRule
from synthc.compiler.tools import Tool
from synthc.core.messages import Message
from synthc.planning.conversation import Cursor, Ran
from synthc.planning.steps import Step

Reply = str | Message


class StepRefused(Exception):
    """A reply the step's ``accept`` check refused: the runtime would fail the step."""


class Scripted:
    """An ``Ask`` whose ``reply(name, messages, extra)`` answers each model step by its
    name (None: still pending); records what each step was sent, its shared draw, and
    the order of the asks (a step pending last time is asked again for its answer). A
    reply the step's ``accept`` check refuses raises :class:`StepRefused`."""

    def __init__(self) -> None:
        self.asked: dict[str, tuple[list[Message], dict[str, Any]]] = {}
        self.shared: dict[str, str | None] = {}
        self.order: list[str] = []  # every ask, in order

    def reply(self, name: str, messages: list[Message], extra: dict[str, Any]) -> Reply | None:
        raise NotImplementedError

    def llm(
        self,
        step: Step,
        messages: Callable[[], list[Message]],
        extra: dict[str, Any],
        shared: str | None = None,
        accept: Callable[[str], str | None] | None = None,
    ) -> Reply | None:
        sent = messages()
        self.order.append(step.name)
        self.asked[step.name] = (sent, extra)
        self.shared[step.name] = shared
        reply = self.reply(step.name, sent, extra)
        text = reply.content if isinstance(reply, Message) else reply
        problem = None if accept is None or text is None else accept(text)
        if problem is not None:  # as the runtime fails the step
            raise StepRefused(f"{step.name}: {problem}")
        return reply

    def tool(self, step: Step, tool: Tool, args: dict[str, Any], state: str | None) -> Ran | None:
        raise AssertionError(f"{step.name}: an executor call is the runtime's, not a script's")


def converse(
    rule: MultiturnRule,
    values: dict[str, Any],
    turns: int,
    ask: Scripted,
    facts: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], str] | None:
    """The conversation, from its first step, or None while a step is pending."""
    return Cursor(rule, values, turns, facts or []).advance(ask)
