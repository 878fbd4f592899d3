"""Run a build's shards as Ray tasks, with the endpoint's budgets in one Ray actor.

Ray is what vLLM itself uses to spread a model over GPUs and what Ray Data's
LLM batch inference runs on, so a cluster that serves a model already runs it.
Here, per build:

- the driver puts the compiled job (spec and graph) in Ray's object store once
  and starts one task per shard (:func:`synthc.cluster.shards.plan_shards`);
  a task that dies with its worker is run again by Ray (``max_retries``), and
  the rerun finds what the dead one already answered in the cache;
- an :class:`EndpointBudget` actor holds the endpoint's request and token
  budgets (the same GCRA buckets a local build keeps, :mod:`synthc.runtime.limits`)
  and its pause after a 429 with ``Retry-After``, so limits are global: each
  request reserves its send time there, and each shard looks up the pause
  every :data:`PAUSE_POLL` seconds (and pauses at once when it got the 429
  itself); ``num_workers`` is split between the shards;
- an in-process engine (vLLM, llama.cpp, transformers) is loaded once per
  :class:`EngineActor`: one per GPU, or per tensor-parallel group of
  ``tensor_parallel_size`` GPUs, or one on a cluster without GPUs. Shards feed
  them their micro-batches, two shards per engine by default so that an engine
  always has the next batch waiting; on a GPU cluster only the resources differ;
- each shard is a streaming task: it yields its counts every :data:`REPORT_EVERY`
  seconds (the driver's progress bar) and its report last.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from synthc.cluster.shards import (
    Counts,
    LiveCounts,
    Shard,
    ShardJob,
    ShardReport,
    plan_shards,
    run_shard,
)
from synthc.compiler.engines import ENGINES
from synthc.core.errors import ClusterError, SynthError
from synthc.core.messages import Outcome, Request, Usage
from synthc.runtime.backends import local_max_batch
from synthc.runtime.config import LocalModelConfig
from synthc.runtime.engines import endpoint_limits, load_local_backend, local_config
from synthc.runtime.limits import RateLimiter, Reservation
from synthc.runtime.protocol import Backend
from synthc.runtime.scheduler import Progress, expected_nodes

try:
    import ray
    from ray.exceptions import RayError, RayTaskError
except ImportError as exc:  # pragma: no cover - the extra is installed in CI
    raise ClusterError("--executor ray needs Ray: pip install 'synthc[ray]'") from exc

PAUSE_POLL = 0.25  # seconds between a shard's looks at the endpoint's pause
REPORT_EVERY = 0.25  # seconds between a shard's progress reports
SHARD_RETRIES = 3  # runs of a shard after its worker died
log = logging.getLogger("synthc.cluster")


@ray.remote(num_cpus=0)
class EndpointBudget:
    """One endpoint's budgets and pause, for every shard of a build. A driver keeps one
    for all its builds (starting an actor costs a process) and resets it for each."""

    def __init__(self) -> None:
        self._limiter = RateLimiter()

    def reset(
        self, requests: int | None, input_tokens: int | None, output_tokens: int | None
    ) -> None:
        """Fresh budgets and no pause, for a new build."""
        self._limiter = RateLimiter(requests, input_tokens, output_tokens)

    def reserve(
        self, requests: int, input_tokens: int, max_output: int | None
    ) -> tuple[float, Reservation]:
        return self._limiter.reserve(requests, input_tokens, max_output)

    def settle(self, reservation: Reservation, usage: Usage, replies: int) -> None:
        self._limiter.settle(reservation, usage, replies)

    def pause(self, seconds: float) -> None:
        self._limiter.pause(seconds)

    def paused_for(self) -> float:
        return self._limiter.paused_for()


class SharedLimiter:
    """A shard's view of its build's :class:`EndpointBudget` (a
    :class:`~synthc.runtime.limits.Limiter`): with per-minute limits every request
    reserves its send time there; a 429's pause is recorded there at once and looked
    up by every shard every :data:`PAUSE_POLL` seconds."""

    def __init__(self, budget: Any, active: bool):
        self._budget = budget
        self.active = active
        self._resume_at = 0.0  # monotonic: nothing is sent before this

    async def acquire(
        self, requests: int, input_tokens: int, max_output: int | None = None
    ) -> Reservation:
        delay, reservation = await self._budget.reserve.remote(requests, input_tokens, max_output)
        if delay > 0:
            await asyncio.sleep(delay)
        return Reservation(*reservation)

    def settle(self, reservation: Reservation, usage: Usage, replies: int = 1) -> None:
        self._budget.settle.remote(reservation, usage, replies)

    def pause(self, seconds: float) -> None:
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)
        self._budget.pause.remote(seconds)

    def paused_for(self) -> float:
        return max(0.0, self._resume_at - time.monotonic())

    def join(self) -> None:
        """Take on the pause under way, if any, before sending anything (a shard that
        starts late, or again after its worker died, must not send into it)."""
        self._pause_for(ray.get(self._budget.paused_for.remote()))

    async def watch(self) -> None:
        """Keep up with pauses other shards started."""
        while True:
            self._pause_for(await self._budget.paused_for.remote())
            await asyncio.sleep(PAUSE_POLL)

    def _pause_for(self, left: float) -> None:
        if left > 0:
            self._resume_at = max(self._resume_at, time.monotonic() + left)


@ray.remote(max_restarts=SHARD_RETRIES, max_task_retries=SHARD_RETRIES)
class EngineActor:
    """An in-process engine's model, answering every shard's batches in turn (one at a
    time: ``max_concurrency=1``). The model loads with the first batch, so a build that
    finds everything cached loads none. An actor that dies is restarted by Ray and the
    batch it had is sent again (each request carries its seed: the same answers)."""

    def __init__(self, config: LocalModelConfig):
        self._config = config
        self._backend: Backend | None = None
        self.load_seconds = 0.0

    def loaded_in(self) -> float:
        """Seconds the model took to load (0 if it never had to)."""
        return self.load_seconds

    async def generate(self, requests: list[Request]) -> list[Outcome]:
        if self._backend is None:
            started = time.perf_counter()
            self._backend = load_local_backend(self._config)
            self.load_seconds = time.perf_counter() - started
        return await self._backend.generate(requests)


class ActorBackend:
    """A shard's :class:`~synthc.runtime.protocol.Backend` on an :class:`EngineActor`."""

    def __init__(self, engine: Any, max_batch: int):
        self._engine = engine
        self.max_batch = max_batch

    async def generate(self, requests: Sequence[Request]) -> list[Outcome]:
        outcomes: list[Outcome] = await self._engine.generate.remote(list(requests))
        return outcomes

    async def aclose(self) -> None:
        pass  # the driver stops the engine once every shard is done


@ray.remote(num_returns="streaming", max_retries=SHARD_RETRIES, retry_exceptions=False)
def synthc_shard(
    job: ShardJob, shard: Shard, limiter: SharedLimiter, engine: tuple[Any, int] | None
) -> Iterator[Counts | ShardReport]:
    """One shard, in a Ray worker (its process title is ``ray::synthc_shard``): its
    counts every :data:`REPORT_EVERY` seconds for the driver's progress, then its report.

    The shard runs in a thread of its own; if the driver cancels the task, the shard is
    stopped and commits what it received before the cancellation goes on.
    """
    counts, stop = LiveCounts(), threading.Event()
    backend = ActorBackend(*engine) if engine is not None else None
    limiter.join()
    done: list[ShardReport | BaseException] = []

    def run() -> None:
        try:
            report = run_shard(
                job,
                shard,
                limiter=limiter,
                backend=backend,
                counts=counts,
                beside=(limiter.watch,),
                stop=stop,
            )
            done.append(report)
        except BaseException as exc:  # handed to the task's own thread, raised there
            done.append(exc)

    thread = threading.Thread(target=run, name=f"synthc-shard-{shard.index}")
    thread.start()
    try:
        while thread.is_alive():
            thread.join(REPORT_EVERY)
            yield counts.drain()
    finally:
        stop.set()
        thread.join()
    if isinstance(done[0], BaseException):
        raise done[0]
    yield counts.drain()
    yield done[0]


def run_shards(
    job: ShardJob,
    *,
    address: str | None = None,
    shards: int | None = None,
    progress: Progress,
) -> ClusterRun:
    """Build ``job`` on a Ray cluster, ``shards`` tasks (default: the cluster's CPUs, or
    two per engine for an in-process engine); every shard's report once all are done."""
    started_here = connect(address)
    try:
        return _run(job, shards, progress)
    finally:
        if started_here:
            ray.shutdown()


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` (``local`` starts one on this machine, with
    ``num_cpus`` if given; None: Ray's own rule, RAY_ADDRESS or a running cluster or a new
    local one), quietly; whether this call started it (False if Ray was already up)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address or 'auto'}: {exc}") from exc
    return True


@dataclass
class ClusterRun:
    """What the shards of one build did, and how long its engines took to load."""

    reports: list[ShardReport]
    engine_load_seconds: float = 0.0


def _run(job: ShardJob, count: int | None, progress: Progress) -> ClusterRun:
    limits = endpoint_limits(job.spec)
    engines = _engines(job) if ENGINES[job.graph.inference.engine].local else []
    if count is None:  # two shards per engine keep its next batch waiting
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        count = 2 * len(engines) if engines else max(1, cpus)
    # an engine's shards send one batch at a time each; HTTP shards split num_workers
    plan = plan_shards(job.graph.num_samples, count, count if engines else limits.num_workers)
    budgets = (
        limits.requests_per_minute,
        limits.input_tokens_per_minute,
        limits.output_tokens_per_minute,
    )
    active = not engines and RateLimiter.from_limits(limits).active
    limiter = SharedLimiter(_fresh_budget(budgets), active)
    batch = local_max_batch(job.graph.inference.engine) if engines else 0
    progress.begin(expected_nodes(job.graph))
    job_ref = ray.put(job)
    streams = [
        synthc_shard.remote(
            job_ref,
            shard,
            limiter,
            (engines[shard.index % len(engines)], batch) if engines else None,
        )
        for shard in plan
    ]
    log.info("building %d samples in %d shards on Ray", job.graph.num_samples, len(plan))
    try:
        reports = _follow(streams, progress)
        loads = ray.get([engine.loaded_in.remote() for engine in engines])
        return ClusterRun(reports, max(loads, default=0.0))
    finally:
        for stream in streams:
            ray.cancel(stream)
        for engine in engines:
            ray.kill(engine)


def _follow(streams: list[Any], progress: Progress) -> list[ShardReport]:
    """Show the shards' counts as they come; their reports, in shard order."""
    reports: dict[int, ShardReport] = {}
    pending = list(streams)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=REPORT_EVERY)
        for stream in ready:
            try:
                item = _get(next(stream))  # type: ignore[arg-type]  # a generator
            except StopIteration:
                continue
            if isinstance(item, ShardReport):
                reports[item.shard.index] = item
            else:
                _show(item, progress)
            pending.append(stream)
    return [reports[index] for index in sorted(reports)]


_budgets: dict[str, Any] = {}  # the driver's node in this Ray instance → its budget actor


def _fresh_budget(budgets: tuple[int | None, int | None, int | None]) -> Any:
    """This driver's budget actor, reset for a new build; started with the first build on
    a Ray instance (a node id is new with every instance, so a handle on an instance shut
    down since is never used)."""
    node = ray.get_runtime_context().get_node_id()
    if node not in _budgets:
        _budgets.clear()
        _budgets[node] = EndpointBudget.remote()  # type: ignore[attr-defined]
    ray.get(_budgets[node].reset.remote(*budgets))  # before any shard asks it anything
    return _budgets[node]


def _engines(job: ShardJob) -> list[Any]:
    """One engine actor per GPU, or per ``tensor_parallel_size`` GPUs; one without GPUs."""
    config = local_config(job.spec, job.graph)
    group = max(1, int(config.options.get("tensor_parallel_size") or 1))
    gpus = int(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]
    resources = {"num_gpus": group, "num_cpus": 0} if gpus else {"num_cpus": 0}
    count = max(1, gpus // group) if gpus else 1
    actor = EngineActor.options(max_concurrency=1, **resources)  # type: ignore[attr-defined]
    return [actor.remote(config) for _ in range(count)]


def _show(counts: Counts, progress: Progress) -> None:
    if counts.cached:
        progress.cached(counts.cached)
    if counts.generated or counts.failed:
        progress.counted(counts.generated, counts.failed, counts.output_tokens)


def _get(ref: Any) -> Any:
    """What a shard sent; a shard's own error (a SynthError) as itself."""
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, SynthError):
            raise cause from None
        raise ClusterError(f"a shard failed: {cause!r}") from None
    except RayError as exc:
        raise ClusterError(
            f"a shard could not finish, Ray's retries spent ({type(exc).__name__}); what it "
            "built is in the cache. Run the same command again to resume."
        ) from None
