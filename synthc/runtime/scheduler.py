"""Run a graph's nodes: a Graph, a Store and a Dispatcher in; finished samples out, in order.

Samples are taken in order and resolved against the cache; the requests they
need go to the dispatcher at once and run concurrently. Each answer is written
to the cache the moment it arrives (a crash loses only requests in flight),
then the sample advances, which may make more of its nodes ready or cached
(early cutoff). At most ``window`` samples are open at a time, so memory does
not grow with ``num_samples``; finished samples leave in sample order.
With remote cache tiers, samples are resolved against the local tier only and
a node that misses there is looked up on the remotes before it is sent, many
lookups at once off the event loop; a remote hit counts as cached.
With other builds on the same cache directory, a node is claimed before it is
sent and one another build holds is read from the cache instead
(:mod:`synthc.cache.claims`). A tool node goes the same way, and is run by
:class:`synthc.runtime.tools.ToolRunner` instead of the model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from synthc.cache.claims import Claims
from synthc.compiler.graph import Graph, MultiturnRule
from synthc.core.messages import Completion, Outcome, Request, RequestFailure
from synthc.core.records import Lookup, Record, Store, remote_tiers
from synthc.planning.conversation import target_turns
from synthc.planning.plan import (
    PLAN_BATCH,
    UPSTREAM_FAILED,
    LLMNode,
    Node,
    SampleState,
    Status,
    TokenTally,
    ToolNode,
    advance,
    answer,
    duplicate_attempt,
    found,
    next_attempt,
    ran,
    resolve,
    spent,
    start,
    usable,
)
from synthc.runtime.tools import ToolRunError, ToolRunner


class Runner(Protocol):
    async def run(self, request: Request, key: str) -> Outcome:
        """The outcome of ``request``, the request of the node ``key`` names."""


class Progress(Protocol):
    """What the scheduler reports as it goes; the CLI draws it."""

    def begin(self, total: int) -> None: ...

    def cached(self, count: int) -> None: ...

    def generated(self, node: Node, completion: Completion | None) -> None:
        """``node`` was answered: by the model (``completion``) or by its executor."""

    def failed(self, node: Node, message: str) -> None: ...

    def counted(self, generated: int, failed: int, output_tokens: int) -> None:
        """Nodes answered (``generated``) or failed by a build's other processes, in bulk."""


class NoProgress:
    def begin(self, total: int) -> None:
        pass

    def cached(self, count: int) -> None:
        pass

    def generated(self, node: Node, completion: Completion | None) -> None:
        pass

    def failed(self, node: Node, message: str) -> None:
        pass

    def counted(self, generated: int, failed: int, output_tokens: int) -> None:
        pass


@dataclass
class Stats:
    cached: int = 0
    generated: int = 0
    failed: int = 0
    skipped: int = 0  # not attempted because an upstream node failed
    input_tokens: int = 0
    output_tokens: int = 0
    engine_load_seconds: float = 0.0  # loading an in-process model, if one was loaded
    tool_calls: int = 0  # executor calls made (a cached tool node makes none)
    samples_written: int = 0
    samples_failed: int = 0
    unusable: int = 0  # failed nodes the model answered in a form they cannot use
    # tokens the nodes of the samples written took, each node once, paid now or earlier
    dataset_tokens: list[int] = field(default_factory=lambda: [0, 0])  # [input, output]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (node id, why), first few
    remote_hits: dict[str, int] = field(default_factory=dict)  # cached nodes each remote served
    reused: int = 0  # nodes found in the cache that this build made in another process
    rejected: dict[str, int] = field(default_factory=dict)  # quality gate → rows it rejected
    slots_given_up: int = 0  # slots whose every attempt a quality gate rejected: no row

    @property
    def nodes(self) -> int:
        return self.cached + self.generated + self.failed + self.skipped


MAX_FAILURES_KEPT = 50


def window_for(num_workers: int) -> int:
    """How many samples a build keeps open: enough to keep ``num_workers`` busy."""
    return max(256, 8 * num_workers)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (less CPU per request), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class Scheduler:
    def __init__(
        self,
        graph: Graph,
        store: Store,
        runner: Runner,
        emit: Callable[[SampleState], None],
        *,
        progress: Progress | None = None,
        window: int = 1024,
        stats: Stats | None = None,
        claims: Claims | None = None,
        samples: range | None = None,
        build: str = "",
    ):
        self.graph = graph
        self.samples = samples if samples is not None else range(graph.num_samples)
        self.build = build  # stamped on the records it makes, when the build spans processes
        self.store = store
        self.runner = runner
        self.emit = emit
        self.progress = progress or NoProgress()
        self.window = window
        self.stats = stats if stats is not None else Stats()
        self.claims = claims  # other builds on this cache: send each node once between us
        self._remotes = remote_tiers(store)  # asked in _send, not while planning
        self._planning: Lookup = self._remotes.local_tier if self._remotes is not None else store
        self._open = 0
        self._finished: dict[int, SampleState] = {}
        self._next = self.samples.start
        self._room = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None
        self._llm = frozenset(r.id for r in graph.llm_rules)
        self._waiting: dict[str, list[tuple[SampleState, Node]]] = {}  # key → nodes awaiting it
        # answers refused by their node (not cached): a sharded build reports them as failed
        self.refused: list[tuple[Request, RequestFailure]] = []
        self.tools = ToolRunner(store, build)
        self._tokens = TokenTally(graph)  # what the written rows' nodes took
        # the kept rows, for dedup (in slot order)
        self._seen = graph.gates.seen() if graph.gates is not None else None

    async def run(self) -> Stats:
        """Build every sample (of ``samples``, when given); return the counts."""
        self.progress.begin(expected_nodes(self.graph, self.samples))
        try:
            index, total = self.samples.start, self.samples.stop
            while index < total:
                while self._open >= self.window:
                    await self._wait()
                count = min(self.window - self._open, PLAN_BATCH, total - index)
                states = [start(self.graph, i, self.build) for i in range(index, index + count)]
                self._open += count
                index += count
                to_send = resolve(self.graph, states, self._planning)
                for state, nodes in zip(states, to_send, strict=True):
                    self._dispatch(state, nodes)
            while self._open:
                await self._wait()
        finally:
            await self._cancel()
            self.tools.close()
            self.stats.tool_calls = self.tools.calls
        return self.stats

    async def _wait(self) -> None:
        self._room.clear()
        await self._room.wait()
        if self._error is not None:
            raise self._error

    def _step(self, state: SampleState) -> None:
        self._dispatch(state, advance(self.graph, state, self._planning))

    def _dispatch(self, state: SampleState, nodes: list[Node]) -> None:
        """Send ``nodes`` (each key once); finish ``state`` if it needs nothing more."""
        for node in nodes:
            waiting = self._waiting.get(node.key)
            if waiting is not None:  # the same request is in flight: share its answer
                waiting.append((state, node))
                continue
            self._waiting[node.key] = [(state, node)]
            task = asyncio.create_task(self._send(node))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
        if state.complete:
            self._finish(state)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._error = self._error or task.exception()
            self._room.set()  # wake run() so the error surfaces

    async def _send(self, node: Node) -> None:
        """Answer every node awaiting ``node.key``: from a remote tier, another build or the LLM.

        The order: ``_step`` gives each key one task, so identical nodes share one
        remote lookup, one claim and one request. The remote lookup comes before the
        claim: a claim makes the other builds on this cache directory wait for us, so
        it is not held across a round trip that may answer the node anyway (two builds
        may both read a record, which is harmless: reads change nothing and both
        copies are the same checked record). A node another build made after we
        planned it is in the local tier, and the claim reads it from there.
        """
        if self._remotes is not None:
            record = await self._remotes.fetch_remote(node.key)
            if record is not None and usable(node, record):
                self._found(node.key, record)
                return
        if self.claims is not None:
            made = await self.claims.claim(node.key)
            if made is not None and usable(node, made):  # another build sent it: a cache hit
                self._found(node.key, made)
                return
        await self._generate(node)

    async def _generate(self, node: Node) -> None:
        if isinstance(node, ToolNode):
            await self._run_tool(node)
            return
        try:
            outcome = await self.runner.run(node.request, node.key)
            if isinstance(outcome, Completion):
                self.stats.input_tokens += outcome.usage.input_tokens
                self.stats.output_tokens += outcome.usage.output_tokens
                outcome = self._accepted(node, outcome)
        finally:
            if self.claims is not None:
                self.claims.release(node.key)
        for i, (state, waiter) in enumerate(self._waiting.pop(node.key)):
            assert isinstance(waiter, LLMNode)  # a key is of one kind
            if isinstance(outcome, Completion):
                if i == 0:
                    self.stats.generated += 1
                    self.progress.generated(waiter, outcome)
                else:  # an identical request in the same build: answered without sending
                    self.stats.cached += 1
                    self.progress.cached(1)
                answer(state, waiter, outcome.text, tool_calls=outcome.tool_calls)
                spent(state, node.key, outcome.usage.input_tokens, outcome.usage.output_tokens)
            else:
                self._failed(waiter, outcome.message)
                self.stats.unusable += outcome.unusable
                answer(state, waiter, None, outcome.message)
            self._step(state)

    def _accepted(self, node: LLMNode, completion: Completion) -> Outcome:
        """``completion``, cached; or, when its node cannot use it, a failure (not cached)."""
        problem = node.problem(completion.text)
        if problem is None:
            self.store.put(node.key, _record(node, completion, self.build))
            return completion
        failure = RequestFailure(problem, retryable=False, unusable=True)
        self.refused.append((node.request, failure))
        return failure

    async def _run_tool(self, node: ToolNode) -> None:
        """Run an executor call; its new state is stored before the record that names it."""
        try:
            answered = await self.tools.run(node)
            if answered.state is not None:
                self.store.put(answered.state.key, answered.state)
            self.store.put(node.key, answered.record)
        except ToolRunError as exc:
            answered, error = None, str(exc)
        finally:
            if self.claims is not None:
                self.claims.release(node.key)
        for i, (state, waiter) in enumerate(self._waiting.pop(node.key)):
            assert isinstance(waiter, ToolNode)  # a key is of one kind
            if answered is None:
                self._failed(waiter, error)
                ran(state, waiter, None, error)
            else:
                if i == 0:
                    self.stats.generated += 1
                    self.progress.generated(waiter, None)
                else:
                    self.stats.cached += 1
                    self.progress.cached(1)
                ran(state, waiter, answered.ran)
            self._step(state)

    def _found(self, key: str, record: Record) -> None:
        """A remote tier or another build had ``key``: its nodes are cached (counted when
        their sample ends)."""
        for state, waiter in self._waiting.pop(key):
            found(state, waiter, record)
            self._step(state)

    def _failed(self, node: Node, message: str) -> None:
        self._note_failure(node.id, message)
        self.progress.failed(node, message)

    def _note_failure(self, node_id: str, message: str) -> None:
        self.stats.failed += 1
        if len(self.stats.failures) < MAX_FAILURES_KEPT:
            self.stats.failures.append((node_id, message))

    def _finish(self, state: SampleState) -> None:
        self._tally(state)
        following = next_attempt(self.graph, state, self.build)
        if following is not None or state.gave_up:
            gate = (following or state).rejections[-1].gate
            self.stats.rejected[gate] = self.stats.rejected.get(gate, 0) + 1
        if following is not None:  # a quality gate rejected the row: the slot draws again
            self._step(following)
            return
        self._finished[state.index] = state
        while self._next in self._finished:
            done = self._finished.pop(self._next)
            redrawn, same = (
                duplicate_attempt(self.graph, done, self._seen, self.build)
                if self._seen is not None
                else (None, None)
            )
            if same is not None:
                self.stats.rejected[same] = self.stats.rejected.get(same, 0) + 1
            if redrawn is not None:  # a row an earlier slot already holds: draw the slot again
                self._open += 1  # (its _finish closes it again)
                self._step(redrawn)
                continue
            if done.gave_up:
                self.stats.slots_given_up += 1
            elif done.ok:
                self.stats.samples_written += 1
                used_in, used_out = self._tokens.add(done)
                self.stats.dataset_tokens[0] += used_in
                self.stats.dataset_tokens[1] += used_out
            else:
                self.stats.samples_failed += 1
            self.emit(done)
            self._next += 1
        self._open -= 1
        self._room.set()

    def _tally(self, state: SampleState) -> None:
        """Count the sample's cached nodes and the failures that sent no request."""
        # every LLM node the sample made, multiturn steps included
        cached = sum(1 for node_id in state.nodes if state.status.get(node_id) is Status.CACHED)
        failed_steps = {n for n in state.nodes if state.status.get(n) is Status.FAILED}
        for rule in self.graph.rules:
            status = state.status.get(rule.id)
            message = state.errors.get(rule.id, "")
            if status is not Status.FAILED or rule.id in state.nodes:
                continue
            if message == UPSTREAM_FAILED:
                self.stats.skipped += rule.id in self._llm
            elif not any(step.startswith(f"{rule.id}.") for step in failed_steps):
                self._note_failure(f"{rule.id}[{state.index}]", message)
        self.stats.cached += cached
        self.stats.reused += state.reused
        if cached:
            self.progress.cached(cached)

    async def _cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def expected_nodes(graph: Graph, samples: range | None = None) -> int:
    """Requests a build of ``graph`` (of its ``samples``, when given) makes at least: each
    LLM rule once per sample, and per conversation its plan and one request per turn
    (tool rounds and plan retries come on top)."""
    samples = samples if samples is not None else range(graph.num_samples)
    total = len(samples) * len(graph.llm_rules)
    for rule in graph.rules:
        if isinstance(rule, MultiturnRule):
            total += sum(1 + target_turns(graph.seed, i, rule) for i in samples)
    return total


def _record(node: LLMNode, completion: Completion, build: str) -> Record:
    return Record(
        key=node.key,
        text=completion.text,
        request=node.canonical(),
        model=completion.model,
        usage={
            "input_tokens": completion.usage.input_tokens,
            "output_tokens": completion.usage.output_tokens,
        },
        latency=completion.latency,
        created=time.time(),
        tool_calls=[call.to_dict() for call in completion.tool_calls],
        build=build,
    )
