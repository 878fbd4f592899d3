"""Decide, against the cache, what each node of a Graph needs: a Graph and a Store in, a Plan out.

Nodes are resolved sample by sample in rule order. An LLM node's key is the
hash of its fully rendered request, so it can only be known once the values it
reads are known: a node whose inputs are all cached is looked up at once;
one downstream of a node that must run is *blocked* until that node answers.
A multiturn attribute is a conversation whose :class:`~synthc.planning.conversation.Cursor`
takes one step at a time: model steps are LLM nodes, executor calls
:class:`ToolNode` s the runtime runs. Planning never sends or runs anything.
``build`` and ``explain`` both walk samples with :func:`advance`, so they
cannot disagree about what is cached; :func:`resolve` advances a batch of
samples with one lookup per round for all of them (a single ``SELECT`` on the
local tier, remote round trips overlapping), and :func:`found` marks a node
cached as if ``advance`` had found it. A build resolves against the local tier
only and asks the remotes as it sends (:class:`synthc.core.records.Tiered`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import islice
from typing import Any

import xxhash

from synthc.compiler.gates import Check, Seen
from synthc.compiler.graph import Graph, LLMRule, MultiturnRule, PostprocessRule, Rule
from synthc.compiler.template import SampledValue, TemplateError, render
from synthc.compiler.tools import Environment, Tool
from synthc.core.keys import NodeId, NodeKey, derive_seed, digest, node_id, node_key
from synthc.core.messages import Message, Request, ToolCall
from synthc.core.records import Lookup, Record, get_many
from synthc.planning.conversation import Cursor, Ran, step_rule, target_turns
from synthc.planning.derive import build_row, gate_view, postprocess, transform
from synthc.planning.steps import Step

UPSTREAM_FAILED = "an upstream node failed"

Accept = Callable[[str], str | None]


class Status(str, Enum):
    CACHED = "cached"  # answered from the cache
    RUN = "run"  # must be sent to the model
    BLOCKED = "blocked"  # waits for an upstream node that must run first
    GENERATED = "generated"  # answered by the model during this build
    FAILED = "failed"  # failed for good, or an upstream node did


@dataclass(frozen=True)
class LLMNode:
    """One request to send: which rule, which sample, its key and what decides it."""

    rule: LLMRule
    sample: int
    key: NodeKey
    request: Request
    parts: dict[str, Any]  # for the manifest: what the key was made of, as digests
    # what a reply must be for the node to use it (not part of the key): the problem, or None
    accept: Accept | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> NodeId:
        return node_id(self.rule.id, self.sample)

    def problem(self, text: str) -> str | None:
        """Why a reply ``text`` is of no use to this node (it is then a failure, not a
        record), or None."""
        return None if self.accept is None else self.accept(text)

    def canonical(self) -> dict[str, Any]:
        """The key's input, stored with the result so the key can be checked."""
        parts = self.parts
        return _key_parts(self.request, parts["engine"], parts["model"], parts["params"])


@dataclass(frozen=True)
class ToolNode:
    """One executor call to make: which step, which sample, its key and what decides it.

    Its key is the hash of the environment's definition digest, the executor's source
    digest, the tool, the arguments and the key of the environment state the
    conversation has reached, so a rerun finds it cached and runs nothing.
    """

    rule: LLMRule  # the step it is (``dialog.turn2.call1``)
    sample: int
    key: NodeKey
    tool: Tool
    env: Environment
    arguments: dict[str, Any]
    state: str | None  # the state the call starts from; None for a stateless environment
    parts: dict[str, Any]  # the key's input, stored with the result

    @property
    def id(self) -> NodeId:
        return node_id(self.rule.id, self.sample)

    def canonical(self) -> dict[str, Any]:
        return self.parts


Node = LLMNode | ToolNode


@dataclass
class SampleState:
    """What is known about one sample so far."""

    index: int
    values: dict[str, Any]
    sample_key: NodeKey
    status: dict[str, Status] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)  # nodes whose key is known
    errors: dict[str, str] = field(default_factory=dict)
    running: int = 0
    cursors: dict[str, Cursor] = field(default_factory=dict)  # conversations under way
    steps: dict[str, Step] = field(default_factory=dict)  # a conversation step's node → its step
    build: str = ""  # the build planning it: the records that build made count as generated
    reused: int = 0  # nodes found in the cache that this very build made (by another process)
    # the tokens each of its model nodes took (by key), whenever it was answered
    tokens: dict[str, tuple[int, int]] = field(default_factory=dict)
    attempt: int = 0  # which draw of its slot: a row a quality gate rejects is drawn again
    seed: int = 0  # what its draws are seeded with: the config's seed at attempt 0
    rejections: list[Rejection] = field(default_factory=list)  # its slot's earlier attempts
    gave_up: bool = False  # rejected at the last attempt: the slot has no row
    # attributes drawn again within this attempt (a validator's ``retries``): how often
    retries: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        """Whether the sample gives its slot's row."""
        return self.ok and not self.gave_up

    @property
    def complete(self) -> bool:
        return self.running == 0

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Rejection:
    """A row a quality gate refused: which attempt of its slot, which gate, the row."""

    attempt: int
    gate: str
    row: dict[str, Any]
    retried: bool = False  # the gate's attribute alone was drawn again, not the whole slot
    # the attempt's answered nodes, (rule id, key, status): what a teammate needs to decide
    # the same (the build's manifest lists them, for ``synthc cache push``)
    nodes: tuple[tuple[str, str, str], ...] = ()


def _rejected(state: SampleState, gate: str, row: dict[str, Any], retried: bool) -> Rejection:
    answered = (Status.CACHED, Status.GENERATED)
    nodes = tuple(
        (rule_id, node.key, state.status[rule_id].value)
        for rule_id, node in state.nodes.items()
        if state.status.get(rule_id) in answered
    )
    return Rejection(state.attempt, gate, row, retried, nodes)


def start(graph: Graph, index: int, build: str = "", attempt: int = 0) -> SampleState:
    """Sample ``index`` (attempt ``attempt`` of its slot) before anything is looked up,
    planned by ``build`` (its id). Attempt 0 draws from the config's seed; attempt j
    from a seed of (seed, index, j), so every draw of the slot is new and reproducible."""
    seed = (
        graph.seed if not attempt else derive_seed(graph.seed, index, f"\x1dattempt\x1f{attempt}")
    )
    values = graph.sampler.draw(index, seed)
    key = graph.sampler.sample_key(index, values, seed)
    return SampleState(index, values, key, build=build, attempt=attempt, seed=seed)


def next_attempt(graph: Graph, state: SampleState, build: str = "") -> SampleState | None:
    """The slot's next draw when a quality gate rejects ``state``'s row (which is then
    noted in the new state's :attr:`~SampleState.rejections`): the same attempt with the
    failing validator's attribute drawn again while it has ``retries`` left, else the
    next attempt. None when the row is kept, cannot be judged yet (not every node
    answered), or ``state`` was the last attempt (then marked :attr:`~SampleState.gave_up`)."""
    gates = graph.gates
    if gates is None or not state.ok or state.gave_up or not answered(graph, state):
        return None
    check = gates.failing(gate_view(state.values), _reply_tokens(state))
    if check is None:
        return None
    drawn = state.retries.get(check.attribute, 0) if isinstance(check, Check) else 0
    if isinstance(check, Check) and drawn < check.retries:
        row = build_row(graph, state.values)
        following = start(graph, state.index, build, state.attempt)
        following.retries = {**state.retries, check.attribute: drawn + 1}
        following.rejections = [*state.rejections, _rejected(state, check.name, row, True)]
        return following
    return _redraw(graph, state, check.name, build)


def _reply_tokens(state: SampleState) -> dict[str, int]:
    """Per model node of ``state``: the tokens its reply took, as the engine reported."""
    return {
        rule_id: state.tokens[node.key][1]
        for rule_id, node in state.nodes.items()
        if node.key in state.tokens
    }


def duplicate_attempt(
    graph: Graph, state: SampleState, seen: Seen, build: str = ""
) -> tuple[SampleState | None, str | None]:
    """Dedup, decided in slot order: ``state`` (kept by every other gate) is a duplicate
    when a ``synthc.quality.dedup`` attribute's text is one (or, near dedup, nearly one)
    a kept row of an earlier slot had (``seen``, which it joins when it is kept).
    Returns the slot's next attempt (None at the last, which is marked given up) and
    the gate, or (None, None) for a row that stays."""
    gates = graph.gates
    if gates is None or not gates.dedups or not state.accepted or not answered(graph, state):
        return None, None
    gate = seen.duplicate(gate_view(state.values))
    if gate is None:
        return None, None
    return _redraw(graph, state, gate, build), gate


def _redraw(graph: Graph, state: SampleState, gate: str, build: str) -> SampleState | None:
    """``state`` rejected by ``gate``: its slot's next attempt, or None at the last
    attempt (``state`` is then given up)."""
    assert graph.gates is not None
    rejections = [*state.rejections, _rejected(state, gate, build_row(graph, state.values), False)]
    if state.attempt + 1 >= graph.gates.max_attempts:
        state.rejections, state.gave_up = rejections, True
        return None
    following = start(graph, state.index, build, state.attempt + 1)
    following.rejections = rejections
    return following


def answered(graph: Graph, state: SampleState) -> bool:
    """Whether every rule of ``state`` has its value (from the cache or this build)."""
    return all(state.status.get(r.id) in (Status.CACHED, Status.GENERATED) for r in graph.rules)


def advance(graph: Graph, state: SampleState, store: Lookup) -> list[Node]:
    """Resolve every rule of ``state`` whose inputs are known; return the nodes to run."""
    to_send: list[Node] = []
    for rule in graph.rules:
        if rule.id in state.status and state.status[rule.id] is not Status.BLOCKED:
            continue
        upstream = [state.status.get(dep) for dep in rule.deps]
        if Status.FAILED in upstream:
            _fail(state, rule, UPSTREAM_FAILED)
        elif any(s in (Status.RUN, Status.BLOCKED) for s in upstream):
            state.status[rule.id] = Status.BLOCKED
        elif isinstance(rule, LLMRule):
            node = _llm_node(graph, state, rule)
            if node is not None:
                _look_up(state, node, store, to_send)
        elif isinstance(rule, MultiturnRule):
            _multiturn(graph, state, rule, store, to_send)
        else:
            _derive(state, rule)
    return to_send


class _StepFailed(Exception):
    pass


class _Asker:
    """A conversation's steps as nodes of its sample: answered from the sample's values,
    the cache, or queued in ``to_send``."""

    def __init__(
        self,
        graph: Graph,
        state: SampleState,
        rule: MultiturnRule,
        store: Lookup,
        to_send: list[Node],
    ):
        self.graph, self.state, self.rule, self.store, self.to_send = (
            graph,
            state,
            rule,
            store,
            to_send,
        )

    def llm(
        self,
        step: Step,
        messages: Callable[[], list[Message]],
        extra: dict[str, Any],
        shared: str | None = None,
        accept: Accept | None = None,
    ) -> str | Message | None:
        if not self._unknown(step):
            return self.state.values.get(step.rule_id)
        self.state.steps[step.rule_id] = step
        rule = step_rule(self.rule, step)
        node = make_node(
            self.graph, self.state, rule, tuple(messages()), extra, shared=shared, accept=accept
        )
        _look_up(self.state, node, self.store, self.to_send)
        return self.state.values.get(step.rule_id)

    def tool(self, step: Step, tool: Tool, args: dict[str, Any], state: str | None) -> Ran | None:
        if not self._unknown(step):
            return self.state.values.get(step.rule_id)
        assert self.rule.toolset is not None
        self.state.steps[step.rule_id] = step
        env = self.rule.toolset.environments[tool.env]
        node = tool_node(
            self.state.index, step_rule(self.rule, step), tool, env, args=args, env_state=state
        )
        _look_up(self.state, node, self.store, self.to_send)
        return self.state.values.get(step.rule_id)

    def _unknown(self, step: Step) -> bool:
        """Whether ``step`` has not been asked for yet (else its value or RUN is known)."""
        status = self.state.status.get(step.rule_id)
        if status is Status.FAILED:
            raise _StepFailed(f"{step.rule_id}: {self.state.errors.get(step.rule_id, 'failed')}")
        return status is None


def _multiturn(
    graph: Graph, state: SampleState, rule: MultiturnRule, store: Lookup, to_send: list[Node]
) -> None:
    """Take as many of the sample's conversation steps as the cache allows, from where it
    stopped last time; queue the next."""
    try:
        cursor = state.cursors.get(rule.id)
        if cursor is None:
            turns = target_turns(state.seed, state.index, rule)
            facts = rule.toolset.grounding_facts(state.seed, state.index) if rule.toolset else []
            cursor = state.cursors[rule.id] = Cursor(rule, state.values, turns, facts)
        result = cursor.advance(_Asker(graph, state, rule, store, to_send))
    except (TemplateError, _StepFailed) as exc:
        state.cursors.pop(rule.id, None)
        _fail(state, rule, str(exc))
        state.status[rule.plan_id] = Status.FAILED
        return
    done = Status.CACHED if result is not None else Status.BLOCKED
    state.status[rule.id] = state.status[rule.plan_id] = done
    if result is not None:
        del state.cursors[rule.id]
        state.values[rule.id], state.values[rule.plan_id] = result


def tool_node(
    sample: int,
    rule: LLMRule,
    tool: Tool,
    env: Environment,
    *,
    args: dict[str, Any],
    env_state: str | None,
) -> ToolNode:
    """The node for calling ``tool``'s executor with ``args`` from state ``env_state``."""
    assert tool.executor is not None
    parts = {
        "env": env.digest,
        "executor": tool.executor.digest,
        "tool": tool.id,
        "arguments": args,
        "state": env_state,
    }
    return ToolNode(rule, sample, node_key("tool", parts), tool, env, args, env_state, parts)


def _look_up(state: SampleState, node: Node, store: Lookup, to_send: list[Node]) -> None:
    state.nodes[node.rule.id] = node
    record = store.get(node.key)
    if record is not None and usable(node, record):
        _use(state, node, record)
    else:
        state.status[node.rule.id] = Status.RUN
        state.running += 1
        to_send.append(node)


def _use(state: SampleState, node: Node, record: Record) -> None:
    if isinstance(node, ToolNode):
        state.values[node.rule.id] = Ran(record.text, record.state or None)
    else:
        calls = tuple(ToolCall(**call) for call in record.tool_calls)
        state.values[node.rule.id] = _reply(record.text, calls)
        usage = record.usage
        spent(state, node.key, usage.get("input_tokens", 0), usage.get("output_tokens", 0))
    if record.build and record.build == state.build:  # made by this build's other processes
        state.status[node.rule.id] = Status.GENERATED
        state.reused += 1
    else:
        state.status[node.rule.id] = Status.CACHED


def usable(node: Node, record: Record) -> bool:
    """Whether ``node`` can use ``record``; one it cannot (a plan that does not parse,
    kept by an older synthc) is as good as missing: the node is sent again."""
    return not isinstance(node, LLMNode) or node.problem(record.text) is None


def found(state: SampleState, node: Node, record: Record) -> None:
    """``node`` was to run, but a remote tier has its record: it is cached, exactly as if
    planning had found it locally; call :func:`advance` next."""
    state.running -= 1
    _use(state, node, record)


def spent(state: SampleState, key: str, input_tokens: int, output_tokens: int) -> None:
    """Note the tokens the node ``key`` of ``state`` took (now, or when its cached answer
    was made)."""
    state.tokens[key] = (input_tokens, output_tokens)


def answer(
    state: SampleState,
    node: LLMNode,
    text: str | None,
    error: str = "",
    tool_calls: tuple[ToolCall, ...] = (),
) -> None:
    """Record the model's answer (or failure) for ``node``; call :func:`advance` next."""
    state.running -= 1
    if text is None:
        _fail(state, node.rule, error or "request failed")
    else:
        state.values[node.rule.id] = _reply(text, tool_calls)
        state.status[node.rule.id] = Status.GENERATED


def ran(state: SampleState, node: ToolNode, result: Ran | None, error: str = "") -> None:
    """Record an executor's answer (or failure) for ``node``; call :func:`advance` next."""
    state.running -= 1
    if result is None:
        _fail(state, node.rule, error or "the tool call failed")
    else:
        state.values[node.rule.id] = result
        state.status[node.rule.id] = Status.GENERATED


def _reply(text: str, tool_calls: tuple[ToolCall, ...]) -> str | Message:
    """A step's value: its text, or the whole assistant message when it calls tools."""
    return Message("assistant", text, tool_calls) if tool_calls else text


def _fail(state: SampleState, rule: Rule, message: str) -> None:
    state.status[rule.id] = Status.FAILED
    state.errors[rule.id] = message


def _llm_node(graph: Graph, state: SampleState, rule: LLMRule) -> LLMNode | None:
    try:
        messages = tuple(Message(m.role, render(m.template, state.values)) for m in rule.messages)
    except TemplateError as exc:
        _fail(state, rule, f"cannot render the prompt: {exc}")
        return None
    if rule.verdict is not None:  # a judge: its reply is a verdict, guided by a schema
        extra = {"guided_decoding": {"json": verdict_schema(*rule.verdict)}}
        return make_node(graph, state, rule, messages, extra)
    return make_node(graph, state, rule, messages)


def verdict_schema(low: int, high: int) -> dict[str, Any]:
    """The JSON schema a judge's reply follows: a score in ``low..high`` and a reason.
    A reply that does not (an engine without guided decoding, a cut-off reply) is
    cached all the same: the quality gates reject its row (see
    :func:`synthc.compiler.gates.usable_verdict`)."""
    return {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": low, "maximum": high},
            "reason": {"type": "string"},
        },
        "required": ["score", "reason"],
    }


def samples_share_nodes(graph: Graph) -> bool:
    """Whether two samples of ``graph`` can ever need the same node.

    Above temperature 0 every model request carries its sample's own draw seed (see
    :func:`make_node`), so none is shared; at temperature 0, and in conversations with
    tools (executor calls are keyed by their arguments and state, simulated tools may
    share a draw), samples can meet on one node.
    """
    return graph.inference.temperature <= 0 or any(
        isinstance(rule, MultiturnRule) and rule.toolset is not None for rule in graph.rules
    )


class TokenTally:
    """The tokens a dataset's rows took, from their samples' :attr:`SampleState.tokens`:
    a node several samples share (only when :func:`samples_share_nodes`) counts once."""

    def __init__(self, graph: Graph) -> None:
        self.input = self.output = 0
        self._counted: set[str] | None = set() if samples_share_nodes(graph) else None

    def add(self, state: SampleState) -> tuple[int, int]:
        """Count ``state``'s nodes; return the input and output tokens they added."""
        added_in = added_out = 0
        for key, (used_in, used_out) in state.tokens.items():
            if self._counted is not None:
                if key in self._counted:
                    continue
                self._counted.add(key)
            added_in += used_in
            added_out += used_out
        self.input += added_in
        self.output += added_out
        return added_in, added_out


def make_node(
    graph: Graph,
    state: SampleState,
    rule: LLMRule,
    messages: tuple[Message, ...],
    extra: dict[str, Any] | None = None,
    *,
    shared: str | None = None,
    accept: Accept | None = None,
) -> LLMNode:
    """The node for ``messages`` sent on behalf of ``rule``; ``extra`` params join its key.

    Its draw seed comes from the sample and the rule, or, when ``shared`` names a draw,
    from that name alone, so every sample asking the same thing gets one node.
    ``accept`` says what a reply must be for the node to use it (see
    :meth:`LLMNode.problem`); it is not part of the key.
    """
    inference = graph.inference
    seed = None
    if inference.temperature > 0 and shared:
        seed = derive_seed(graph.seed, -1, shared)
    elif inference.temperature > 0:
        drawn = state.retries.get(rule.id)  # a validator's retry: the attribute drawn anew
        seed = derive_seed(
            state.seed, state.index, f"{rule.id}\x1fretry\x1f{drawn}" if drawn else rule.id
        )
    extra = {**dict(rule.params), **(extra or {})}
    params = {**inference.request_params, **extra} if extra else inference.request_params
    key_params = {**inference.key_params, **extra} if extra else inference.key_params
    model, identity = inference.model, inference.identity
    if rule.model:  # a judge's own model, on the same hosted engine
        model = identity = rule.model
    request = Request(model, messages, params, seed)
    parts = {
        "engine": inference.engine.name,
        "model": identity,
        "params": key_params,
        "template": rule.digest,
        "inputs": {d: text_digest(state.values[d]) for d in rule.deps if d in state.values},
        "draw": seed,
    }
    key = node_key("llm", _key_parts(request, inference.engine.name, identity, key_params))
    return LLMNode(rule, state.index, key, request, parts, accept)


def _key_parts(
    request: Request, engine: str, identity: str, key_params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "engine": engine,
        "model": identity,
        "params": key_params,
        "messages": [_message_key(m) for m in request.messages],
        "draw": request.seed,
    }


def _message_key(message: Message) -> list[Any]:
    """A message as its key sees it; plain messages keep the two-item form."""
    parts: list[Any] = [message.role, message.content]
    if message.tool_calls:
        parts.append([[c.id, c.name, c.arguments] for c in message.tool_calls])
    if message.tool_call_id is not None:
        parts.append({"tool_call_id": message.tool_call_id})
    return parts


def text_digest(value: Any) -> str:
    """A short hash of an input value, for the manifest; a sampled value by everything a
    template can show of it (id, name, description and its attribute's)."""
    if isinstance(value, SampledValue):
        return digest(
            [
                value.attribute_id,
                value.attribute_name,
                value.attribute_description,
                value.id,
                value.name,
                value.description,
            ]
        )
    if not isinstance(value, str):
        return digest(value)
    return xxhash.xxh3_64_hexdigest(value.encode("utf-8"))


def _derive(state: SampleState, rule: Rule) -> None:
    try:
        if isinstance(rule, PostprocessRule):
            state.values[rule.id] = postprocess(state.values[rule.source], rule.params)
        else:
            state.values[rule.id] = transform(rule, state.values, state.sample_key)  # type: ignore[arg-type]
        state.status[rule.id] = Status.CACHED
    except TemplateError as exc:
        _fail(state, rule, f"cannot render: {exc}")


@dataclass
class Plan:
    """What a build would do: per rule, how many nodes are in each status."""

    graph: Graph
    counts: dict[str, Counter[Status]]

    def total(self, status: Status, llm_only: bool = True) -> int:
        rules = self.graph.llm_rules if llm_only else self.graph.rules
        return sum(self.counts[r.id][status] for r in rules)


PLAN_BATCH = 256  # samples resolved together: their lookups batched, remote ones overlapping


def plan(
    graph: Graph,
    store: Lookup,
    visit: Callable[[SampleState], None] | None = None,
    samples: Iterable[int] | None = None,
) -> Plan:
    """Walk every sample (of ``samples``, ascending, when given) against ``store``
    without sending anything.

    ``visit`` sees each sample's state once it is resolved as far as the cache
    allows (``explain`` reads its nodes and reasons from there).
    """
    counts: dict[str, Counter[Status]] = {r.id: Counter() for r in graph.rules}
    walked = range(graph.num_samples) if samples is None else samples
    for state in _resolved(graph, store, walked):
        for rule in graph.rules:
            counts[rule.id][state.status.get(rule.id, Status.BLOCKED)] += 1
        if visit is not None:
            visit(state)
    return Plan(graph, counts)


def _resolved(graph: Graph, store: Lookup, samples: Iterable[int]) -> Iterator[SampleState]:
    """``samples``, in order, resolved as far as the cache allows, :data:`PLAN_BATCH` at a
    time so that their lookups are batched (and remote round trips overlap)."""
    indices = iter(samples)
    seen = graph.gates.seen() if graph.gates is not None else None  # kept rows, for dedup
    while batch := list(islice(indices, PLAN_BATCH)):
        states = [start(graph, i) for i in batch]
        resolve(graph, states, store)
        if graph.gates is None:
            yield from states
            continue
        while again := [(k, n) for k, s in enumerate(states) if (n := next_attempt(graph, s))]:
            resolve(graph, [n for _, n in again], store)  # rejected rows: their slots' next draws
            for k, following in again:
                states[k] = following
        for k in range(len(states) if seen is not None and graph.gates.dedups else 0):
            assert seen is not None
            redrawn = duplicate_attempt(graph, states[k], seen)[0]
            while redrawn is not None:
                resolve(graph, [redrawn], store)
                states[k] = redrawn
                redrawn = next_attempt(graph, redrawn) or duplicate_attempt(graph, redrawn, seen)[0]
        yield from states


class _Unknown:
    """A lookup that has nothing: :func:`advance` against it queues every node it meets,
    for :func:`resolve` to look up together."""

    def get(self, key: str) -> Record | None:
        return None


_UNKNOWN = _Unknown()


def resolve(graph: Graph, states: Sequence[SampleState], store: Lookup) -> list[list[Node]]:
    """:func:`advance` each of ``states`` as far as ``store`` allows; per state, the nodes
    to run.

    The store is asked once per round for every node the states reached (one query
    where it batches, round trips overlapping on remote tiers); the hits are taken as
    cached and their states advanced again, until a round finds nothing more.
    """
    to_run: list[list[Node]] = [[] for _ in states]
    reached = [(i, advance(graph, state, _UNKNOWN)) for i, state in enumerate(states)]
    pending = [(i, nodes) for i, nodes in reached if nodes]
    while pending:
        hits = get_many(store, [node.key for _, nodes in pending for node in nodes])
        again = []
        for i, nodes in pending:
            answered = False
            for node in nodes:
                record = hits.get(node.key)
                if record is None or not usable(node, record):
                    to_run[i].append(node)
                else:
                    found(states[i], node, record)
                    answered = True
            more = advance(graph, states[i], _UNKNOWN) if answered else []
            if more:
                again.append((i, more))
        pending = again
    return to_run
