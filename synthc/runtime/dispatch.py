"""Send one request through a backend under the endpoint's limits; get back its final outcome.

``Dispatcher.run`` is called concurrently, once per ready node. It keeps at
most ``num_workers`` calls to the backend in flight (fewer while the endpoint
answers 429: :mod:`synthc.runtime.window`), waits for the rate
budgets (:mod:`synthc.runtime.limits`), keeps each worker idle for
``politeness_policy`` seconds after its call returns (oumi's semantics; the
caller gets its outcome at once), and retries retryable failures up to
``max_retries`` times:

- the provider said ``Retry-After``: wait exactly that long, plus up to 10 %
  jitter so a crowd of workers does not return at the same instant; a 429 with
  ``Retry-After`` also pauses every worker of this endpoint until then;
- otherwise: ``min(retry_backoff_base * 2.0**attempt, retry_backoff_max)``, of
  which the upper half is random ("equal jitter").

A :class:`Breaker` stops the build when the endpoint itself is at fault: after
:data:`BREAKER_THRESHOLD` attempts in a row fail the same systemic way (the host
refuses the connection, the key is refused, the model is not found), nothing more
is sent and every call raises the breaker's error, which names the config key.

Backends with ``max_batch > 1`` get micro-batches: requests submitted while the
event loop is busy are gathered (until a pass of the loop adds none, or
``max_batch``) into one ``generate`` call, which takes one worker.
The dispatcher owns the backend: ``aclose`` closes it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from synthc.core.errors import EngineError
from synthc.core.messages import Completion, Outcome, Request, RequestFailure, Usage
from synthc.runtime.config import Limits
from synthc.runtime.limits import Limiter, RateLimiter, Reservation, estimate_tokens
from synthc.runtime.protocol import Backend
from synthc.runtime.window import Window

RETRY_AFTER_JITTER = 0.1  # fraction of a server-given Retry-After added at random
BREAKER_THRESHOLD = 5  # systemic failures in a row, all alike, that stop the sending


class Breaker:
    """Counts systemic failures in a row; at the threshold, stops every call with ``stop``'s
    error (made from the last failure). Any completion, or another kind of failure, resets."""

    def __init__(
        self, stop: Callable[[RequestFailure], Exception], threshold: int = BREAKER_THRESHOLD
    ):
        self._stop = stop
        self._threshold = threshold
        self._run: tuple[int | None, str] | None = None  # the failure repeating: status, kind
        self._count = 0
        self.error: Exception | None = None

    def check(self) -> None:
        """Raise the breaker's error if it has opened."""
        if self.error is not None:
            raise self.error

    def record(self, outcome: Outcome) -> None:
        if not isinstance(outcome, RequestFailure) or not outcome.systemic:
            self._run, self._count = None, 0
            return
        kind = (outcome.status, outcome.message.split(":", 1)[0])
        self._count = self._count + 1 if kind == self._run else 1
        self._run = kind
        if self._count >= self._threshold and self.error is None:
            self.error = self._stop(outcome)
        self.check()


class Dispatcher:
    """Runs requests against one backend with bounded concurrency, pacing and retries."""

    def __init__(
        self,
        backend: Backend,
        limits: Limits,
        *,
        limiter: Limiter | None = None,
        breaker: Breaker | None = None,
    ):
        self.backend = backend
        self._breaker = breaker
        self.limits = limits
        self._slots = Window(limits.num_workers)  # fewer when the endpoint answers 429
        self._limiter = limiter if limiter is not None else RateLimiter.from_limits(limits)
        self._limited = self._limiter.active
        self._batcher = _Batcher(self) if backend.max_batch > 1 else None

    async def run(self, request: Request) -> Outcome:
        """The request's completion, or its last failure once retries are spent or useless."""
        attempt = 0
        while True:
            if self._breaker is not None:
                self._breaker.check()
            if self._batcher is None:
                outcome, window_blamed = await self._attempt(request)
            else:
                outcome, window_blamed = await self._batcher.submit(request), False
            if self._breaker is not None:
                self._breaker.record(outcome)
            if isinstance(outcome, Completion):
                return outcome
            assert isinstance(outcome, RequestFailure)
            spent = not window_blamed  # a 429 the window took the blame for costs no retry
            if not outcome.retryable or (spent and attempt >= self.limits.max_retries):
                return outcome
            await asyncio.sleep(self._retry_delay(outcome, attempt))
            attempt += spent

    async def _attempt(self, request: Request) -> tuple[Outcome, bool]:
        """The outcome of one try, and whether it was a 429 the window took the blame for."""
        ticket = await self._slots.acquire()
        try:
            if self._breaker is not None:  # it may have opened while this waited for a worker
                self._breaker.check()
            reservation = await self._wait_for_budget((request,))
            start = time.perf_counter()
            outcome = (await self.backend.generate((request,)))[0]
            latency = time.perf_counter() - start
            blamed = False
            if isinstance(outcome, Completion):
                self._slots.succeeded()
            elif outcome.status == 429:
                blamed = self._slots.throttled(ticket)
        finally:
            self._release()
        return self._finish(outcome, latency, reservation), blamed

    def _release(self) -> None:
        """Free a worker, after ``politeness_policy`` seconds if there is one (no task)."""
        if self.limits.politeness_policy > 0:
            loop = asyncio.get_running_loop()
            loop.call_later(self.limits.politeness_policy, self._slots.release)
        else:
            self._slots.release()

    async def _wait_for_budget(self, requests: Sequence[Request]) -> Reservation | None:
        pause = self._limiter.paused_for()
        if pause > 0:
            await asyncio.sleep(pause)
        if not self._limited:
            return None
        tokens = sum(estimate_tokens(r) for r in requests)
        max_output = requests[0].params.get("max_new_tokens")
        return await self._limiter.acquire(len(requests), tokens, max_output)

    def _finish(self, outcome: Outcome, latency: float, reservation: Reservation | None) -> Outcome:
        if isinstance(outcome, Completion):
            if reservation is not None:
                self._limiter.settle(reservation, outcome.usage)
            return replace(outcome, latency=latency)
        assert isinstance(outcome, RequestFailure)
        if outcome.status == 429 and outcome.retry_after:
            self._limiter.pause(outcome.retry_after)
        return outcome

    async def run_batch(self, batch: list[tuple[Request, asyncio.Future[Outcome]]]) -> None:
        """One ``generate`` call for a micro-batch; resolves each request's future."""
        requests = [request for request, _ in batch]
        try:
            reservation = await self._wait_for_budget(requests)
            start = time.perf_counter()
            outcomes = await self.backend.generate(requests)
            latency = time.perf_counter() - start
            if len(outcomes) != len(requests):
                raise EngineError(
                    f"backend returned {len(outcomes)} outcomes for {len(requests)} requests"
                )
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        if reservation is not None:
            self._settle_batch(reservation, outcomes)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(self._finish(outcome, latency, None))

    def _settle_batch(self, reservation: Reservation, outcomes: Sequence[Outcome]) -> None:
        done = [o.usage for o in outcomes if isinstance(o, Completion)]
        if done:
            usage = Usage(sum(u.input_tokens for u in done), sum(u.output_tokens for u in done))
            self._limiter.settle(reservation, usage, replies=len(done))

    def _retry_delay(self, failure: RequestFailure, attempt: int) -> float:
        if failure.retry_after is not None:
            return failure.retry_after * (1.0 + RETRY_AFTER_JITTER * random.random())
        limits = self.limits
        delay = min(limits.retry_backoff_base * 2.0**attempt, limits.retry_backoff_max)
        return delay / 2 + random.random() * delay / 2

    async def aclose(self) -> None:
        """Stop batching and close the backend."""
        if self._batcher is not None:
            await self._batcher.aclose()
        await self.backend.aclose()


class _Batcher:
    """Gathers concurrently submitted requests into micro-batches of at most ``max_batch``."""

    def __init__(self, dispatcher: Dispatcher):
        self._dispatcher = dispatcher
        self._max = dispatcher.backend.max_batch
        self._pending: list[tuple[Request, asyncio.Future[Outcome]]] = []
        self._waiting = False  # a flush task is waiting for a worker
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, request: Request) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if not self._waiting:
            self._spawn()
        return future

    def _spawn(self) -> None:
        self._waiting = True
        task = asyncio.ensure_future(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        dispatcher = self._dispatcher
        await dispatcher._slots.acquire()
        try:
            await self._gather()
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            self._waiting = False
            if self._pending:
                self._spawn()
            await dispatcher.run_batch(batch)
        finally:
            dispatcher._release()

    async def _gather(self) -> None:
        """Yield to the loop until a pass adds no request or the batch is full."""
        size = -1
        while size != len(self._pending) and len(self._pending) < self._max:
            size = len(self._pending)
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
