"""Cut a build into shards, run one shard, and answer the driver's assembly pass.

A shard is a contiguous range of samples, so a sample's whole chain of nodes
(its attributes, a conversation's turns, its tool calls) stays in one process.
:func:`run_shard` runs synthc's own :class:`~synthc.runtime.scheduler.Scheduler`
on that range against the shared cache, with the shard's share of the
endpoint's workers, and keeps no rows: every answer goes to the cache, the way
a local build writes it (durable before the sample ends, so a killed shard
loses only what it had in flight). The driver then builds locally over the
filled cache with :class:`ShardAnswers` as its runner: every node is a cache
hit except those that failed, which it answers with the failure the shard got,
so the JSONL is byte for byte a local build's, and the manifest too but for its
header's time (docs/scale-out.md says where a label may differ). An executor
call that failed is run again by the driver (it is user code, not a request).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthc.cache.claims import Claims
from synthc.cache.layered import open_store
from synthc.compiler.graph import Graph
from synthc.compiler.validate import Spec
from synthc.core.errors import ClusterError
from synthc.core.keys import digest
from synthc.core.messages import Completion, Outcome, Request, RequestFailure
from synthc.planning.plan import Node, samples_share_nodes
from synthc.runtime.engines import LazyRunner
from synthc.runtime.limits import Limiter
from synthc.runtime.loops import run_loop
from synthc.runtime.protocol import Backend
from synthc.runtime.scheduler import Scheduler, Stats, window_for

STOP_POLL = 0.1  # seconds between a shard's looks at whether it is to stop


@dataclass(frozen=True)
class Shard:
    """The samples one process builds, and how many requests it may have in flight."""

    index: int
    samples: range
    num_workers: int


def plan_shards(num_samples: int, count: int, num_workers: int) -> list[Shard]:
    """``count`` shards of contiguous samples (fewer when there are fewer samples or
    workers), splitting ``num_workers`` so that together they never exceed it."""
    count = max(1, min(count, num_samples, num_workers))
    size, extra = divmod(num_samples, count)
    workers, spare = divmod(num_workers, count)
    shards, first = [], 0
    for index in range(count):
        last = first + size + (index < extra)
        shards.append(Shard(index, range(first, last), workers + (index < spare)))
        first = last
    return shards


@dataclass(frozen=True)
class ShardJob:
    """What every shard of one build shares: the compiled build and where its cache is."""

    spec: Spec
    graph: Graph
    cache_dir: Path  # a directory every process can reach (local, or a shared mount)
    remotes: tuple[str, ...] = ()  # remote cache tiers, as the build was given them
    readonly: bool = False
    build: str = ""  # the build's id, stamped on every record its shards make


@dataclass
class Counts:
    """Nodes a shard cached, answered and failed (and the tokens answered) since last asked."""

    cached: int = 0
    generated: int = 0
    failed: int = 0
    output_tokens: int = 0


class LiveCounts:
    """A shard's running :class:`Counts`: the scheduler's Progress, drained from another
    thread to report to the driver."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = Counts()

    def drain(self) -> Counts:
        """The counts so far; zero from now on."""
        with self._lock:
            counts, self._counts = self._counts, Counts()
        return counts

    def begin(self, total: int) -> None:
        pass

    def cached(self, count: int) -> None:
        with self._lock:
            self._counts.cached += count

    def generated(self, node: Node, completion: Completion | None) -> None:
        with self._lock:
            self._counts.generated += 1
            self._counts.output_tokens += completion.usage.output_tokens if completion else 0

    def failed(self, node: Node, message: str) -> None:
        with self._lock:
            self._counts.failed += 1

    def counted(self, generated: int, failed: int, output_tokens: int) -> None:
        with self._lock:
            self._counts.generated += generated
            self._counts.failed += failed
            self._counts.output_tokens += output_tokens


@dataclass
class ShardReport:
    """What a shard did: its counts, and each request that failed for good, by digest."""

    shard: Shard
    stats: Stats
    failures: dict[str, RequestFailure] = field(default_factory=dict)


def request_digest(request: Request) -> str:
    """One name per distinct request, the same in every process."""
    return digest(dataclasses.asdict(request))


class _Recording:
    """A runner that remembers the requests that failed for good."""

    def __init__(self, runner: LazyRunner, failures: dict[str, RequestFailure]):
        self._runner = runner
        self._failures = failures

    async def run(self, request: Request, key: str = "") -> Outcome:
        outcome = await self._runner.run(request, key)
        if isinstance(outcome, RequestFailure):
            self._failures[request_digest(request)] = outcome
        return outcome


def run_shard(
    job: ShardJob,
    shard: Shard,
    *,
    limiter: Limiter | None = None,
    backend: Backend | None = None,
    counts: LiveCounts | None = None,
    beside: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    stop: threading.Event | None = None,
) -> ShardReport:
    """Build ``shard``'s samples into the shared cache; its report.

    ``limiter`` holds the endpoint's budgets when several processes share them;
    ``backend`` is an in-process engine's model, loaded once for all shards elsewhere;
    ``counts`` is kept up to date as nodes are cached, answered and failed; each of
    ``beside`` runs alongside and is cancelled when the shard is done (to follow the
    endpoint's pauses); setting ``stop`` (from another thread) cancels the shard, which
    still commits every answer it received.
    """
    store = open_store(job.cache_dir, job.remotes, readonly=job.readonly, write_behind=True)
    # shards that may need the same node claim it, as separate builds do, to send it once
    siblings = "" if samples_share_nodes(job.graph) else job.build
    claims = Claims.open(job.cache_dir, store.local, siblings=siblings)
    counts = counts if counts is not None else LiveCounts()
    failures: dict[str, RequestFailure] = {}

    async def run() -> Stats:
        runner = LazyRunner(
            job.spec, job.graph, num_workers=shard.num_workers, limiter=limiter, backend=backend
        )
        scheduler = Scheduler(
            job.graph,
            store,
            _Recording(runner, failures),
            lambda state: None,  # rows are the driver's: it reads them back from the cache
            progress=counts,
            window=window_for(shard.num_workers),
            claims=claims,
            samples=shard.samples,
            build=job.build,
        )
        tasks = [asyncio.create_task(task()) for task in beside]
        if stop is not None:
            tasks.append(asyncio.create_task(_cancel_when(stop, asyncio.current_task())))
        try:
            return await scheduler.run()
        finally:
            # answers the scheduler refused are failures the assembly must find too
            failures.update((request_digest(r), failure) for r, failure in scheduler.refused)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.aclose()

    try:
        stats = run_loop(run())
    finally:
        try:
            store.close()
        finally:
            if claims is not None:
                claims.close()
    return ShardReport(shard, stats, failures)


async def _cancel_when(stop: threading.Event, task: asyncio.Task[Any] | None) -> None:
    while not stop.is_set():
        await asyncio.sleep(STOP_POLL)
    if task is not None:
        task.cancel()


class ShardAnswers:
    """The runner of the driver's assembly pass over a cache the shards filled.

    Every node the shards answered is a cache hit and never reaches a runner; a
    request that failed for good is answered with the failure its shard got; any
    other request means a shard did not finish, and the build stops without
    sending it.
    """

    def __init__(self, failures: Mapping[str, RequestFailure]):
        self._failures = failures
        self.load_seconds = 0.0

    async def run(self, request: Request, key: str = "") -> Outcome:
        failure = self._failures.get(request_digest(request))
        if failure is None:
            raise ClusterError(
                "a node is neither in the cache nor reported failed by a shard; "
                "the shards did not finish. Run the same command again to resume."
            )
        return failure

    async def aclose(self) -> None:
        pass


def merge_stats(
    reports: Sequence[ShardReport], assembled: Stats, engine_load_seconds: float = 0.0
) -> Stats:
    """A build's counts from its shards' and from the assembly that read their work back:
    what a local build of the same graph would have counted. Requests a killed shard had
    answered before it died are counted as cached: its report died with it."""
    generated = sum(r.stats.generated for r in reports)
    return dataclasses.replace(
        assembled,
        generated=generated,
        cached=assembled.cached + assembled.reused - generated,
        reused=0,
        input_tokens=sum(r.stats.input_tokens for r in reports),
        output_tokens=sum(r.stats.output_tokens for r in reports),
        tool_calls=assembled.tool_calls + sum(r.stats.tool_calls for r in reports),
        engine_load_seconds=engine_load_seconds,
    )
