"""Explain a build before it runs: a Graph, the cache and the last manifest in, an Explanation out.

Walks the samples with the same :func:`~synthc.planning.plan.plan` a build
uses, so the two cannot disagree: every sample of a build up to
``EXACT_SAMPLES + SPREAD_SAMPLES``; of a bigger one, the first ``EXACT_SAMPLES``
and then samples evenly spread over the rest, each standing for its share
(:class:`Walk`), so a plan of 10^8 samples takes seconds and says it estimated.
For each rule it counts nodes cached, to run, blocked on an upstream node that
must run first, and failing; every node that would run carries its reasons
(:mod:`synthc.planning.reasons`); the totals come with an estimate of requests,
tokens and, where the model's price is known, dollars. ``to_json`` is the stable, documented form
(docs/explain-json.md); the CLI draws the rest from it.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from synthc.compiler.engines import ENGINES
from synthc.compiler.graph import Graph, LLMRule, MultiturnRule
from synthc.compiler.template import SampledValue
from synthc.core.errors import ConfigError
from synthc.core.messages import Message
from synthc.core.records import Store, get_many
from synthc.planning.conversation import step_rule, target_turns
from synthc.planning.manifest import Manifest
from synthc.planning.plan import (
    LLMNode,
    SampleState,
    Status,
    ToolNode,
    advance,
    answered,
    plan,
    start,
    text_digest,
)
from synthc.planning.prices import PRICES, price
from synthc.planning.reasons import NodeFacts, Reason, reasons
from synthc.planning.steps import Step

# A prompt's tokens, chat template included, as the model's tokenizer counts them.
TokenCounter = Callable[[Sequence[Message]], int]

SCHEMA_VERSION = 1
DEFAULT_NODE_LIMIT = 50
CHARS_PER_TOKEN = 4

BATCH_PRICE = 0.5  # OpenAI's Batch API and Anthropic's Message Batches: half the online price
EXACT_SAMPLES = 20_000  # explained one by one: a build this size is explained exactly
SPREAD_SAMPLES = 20_000  # beyond them, at most this many more, evenly spread, for the rest


@dataclass(frozen=True)
class Walk:
    """The samples explain looks at: the first ``exact``, then every ``every``-th of the
    rest, each of those standing for ``every`` samples (the last for what is left)."""

    num_samples: int
    exact: int
    every: int = 1

    @classmethod
    def of(cls, num_samples: int, *, exactly: bool = False) -> Walk:
        if exactly or num_samples <= EXACT_SAMPLES + SPREAD_SAMPLES:
            return cls(num_samples, num_samples)
        return cls(num_samples, EXACT_SAMPLES, -(-(num_samples - EXACT_SAMPLES) // SPREAD_SAMPLES))

    @property
    def estimated(self) -> bool:
        return self.exact < self.num_samples

    def samples(self) -> Iterator[int]:
        yield from range(self.exact)
        yield from range(self.exact, self.num_samples, self.every)

    def weight(self, index: int) -> int:
        """How many samples sample ``index`` stands for."""
        return 1 if index < self.exact else min(self.every, self.num_samples - index)

    def walked(self) -> int:
        return self.exact + len(range(self.exact, self.num_samples, self.every))


@dataclass
class Usage:
    """What some of a rule's requests took: their prompts' characters and the tokens the
    provider reported (or, where none was sent yet, a tokenizer counted)."""

    requests: int = 0
    chars: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, chars: int, input_tokens: int, output_tokens: int = 0) -> None:
        self.requests += 1
        self.chars += chars
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens


@dataclass
class QualityTally:
    """What the quality gates decided of the slots explain looked at (docs/quality.md)."""

    max_attempts: int
    kept: int = 0  # slots whose row passed
    given_up: int = 0  # slots whose every attempt was rejected
    open: int = 0  # slots whose current attempt waits on nodes to send
    attempts: int = 0  # attempts judged: each rejected one, and each kept row
    rejected: Counter[str] = field(default_factory=Counter)  # gate → rows rejected

    def add(self, graph: Graph, state: SampleState, weight: int) -> None:
        for refused in state.rejections:
            self.rejected[refused.gate] += weight
        self.attempts += weight * len(state.rejections)
        if state.gave_up:
            self.given_up += weight
        elif state.ok and answered(graph, state):
            self.kept += weight
            self.attempts += weight
        else:
            self.open += weight

    @property
    def acceptance(self) -> float | None:
        """The share of judged attempts whose row was kept; None before any was judged."""
        return self.kept / self.attempts if self.attempts else None

    @property
    def expected_attempts(self) -> float:
        """Attempts a slot takes on average at that acceptance, up to ``max_attempts``:
        (1 - (1 - p)^m) / p. 1 before any attempt was judged."""
        p = self.acceptance
        if p is None:
            return 1.0
        if p == 0:
            return float(self.max_attempts)
        return (1 - (1 - p) ** self.max_attempts) / p

    def to_json(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "kept": self.kept,
            "given_up": self.given_up,
            "open": self.open,
            "attempts": self.attempts,
            "rejected": dict(sorted(self.rejected.items())),
            "acceptance": None if self.acceptance is None else round(self.acceptance, 4),
            "expected_attempts": round(self.expected_attempts, 3),
        }


@dataclass
class NodeReport:
    id: str
    rule: str
    sample: int
    status: str  # run | blocked | failed
    key: str | None
    reasons: list[Reason]


@dataclass
class Explanation:
    graph: Graph
    counts: dict[str, Counter[str]]
    failed_last_time: Counter[str]
    nodes: list[NodeReport] = field(default_factory=list)
    omitted: int = 0
    input_chars: Counter[str] = field(default_factory=Counter)  # rule → prompt characters to send
    tool_runs: Counter[str] = field(default_factory=Counter)  # rule → executor calls, no request
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    remote_hits: dict[str, int] = field(default_factory=dict)  # cached nodes a remote served
    batch: bool = False  # priced as a batch build (the provider's batch API)
    walk: Walk | None = None  # the samples looked at; None: every one
    # rule → what its answered requests took, from the cache's records: the nodes cached now,
    # else those of the last build (a rule rebuilt after an edit); priced by the estimate
    history: dict[str, Usage] = field(default_factory=dict)
    counted: dict[str, Usage] = field(default_factory=dict)  # rule → a tokenizer's counts
    tokenizer: TokenCounter | None = None  # the model's own, where one is available offline
    quality: QualityTally | None = None  # with quality gates: what they decided so far

    def total(self, status: str) -> int:
        return sum(c[status] for c in self.counts.values())

    def weight(self, index: int) -> int:
        """How many samples the sample ``index`` stands for in the counts."""
        return 1 if self.walk is None else self.walk.weight(index)

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    def __repr__(self) -> str:
        from synthc.planning.formats.text import summary_text  # drawing loads when used

        return f"<Explanation: {'; '.join(summary_text(self.to_json()).splitlines())}>"

    def _repr_html_(self) -> str:
        """The explain page (``--format html``) in a sandboxed frame: a notebook shows it."""
        from synthc.planning.formats.html import to_html

        page = html.escape(to_html(self.to_json()), quote=True)
        return (
            f'<iframe srcdoc="{page}" sandbox="allow-scripts" '
            'style="width:100%;height:640px;border:0"></iframe>'
        )


def explain(
    graph: Graph,
    store: Store,
    previous: Manifest | None,
    *,
    node_limit: int | None = DEFAULT_NODE_LIMIT,
    prices: dict[str, tuple[float, float]] | None = None,
    batch: bool = False,
    tokenizer: TokenCounter | None = None,
) -> Explanation:
    """What a build would do now and why; sends nothing. ``batch``: price it as a batch
    build. With a ``node_limit`` a big build's counts are estimated (:class:`Walk`);
    without one (every node listed) every sample is walked. Tokens are estimated from
    what the rule's answered requests took (:class:`Usage`), else by ``tokenizer``,
    else as characters / 4."""
    llm = [r for r in graph.rules if isinstance(r, LLMRule)]
    multiturn = [r for r in graph.rules if isinstance(r, MultiturnRule)]
    ids = [r.id for r in llm] + [r.id for r in multiturn]
    counts: dict[str, Counter[str]] = {rule_id: Counter() for rule_id in ids}
    walk = Walk.of(graph.num_samples, exactly=node_limit is None)
    report = Explanation(
        graph,
        counts,
        Counter(),
        prices={**PRICES, **(prices or {})},  # --prices FILE overrides or extends the table
        batch=batch,
        walk=walk,
        tokenizer=tokenizer,
    )

    if graph.gates is not None:
        report.quality = QualityTally(graph.gates.max_attempts)

    def visit(state: SampleState) -> None:
        for rule in llm:
            _count(report, rule, state, previous, node_limit)
        for conv in multiturn:
            _count_multiturn(report, conv, state, previous, node_limit)
        if report.quality is not None:
            report.quality.add(graph, state, report.weight(state.index))

    plan(graph, store, visit, walk.samples())
    _last_build_usage(report, store, previous)
    return report


HISTORY_RECORDS = 200  # at most this many of the last build's records per rule are read
TOKENIZED_PROMPTS = 50  # at most this many prompts per rule are counted by a tokenizer


def _last_build_usage(report: Explanation, store: Store, previous: Manifest | None) -> None:
    """For each rule with requests to send and no answered node cached now (rebuilt after
    an edit, say), what its requests took in the last build, from that build's records."""
    if previous is None:
        return
    wanted = {
        rule_id
        for rule_id, counts in report.counts.items()
        if counts["run"] + counts["blocked"] and not report.history.get(rule_id)
    }
    keys: dict[str, list[str]] = {rule_id: [] for rule_id in wanted}
    for node_id, entry in previous.nodes.items():
        rule_id = node_id.rsplit("[", 1)[0].split(".", 1)[0]  # a conversation's steps too
        chosen = keys.get(rule_id)
        if chosen is not None and entry.get("key") and len(chosen) < HISTORY_RECORDS:
            chosen.append(entry["key"])
    for rule_id, rule_keys in keys.items():
        for record in get_many(store, rule_keys).values():
            used = record.usage
            if record.kind == "llm" and used.get("input_tokens"):
                chars = sum(_chars(m) for m in record.request.get("messages", ()))
                report.history.setdefault(rule_id, Usage()).add(
                    chars, used["input_tokens"], used.get("output_tokens", 0)
                )


def _chars(message: Any) -> int:
    """A recorded message's characters (as a key holds it: ``[role, content, ...]``)."""
    content = message[1] if isinstance(message, list) and len(message) > 1 else None
    return len(content) if isinstance(content, str) else 0


def _count(
    report: Explanation,
    rule: LLMRule,
    state: SampleState,
    previous: Manifest | None,
    node_limit: int | None,
    *,
    counts_as: str | None = None,
) -> None:
    status = _status(state.status.get(rule.id, Status.BLOCKED))
    weight = report.weight(state.index)
    report.counts[counts_as or rule.id][status] += weight
    node_id = f"{rule.id}[{state.index}]"
    old = previous.nodes.get(node_id) if previous else None
    if old is not None and old.get("status") == Status.FAILED:
        report.failed_last_time[counts_as or rule.id] += weight
    node = state.nodes.get(rule.id)
    if status == "cached":
        if isinstance(node, LLMNode) and (used := state.tokens.get(node.key)) and used[0]:
            report.history.setdefault(counts_as or rule.id, Usage()).add(_prompt_chars(node), *used)
        return
    if isinstance(node, ToolNode):
        report.tool_runs[counts_as or rule.id] += weight * (status != "failed")
    elif status == "run" and isinstance(node, LLMNode):
        report.input_chars[counts_as or rule.id] += weight * _prompt_chars(node)
        counted = report.counted.setdefault(counts_as or rule.id, Usage())
        if report.tokenizer is not None and counted.requests < TOKENIZED_PROMPTS:
            counted.add(_prompt_chars(node), report.tokenizer(node.request.messages))
    if node_limit is not None and len(report.nodes) >= node_limit:
        report.omitted += weight
        return
    facts = node_facts(report.graph, rule, state)
    found = (
        reasons(facts, previous)
        if status != "failed"
        else [Reason("error", state.errors.get(rule.id, "failed"))]
    )
    report.nodes.append(NodeReport(node_id, rule.id, state.index, status, facts.key, found))


def _count_multiturn(
    report: Explanation,
    rule: MultiturnRule,
    state: SampleState,
    previous: Manifest | None,
    node_limit: int | None,
) -> None:
    """A multiturn attribute's steps (plan, then one per turn): known ones by status, the
    rest blocked behind the first that must run. A turn not reached yet counts one
    request, though with tools an assistant turn may take several rounds."""
    steps = [s for s in state.steps.values() if s.conversation == rule.id]
    expected = 1 + target_turns(state.seed, state.index, rule)
    for step in steps:
        _count(
            report, state.nodes[step.rule_id].rule, state, previous, node_limit, counts_as=rule.id
        )
    if state.status.get(rule.id) is Status.BLOCKED:
        known = sum(1 for s in steps if s.opens_turn)  # the plan, each turn's first request
        report.counts[rule.id]["blocked"] += report.weight(state.index) * max(expected - known, 0)


def _prompt_chars(node: LLMNode) -> int:
    return sum(len(m.content) for m in node.request.messages)


def _status(status: Status) -> str:
    if status in (Status.CACHED, Status.GENERATED):
        return "cached"
    return {Status.RUN: "run", Status.BLOCKED: "blocked"}.get(status, "failed")


def node_facts(graph: Graph, rule: LLMRule, state: SampleState) -> NodeFacts:
    """What is known of ``rule``'s node for this sample, whether or not its key is."""
    node = state.nodes.get(rule.id)
    inference = graph.inference
    running = tuple(d for d in rule.deps if state.status.get(d) in (Status.RUN, Status.BLOCKED))
    inputs = {
        d: (None if d in running else text_digest(state.values[d]))
        for d in rule.deps
        if d in state.values or d in running
    }
    sampled = {d: v.id for d in rule.deps if isinstance(v := state.values.get(d), SampledValue)}
    return NodeFacts(
        id=f"{rule.id}[{state.index}]",
        rule=rule.id,
        sample=state.index,
        key=node.key if node is not None and state.status.get(rule.id) is Status.RUN else None,
        sample_key=state.sample_key,
        engine=inference.engine.name,
        model=inference.identity,
        params=node.parts["params"] if isinstance(node, LLMNode) else inference.key_params,
        template=rule.digest,
        messages=[(m.role, m.text) for m in rule.messages],
        inputs=inputs,
        sampled=sampled,
        upstream_running=running,
        tool=_tool_facts(node) if isinstance(node, ToolNode) else None,
    )


def _tool_facts(node: ToolNode) -> dict[str, Any]:
    """What an executor call's key is made of, as the reasons compare it."""
    executor = node.tool.executor
    return {**node.parts, "executor_name": executor.name if executor else None}


def estimate(report: Explanation) -> dict[str, Any]:
    """Requests, tokens and dollars the build would spend (blocked nodes included).

    A rule's input tokens are its prompts' characters at the tokens per character its
    answered requests took (the provider's count; a blocked node, whose prompt is not
    known yet, at their average), else at its tokenizer's count, else at 4 characters a
    token; its output tokens are what its answered requests averaged,
    else ``max_new_tokens`` each (then ``output_tokens`` is the upper bound)."""
    graph = report.graph
    rules = {r.id: r for r in graph.llm_rules}
    # with quality gates, a slot still open takes this many attempts on average (each
    # attempt sends what its first does: an approximation for a slot past its first)
    attempts = report.quality.expected_attempts if report.quality is not None else 1.0
    input_tokens = output_tokens = output_max = requests = 0
    by_model: dict[str | None, list[int]] = {}  # a judge's own model: its tokens' price
    sources: dict[str, str] = {}
    for rule_id, counts in report.counts.items():
        rule = rules.get(rule_id)
        own = dict(rule.params) if rule is not None else {}
        default_max = graph.inference.request_params.get("max_new_tokens", 1024)
        max_out = int(own.get("max_new_tokens", default_max))
        run, blocked = counts["run"], counts["blocked"]
        run -= min(report.tool_runs[rule_id], run)  # an executor call is no request
        if not run + blocked:
            continue
        per_request = report.input_chars[rule_id] / run if run else _template_chars(graph, rule_id)
        chars = report.input_chars[rule_id] + blocked * per_request
        seen, counted = report.history.get(rule_id), report.counted.get(rule_id)
        outputs = (run + blocked) * max_out
        if seen and seen.chars:
            sources[rule_id] = "usage"  # a blocked prompt's text is unknown: the average's
            sent = report.input_chars[rule_id] * seen.input_tokens / seen.chars
            inputs = sent + blocked * seen.input_tokens / seen.requests
            outputs = min(round((run + blocked) * seen.output_tokens / seen.requests), outputs)
        elif counted and counted.chars:
            sources[rule_id] = "tokenizer"
            inputs = chars * counted.input_tokens / counted.chars
        else:
            sources[rule_id] = "characters"
            inputs = chars / CHARS_PER_TOKEN
        spent = (round(inputs * attempts), round(outputs * attempts))
        spent_max = round((run + blocked) * attempts) * max_out
        input_tokens += spent[0]
        output_tokens += spent[1]
        output_max += spent_max
        requests += round((run + blocked) * attempts)
        tally = by_model.setdefault(rule.model if rule is not None else None, [0, 0, 0])
        for k, n in enumerate((*spent, spent_max)):
            tally[k] += n
    return {
        "requests": requests,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "output_tokens_max": output_max,
        "cost_usd": _cost(report, by_model, 1),
        "cost_usd_max": _cost(report, by_model, 2),
        "tokens_from": sources,
        "batch": report.batch,
    }


def _template_chars(graph: Graph, rule_id: str) -> float:
    rule = next(r for r in graph.rules if r.id == rule_id)
    if isinstance(rule, MultiturnRule):
        return float(sum(len(p.text) for p in rule.personas))
    return float(sum(len(m.text) for m in getattr(rule, "messages", ())))


def _cost(report: Explanation, by_model: dict[str | None, list[int]], out: int) -> float | None:
    """The price of the tokens counted per model (``out``: which output count)."""
    total, graph = 0.0, report.graph
    for model, tokens in (by_model or {None: [0, 0, 0]}).items():
        cost = cost_usd(
            graph,
            tokens[0],
            tokens[out],
            report.prices,
            batch=report.batch,
            model=model or graph.inference.model,
        )
        if cost is None:
            return None
        total += cost
    return round(total, 6)


def cost_usd(
    graph: Graph,
    input_tokens: int,
    output_tokens: int,
    prices: dict[str, tuple[float, float]] | None = None,
    *,
    batch: bool = False,
    model: str | None = None,
) -> float | None:
    """What ``graph``'s model (or ``model``, a judge's own) charges for the tokens (0 for a
    local engine; None when its price is unknown, or when tokens of several models are
    counted together), at the batch price when ``batch``."""
    inference = graph.inference
    if ENGINES[inference.engine].local:
        return 0.0
    if model is None and any(rule.model for rule in graph.llm_rules):
        return None
    rates = price(model or inference.model, prices)
    if rates is None:
        return None
    scale = BATCH_PRICE if batch else 1.0
    return round((input_tokens * rates[0] + output_tokens * rates[1]) * scale / 1e6, 6)


def _to_json(report: Explanation) -> dict[str, Any]:
    graph = report.graph
    rules = []
    for rule in graph.rules:
        entry: dict[str, Any] = {"id": rule.id, "kind": rule.kind.value, "deps": list(rule.deps)}
        if rule.id in report.counts:
            counts = report.counts[rule.id]
            entry["counts"] = {s: counts[s] for s in ("cached", "run", "blocked", "failed")}
            entry["failed_last_time"] = report.failed_last_time[rule.id]
        rules.append(entry)
    totals = {s: report.total(s) for s in ("cached", "run", "blocked", "failed")}
    totals["nodes"] = sum(totals.values())
    return {
        "schema_version": SCHEMA_VERSION,
        "model": {
            "engine": graph.inference.engine.name,
            "name": graph.inference.model,
            "identity": graph.inference.identity,
        },
        "num_samples": graph.num_samples,
        "rules": rules,
        "totals": totals,
        "estimate": estimate(report),
        "nodes": [_node_json(n) for n in report.nodes],
        "nodes_omitted": report.omitted,
        "remote_hits": dict(report.remote_hits),
        "sampled": _sampled(report.walk),
        "quality": report.quality.to_json() if report.quality is not None else None,
    }


def _sampled(walk: Walk | None) -> dict[str, int] | None:
    """How the counts of a big build were estimated; None when every sample was walked."""
    if walk is None or not walk.estimated:
        return None
    return {"exact_samples": walk.exact, "every": walk.every, "samples_walked": walk.walked()}


def _node_json(node: NodeReport) -> dict[str, Any]:
    return {
        "id": node.id,
        "rule": node.rule,
        "sample": node.sample,
        "status": node.status,
        "key": node.key,
        "reasons": [{"check": r.check, "detail": r.detail} for r in node.reasons],
    }


def why(graph: Graph, store: Store, previous: Manifest | None, node_id: str) -> dict[str, Any]:
    """Everything about one node: key, rendered messages, inputs and their keys, status,
    reasons, and the cached output if there is one."""
    rule, index = _parse_node_id(graph, node_id)
    state = start(graph, index)
    advance(graph, state, store)
    status = _status(state.status.get(rule.id, Status.BLOCKED))
    node = state.nodes.get(rule.id)
    facts = node_facts(graph, rule, state)
    record = store.get(node.key) if node is not None else None
    inputs = {}
    for dep in rule.deps:
        upstream = state.nodes.get(dep)
        known = Status.CACHED if dep in state.values else Status.BLOCKED  # sampled values too
        inputs[dep] = {
            "value": _plain(state.values.get(dep)),
            "digest": facts.inputs.get(dep),
            "key": upstream.key if upstream is not None else None,
            "status": _status(state.status.get(dep, known)),
        }
    return {
        "id": node_id,
        "rule": rule.id,
        "sample": index,
        "status": status,
        "key": node.key if node is not None else None,
        **_sent(node),
        "inputs": inputs,
        "reasons": []
        if status == "cached"
        else [{"check": r.check, "detail": r.detail} for r in reasons(facts, previous)],
        "output": record.text if record is not None else None,
        **({"tool_calls": record.tool_calls} if record is not None and record.tool_calls else {}),
    }


def _sent(node: LLMNode | ToolNode | None) -> dict[str, Any]:
    """What a node sends: a request's messages and draw seed, or a tool call's arguments
    and the environment state it starts from."""
    if isinstance(node, ToolNode):
        return {"tool": node.tool.id, "arguments": node.arguments, "state": node.state}
    if node is None:
        return {"draw_seed": None, "messages": None}
    return {
        "draw_seed": node.request.seed,
        "messages": [_message(m) for m in node.request.messages],
    }


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [call.to_dict() for call in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def _plain(value: Any) -> Any:
    return value.id if isinstance(value, SampledValue) else value


def _parse_node_id(graph: Graph, node_id: str) -> tuple[LLMRule, int]:
    """The rule and sample ``node_id`` names: ``answer[3]``, or a conversation step such
    as ``dialog.turn2[3]`` / ``dialog.turn2.r2.call1[3]``."""
    name, _, rest = node_id.partition("[")
    rules: dict[str, LLMRule] = {r.id: r for r in graph.llm_rules}
    conversations = [r for r in graph.rules if isinstance(r, MultiturnRule)]
    for conversation in conversations:
        if name not in rules and name.startswith(f"{conversation.id}."):
            step = Step.parse(conversation.id, name[len(conversation.id) + 1 :])
            if step is not None:
                rules[name] = step_rule(conversation, step)
    if name not in rules or not rest.endswith("]") or not rest[:-1].isdigit():
        last = graph.num_samples - 1
        known = [f"{r}[0..{last}]" for r in rules if r != name]
        known += [f"{c.id}.plan[0..{last}], {c.id}.turnN[0..{last}]" for c in conversations]
        raise ConfigError.at(f"no node {node_id!r}; nodes are {', '.join(known)}")
    index = int(rest[:-1])
    if index >= graph.num_samples:
        raise ConfigError.at(f"no node {node_id!r}: samples run 0..{graph.num_samples - 1}")
    return rules[name], index
