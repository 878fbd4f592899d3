"""Answer a build's requests through a provider's batch API: keyed requests in, outcomes out.

The scheduler hands :class:`BatchRunner` one node at a time, as it does the
online dispatcher, and awaits its outcome. The runner gathers the nodes that
arrive together (a *wave*: every node ready now) until none has arrived for
:data:`LINGER` seconds, then:

1. nodes a recorded batch already holds (an earlier run's, or another build's)
   wait for that batch: nothing is paid twice;
2. the rest are cut into batches within the provider's limits, each recorded in
   the :class:`~synthc.cache.batches.BatchJournal` *before* it is submitted, the
   node keys as custom_ids;
3. each batch is polled (backing off to :data:`POLL_MAX`) until it ends, and its
   results go back to the waiting nodes as they are downloaded; the scheduler
   writes each to the cache and steps its sample, so dependent nodes (an answer
   after its question) arrive as the next wave.

A line the provider did not run (the batch expired or was cancelled) is
submitted again; so is a retryable line failure, up to ``max_retries`` times; a
line of an earlier run's batch that has no answer is submitted again too. A
line that failed for good fails its node only. A batch the provider refuses as
a whole (a malformed file, a quota) stops the build with the provider's words.

With ``wait=False`` the runner looks at each batch once: what has ended is
collected, and when nothing more can happen without waiting, every node still
with the provider raises :class:`BatchesPending`, which ends the build without
writing its output; running it again collects the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthc.cache.batches import BatchJournal, Entry
from synthc.compiler.graph import Graph
from synthc.compiler.validate import Spec
from synthc.core.errors import BatchesPending, EngineError
from synthc.core.messages import Completion, Outcome, Request, RequestFailure
from synthc.runtime.engines import endpoint_config

if TYPE_CHECKING:
    from synthc.runtime.backends.batch_api import BatchClient, BatchState

LINGER = 0.5  # seconds without a new node before a wave is submitted
POLL_FIRST = 0.05  # seconds before the first look at a new batch
POLL_MAX = 30.0  # seconds between looks at a batch, at most
BATCH_WINDOW = 20_000  # samples a batch build keeps open: their ready nodes make one wave
SUBMIT_GRACE = 900.0  # seconds an unregistered build may take to upload a batch it recorded
SUBMIT_POLL = 0.5  # seconds between looks for the id of a batch another build is submitting
log = logging.getLogger("synthc.batch")


@dataclass
class BatchCounts:
    """What the progress display shows: requests submitted by this run, in batches not
    yet ended, downloaded; and the batches' ids."""

    submitted: int = 0
    in_progress: int = 0
    downloaded: int = 0
    batch_ids: list[str] = field(default_factory=list)


@dataclass
class _Node:
    key: str
    request: Request
    future: asyncio.Future[Outcome]
    tries: int = 0  # times submitted again after a retryable failure


@dataclass
class _Batch:
    id: str
    intent: str
    earlier: bool  # recorded before this run: lines without an answer are submitted again
    nodes: dict[str, _Node] = field(default_factory=dict)
    parked: bool = False  # wait=False and not ended at the last look


class BatchRunner:
    """Runs requests through a provider's batch API (see the module docstring)."""

    load_seconds = 0.0
    window = BATCH_WINDOW

    def __init__(
        self,
        spec: Spec,
        graph: Graph,
        journal: BatchJournal,
        progress: Any = None,
        *,
        wait: bool = True,
        linger: float = LINGER,
        owner: str = "",
        is_live: Callable[[str], bool] | None = None,
    ):
        self._spec = spec
        self._graph = graph
        self.journal = journal
        self._progress = progress
        self.wait = wait
        self._linger = linger
        self._owner = owner  # this build's registration on the cache directory
        self._is_live = is_live  # whether a registered build still runs
        self._max_retries = spec.config.inference_config.remote_params.max_retries
        self._client: BatchClient | None = None  # made on the first wave, so a cached
        # build needs no key
        self.endpoint = endpoint_id(spec, graph)
        self.counts = BatchCounts()
        self.delivered: list[str] = []  # keys answered: settled once the cache has them
        self._arrivals: list[_Node] = []
        self._events = 0  # arrivals and batch looks: the gatherer waits for them to stop
        self._wake = asyncio.Event()
        self._gatherer: asyncio.Task[None] | None = None
        self._batches: dict[str, _Batch] = {}  # provider id → batch being polled
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None  # what stopped the runner

    async def run(self, request: Request, key: str) -> Outcome:
        if self._error is not None:
            raise self._error
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._arrive(_Node(key, request, future))
        if self._gatherer is None:
            self._gatherer = asyncio.create_task(self._gather())
        return await future

    def _arrive(self, node: _Node) -> None:
        self._arrivals.append(node)
        self._stir()

    def _stir(self) -> None:
        self._events += 1
        self._wake.set()

    async def _gather(self) -> None:
        wave: list[_Node] = []
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self._quiet()
                wave, self._arrivals = self._arrivals, []
                if wave:
                    await self._route(wave)
                elif not self.wait and self._batches and self._all_parked():
                    self._stop_pending()
                wave = []
        except Exception as exc:  # a refused batch, an unreachable provider: stop the build
            self._fail_nodes(wave, exc)
            self._fail_all(exc)

    async def _quiet(self) -> None:
        """Return once nothing has happened for ``linger`` seconds (or a batch is full)."""
        while True:
            seen = self._events
            await asyncio.sleep(self._linger)
            client = self._client
            full = client is not None and len(self._arrivals) >= client.max_requests
            if self._events == seen or full:
                return

    async def _route(self, wave: list[_Node]) -> None:
        """Wait for the nodes a recorded batch holds; submit the rest."""
        client = self._ready_client()
        unique: dict[str, _Node] = {}
        for node in wave:
            unique.setdefault(node.key, node)
        held = self.journal.live(self.endpoint, list(unique))
        await self._adopt({key: (entry, unique[key]) for key, entry in held.items()})
        fresh = [node for key, node in unique.items() if key not in held]
        for chunk in _chunks(client, fresh):
            await self._submit(chunk)

    async def _adopt(self, held: dict[str, tuple[Entry, _Node]]) -> None:
        """Nodes in batches recorded earlier (or by another build): wait for those."""
        by_intent: dict[str, tuple[Entry, list[_Node]]] = {}
        for entry, node in held.values():
            by_intent.setdefault(entry.intent, (entry, []))[1].append(node)
        for entry, nodes in by_intent.values():
            batch_id = entry.batch_id or await self._submitted_id(entry)
            if batch_id is None:  # never reached the provider: submit them ourselves
                self.journal.abandon(entry.intent)
                for node in nodes:
                    self._arrive(node)
                continue
            batch = self._batches.get(batch_id)
            if batch is None:
                batch = self._batches[batch_id] = _Batch(batch_id, entry.intent, earlier=True)
                self._note_batch(batch_id)
                self._spawn(self._poll(batch))
            batch.nodes.update((node.key, node) for node in nodes)
            self.counts.in_progress += len(nodes)

    async def _submitted_id(self, entry: Entry) -> str | None:
        """The provider's id for an intent recorded without one: another build may be
        uploading it now (wait while it runs for the id), or died while it did (ask the
        provider). An unregistered build is given :data:`SUBMIT_GRACE` seconds."""
        while self._may_be_submitting(entry):
            await asyncio.sleep(SUBMIT_POLL)
            now = {e.intent: e for e in self.journal.entries(self.endpoint)}.get(entry.intent)
            if now is None or now.batch_id is not None:
                return now.batch_id if now is not None else None
        others = [e for e in self.journal.entries(self.endpoint) if e.intent != entry.intent]
        known = {e.batch_id for e in others if e.batch_id}
        found = await self._ready_client().find(entry.intent, entry.created, entry.size, known)
        if found is not None:
            log.info("found batch %s, submitted by a build that stopped before noting it", found)
            self.journal.submitted(entry.intent, found)
        return found

    def _may_be_submitting(self, entry: Entry) -> bool:
        if entry.owner and self._is_live is not None:
            return entry.owner != self._owner and self._is_live(entry.owner)
        return time.time() - entry.created < SUBMIT_GRACE

    async def _submit(self, nodes: list[_Node]) -> None:
        keys = [n.key for n in nodes]
        entry, taken = self.journal.intend(self.endpoint, keys, self._owner)
        by_key = {n.key: n for n in nodes}
        # another build recorded these meanwhile: wait for its batch
        await self._adopt({key: (held, by_key.pop(key)) for key, held in taken.items()})
        if entry is None:
            return
        items = [(n.key, n.request) for n in by_key.values()]
        try:
            batch_id = await self._ready_client().submit(items, entry.intent)
        except EngineError:
            self.journal.abandon(entry.intent)  # refused: nothing was submitted
            raise
        self.journal.submitted(entry.intent, batch_id)
        batch = self._batches[batch_id] = _Batch(batch_id, entry.intent, earlier=False)
        batch.nodes.update(by_key)
        self.counts.submitted += len(by_key)
        self.counts.in_progress += len(by_key)
        self._note_batch(batch_id)
        self._spawn(self._poll(batch))

    async def _poll(self, batch: _Batch) -> None:
        """Look at ``batch`` until it ends, then hand its results out; whatever goes wrong
        fails the build (its nodes first: they are no longer anywhere else)."""
        try:
            state = await self._watch(batch)
            if state is None:
                return  # parked: wait=False
            if state.refused is not None:
                self.journal.abandon(batch.intent)  # nothing in it ran
                raise EngineError(f"the provider failed batch {batch.id}: {state.refused}")
            results = await self._ready_client().results(batch.id)
        except Exception as exc:
            self._batches.pop(batch.id, None)
            self._fail_nodes(batch.nodes.values(), exc)
            raise
        del self._batches[batch.id]
        self._collect(batch, results)
        self._stir()

    async def _watch(self, batch: _Batch) -> BatchState | None:
        """``batch``'s state once it has ended; None if not ended and not to be waited for."""
        client = self._ready_client()
        delay = POLL_FIRST
        await asyncio.sleep(delay)
        while True:
            state = await client.state(batch.id)
            if state.ended:
                return state
            if not self.wait:
                batch.parked = True
                self._stir()
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX)

    def _collect(self, batch: _Batch, results: dict[str, Outcome | None]) -> None:
        again: list[_Node] = []
        for key, node in batch.nodes.items():
            outcome = results.get(key)
            self.counts.in_progress -= 1
            if isinstance(outcome, Completion):
                self.counts.downloaded += 1
                self.delivered.append(key)
                _settle(node, outcome)
            elif outcome is None or batch.earlier or self._retry(node, outcome):
                node.tries += outcome is not None
                again.append(node)
            else:
                _settle(node, outcome)
        unanswered = [k for k in batch.nodes if not isinstance(results.get(k), Completion)]
        self.journal.settle(unanswered, batch.intent)  # the answers: once they are cached
        for node in again:
            self._arrive(node)
        self._report()

    def _retry(self, node: _Node, failure: RequestFailure) -> bool:
        return failure.retryable and node.tries < self._max_retries

    def _all_parked(self) -> bool:
        return all(batch.parked for batch in self._batches.values())

    def _stop_pending(self) -> None:
        ids = sorted(self._batches)
        waiting = [n for b in self._batches.values() for n in b.nodes.values()]
        error = BatchesPending(len(waiting), ids)
        for node in waiting:
            if not node.future.done():
                node.future.set_exception(error)

    def _fail_all(self, exc: BaseException) -> None:
        self._error = self._error or exc
        waiting = [n for b in self._batches.values() for n in b.nodes.values()]
        self._fail_nodes([*self._arrivals, *waiting], exc)

    @staticmethod
    def _fail_nodes(nodes: Iterable[_Node], exc: BaseException) -> None:
        for node in nodes:
            if not node.future.done():
                node.future.set_exception(exc)

    def _ready_client(self) -> BatchClient:
        if self._client is None:
            self._client = make_client(self._spec, self._graph)
        return self._client

    def _note_batch(self, batch_id: str) -> None:
        if batch_id not in self.counts.batch_ids:
            self.counts.batch_ids.append(batch_id)
        self._report()

    def _report(self) -> None:
        method = getattr(self._progress, "batches", None)
        if method is not None:
            method(self.counts)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._fail_all(task.exception())  # type: ignore[arg-type]

    async def aclose(self) -> None:
        for task in [*self._tasks, *([self._gatherer] if self._gatherer else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()

    def close(self, *, settle: bool) -> None:
        """Close the journal; with ``settle``, once the cache holds every answer delivered,
        forget their lines first."""
        if settle:
            self.journal.settle(self.delivered)
        self.journal.close()


def _settle(node: _Node, outcome: Outcome) -> None:
    if not node.future.done():
        node.future.set_result(outcome)


def _chunks(client: BatchClient, nodes: list[_Node]) -> list[list[_Node]]:
    """``nodes`` cut into batches within ``client``'s request-count and byte limits."""
    chunks: list[list[_Node]] = []
    size = 0
    for node in nodes:
        line = client.line_size(node.key, node.request)
        if not chunks or len(chunks[-1]) >= client.max_requests or size + line > client.max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(node)
        size += line
    return chunks


def endpoint_id(spec: Spec, graph: Graph) -> str:
    """Which provider a batch is at: the engine and its URL (never the key)."""
    endpoint = endpoint_config(spec, graph.inference.engine)
    return f"{endpoint.engine.name} {endpoint.api_url}"


def make_client(spec: Spec, graph: Graph) -> BatchClient:
    """The batch client for the build's engine, over its online backend."""
    from synthc.runtime.backends import create_backend
    from synthc.runtime.backends.batch_api import batch_client

    endpoint = endpoint_config(spec, graph.inference.engine)
    return batch_client(create_backend(endpoint, connections=1), endpoint)
