"""Name a conversation's steps: a typed step in, its readable name out, and back.

A multiturn attribute's nodes are steps of one conversation: its plan (and plan
retries), one turn per message, and in an assistant turn with tools one round
per request and one call per tool call that is a node. A :class:`Step` carries
those numbers; its :attr:`~Step.name` (``plan``, ``plan.retry1``, ``turn2``,
``turn2.r2``, ``turn2.r2.call1``, ``turn2.final``) is what manifests, explain
and ``--why`` show. :meth:`Step.parse` reads a name back, for a user's
``--why dialog.turn2.r2[3]``; nothing else parses names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(
    r"plan(?:\.retry(?P<retry>[1-9]\d*))?"
    r"|turn(?P<turn>[1-9]\d*)(?:\.final(?P<final>)|(?:\.r(?P<round>[1-9]\d*))?"
    r"(?:\.call(?P<call>[1-9]\d*))?)"
)


@dataclass(frozen=True)
class Step:
    """One step of conversation ``conversation`` (a multiturn attribute's id)."""

    conversation: str
    turn: int = 0  # 0: the plan
    attempt: int = 0  # the plan's retry
    round: int = 1  # an assistant turn's request with tools
    call: int = 0  # a tool call of that round that is a node (1-based); 0: the request
    final: bool = False  # the answer forced after the last round, offered no tools

    @property
    def name(self) -> str:
        if self.turn == 0:
            return f"plan.retry{self.attempt}" if self.attempt else "plan"
        if self.final:
            return f"turn{self.turn}.final"
        name = f"turn{self.turn}" if self.round == 1 else f"turn{self.turn}.r{self.round}"
        return f"{name}.call{self.call}" if self.call else name

    @property
    def rule_id(self) -> str:
        """What its node ids are made of: ``dialog.turn2.r2`` (``dialog.turn2.r2[3]``)."""
        return f"{self.conversation}.{self.name}"

    @property
    def opens_turn(self) -> bool:
        """The plan's first attempt or a turn's first request: the steps a conversation
        is known to need before any reply (the rest depend on what earlier ones said)."""
        return self.attempt == 0 and self.round == 1 and not self.call and not self.final

    @classmethod
    def parse(cls, conversation: str, name: str) -> Step | None:
        """The step ``name`` names in ``conversation``, or None if it names none."""
        match = _NAME.fullmatch(name)
        if match is None:
            return None
        if match["turn"] is None:
            return cls(conversation, attempt=int(match["retry"] or 0))
        return cls(
            conversation,
            turn=int(match["turn"]),
            round=int(match["round"] or 1),
            call=int(match["call"] or 0),
            final=match["final"] is not None,
        )
