"""The task graph that lowering produces: rules over attributes, nodes over rule × sample.

A rule is one attribute's recipe (an LLM call, a postprocessing step, a
transform). A node is a rule applied to sample ``i`` (``NodeId`` ``answer[17]``);
nodes are not materialised here: the planner walks them sample by sample, so a
100,000-sample graph costs no more memory than its rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from synthc.compiler.engines import Engine
from synthc.compiler.gates import Gates
from synthc.compiler.sampling import Sampler
from synthc.compiler.spec import PostprocessingParams, TransformationType
from synthc.compiler.template import Template
from synthc.compiler.tools import Toolset
from synthc.core.errors import Span


class RuleKind(str, Enum):
    """What a rule makes of its attribute; explain's JSON names rules by it."""

    GENERATED = "generated"
    POSTPROCESSED = "postprocessed"
    TRANSFORMED = "transformed"
    MULTITURN = "multiturn"


@dataclass(frozen=True)
class MessageTemplate:
    role: str
    template: Template
    text: str = ""  # as written, for explain's diffs


@dataclass(frozen=True)
class LLMRule:
    """A generated attribute: one chat request per sample."""

    kind: ClassVar[RuleKind] = RuleKind.GENERATED
    id: str
    messages: tuple[MessageTemplate, ...]
    deps: tuple[str, ...]
    digest: str  # of the definition: its message templates
    span: Span | None = None
    verdict: tuple[int, int] | None = None  # a judge's score range: its reply is a verdict
    model: str | None = None  # a model of its own (a judge's), on the config's API engine
    params: tuple[tuple[str, Any], ...] = ()  # request params of its own (a judge's budget)


@dataclass(frozen=True)
class PostprocessRule:
    """oumi's postprocessing of a generated attribute into a new id."""

    kind: ClassVar[RuleKind] = RuleKind.POSTPROCESSED
    id: str
    source: str
    params: PostprocessingParams
    digest: str
    span: Span | None = None

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.source,)


@dataclass(frozen=True)
class TransformRule:
    """A transformed attribute (STRING, LIST, DICT or CHAT) built from other values."""

    kind: ClassVar[RuleKind] = RuleKind.TRANSFORMED
    id: str
    type: TransformationType
    templates: tuple[tuple[str, Template], ...]  # (key or role, template), in order
    deps: tuple[str, ...]
    digest: str
    conversation_id: str | None = None
    metadata: tuple[tuple[str, Template], ...] = ()
    span: Span | None = None


# what a multiturn template may name besides the sample's values
SPECIAL_IDS = ("target_turns", "current_turn", "conversation_plan")


@dataclass(frozen=True)
class MultiturnRule:
    """A multiturn attribute: a planner call, then one call per turn, USER first.

    Per sample it produces a conversation (``id``) and the raw plan (``id_plan``).
    """

    kind: ClassVar[RuleKind] = RuleKind.MULTITURN
    id: str
    min_turns: int
    max_turns: int
    personas: tuple[MessageTemplate, ...]  # role → persona, every role in the config's order
    output_system_prompt: Template | None
    planner: Template | None
    deps: tuple[str, ...]
    digest: str
    span: Span | None = None
    toolset: Toolset | None = field(default=None, compare=False, repr=False)  # assistant tools

    @property
    def plan_id(self) -> str:
        return f"{self.id}_plan"

    def persona(self, role: str) -> Template:
        return next(p.template for p in self.personas if p.role == role)


Rule = LLMRule | PostprocessRule | TransformRule | MultiturnRule


@dataclass(frozen=True)
class Inference:
    """Which model answers, and the parameters that decide what it says."""

    engine: Engine
    model: str  # the name sent to an API
    identity: str  # what node keys hash: name@revision, or file name@content hash
    path: Path | None  # local weights, for in-process engines
    key_params: dict[str, Any]  # output-affecting params that differ from oumi's defaults
    request_params: dict[str, Any]  # what a backend sends (defaults included)
    temperature: float


@dataclass(frozen=True)
class Graph:
    """Everything a build needs, free of I/O: rules in dependency order, sampling, model."""

    rules: tuple[Rule, ...]
    sampler: Sampler
    inference: Inference
    num_samples: int
    seed: int
    base_columns: tuple[str, ...]  # example fields and sampled ids, as oumi orders them
    columns: tuple[str, ...]  # generated, postprocessed and transformed ids, in config order
    hidden: frozenset[str] = frozenset()  # raw texts dropped by keep_original_text_attribute
    passthrough: tuple[str, ...] | None = None
    edges: dict[str, tuple[str, ...]] = field(default_factory=dict)  # rule id → what it reads
    gates: Gates | None = None  # quality gates a row must pass (synthc.quality)

    @cached_property
    def base_set(self) -> frozenset[str]:
        """The base columns a row may hold, less the hidden ones."""
        return frozenset(self.base_columns) - self.hidden

    @cached_property  # read for every sample written; computed once
    def llm_rules(self) -> tuple[LLMRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, LLMRule))
