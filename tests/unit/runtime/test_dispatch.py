"""The dispatcher against a real local server: concurrency, rate limits, retries, batching."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from synthc.core.messages import Completion, Message, Outcome, Request, RequestFailure
from synthc.runtime.backends.openai_compat import OpenAICompatBackend
from synthc.runtime.config import EndpointConfig, Limits
from synthc.runtime.dispatch import Dispatcher
from synthc.runtime.limits import RateLimiter
from synthc.testing import FakeLLMServer, Fault

CHAT = "/v1/chat/completions"


@pytest.fixture
def srv() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def _requests(n: int) -> list[Request]:
    return [
        Request("m", (Message("user", f"question {i}"),), {"max_new_tokens": 16}) for i in range(n)
    ]


def _run_all(
    srv: FakeLLMServer,
    limits: Limits,
    n: int,
    *,
    limiter: RateLimiter | None = None,
    wrap: Callable[[OpenAICompatBackend], Any] = lambda b: b,
) -> list[Outcome]:
    async def go() -> list[Outcome]:
        backend = OpenAICompatBackend(EndpointConfig("REMOTE", "m", srv.url(CHAT)))
        dispatcher = Dispatcher(wrap(backend), limits, limiter=limiter)
        try:
            return list(await asyncio.gather(*(dispatcher.run(r) for r in _requests(n))))
        finally:
            await dispatcher.aclose()

    return asyncio.run(go())


def _max_in_window(times: list[float], window: float) -> int:
    return max(sum(start <= t < start + window for t in times) for start in times)


def test_never_more_than_num_workers_in_flight(srv: FakeLLMServer) -> None:
    srv.latency = 0.05
    outcomes = _run_all(srv, Limits(num_workers=4), 24)
    assert all(isinstance(o, Completion) for o in outcomes)
    assert srv.count == 24
    assert srv.max_concurrency == 4


def test_completions_come_back_in_order_with_latency(srv: FakeLLMServer) -> None:
    srv.latency = 0.02
    started = time.perf_counter()
    outcomes = _run_all(srv, Limits(num_workers=8), 8)
    whole = time.perf_counter() - started  # a request's latency is within the run, however slow
    for i, outcome in enumerate(outcomes):
        assert isinstance(outcome, Completion)
        assert outcome.text.startswith(f"reply to: question {i} #")
        assert 0.02 <= outcome.latency <= whole


def test_requests_per_window_as_seen_by_the_server(srv: FakeLLMServer) -> None:
    # The guarantee with the minute scaled down to one second: at most 40 arrive
    # in any 1 s window, with a burst of a quarter second's worth (8) at most.
    limiter = RateLimiter(requests_per_minute=40, window=1.0, burst=0.25)
    outcomes = _run_all(srv, Limits(num_workers=64), 60, limiter=limiter)
    assert all(isinstance(o, Completion) for o in outcomes)
    arrivals = srv.arrivals
    # Sent at most 40 in any 1 s; a send reaches the server up to 50 ms later on a loaded
    # machine, so arrivals are counted over 0.95 s windows (41 in one failed once).
    assert _max_in_window(arrivals, 1.0 - 0.05) <= 40
    # in every interval, at most the burst and 32/s: the limiter's bound, allowing the
    # 50 ms a loaded machine may add between a send and its arrival (the burst's 8 may
    # arrive late enough to meet the 9th, sent 31 ms after them)
    for i, start in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            assert j - i + 1 <= 8 + 32 * (arrivals[j] - start + 0.05), (i, j)
    assert arrivals[-1] - arrivals[0] >= (60 - 8) / 32 - 0.05  # 32/s after the burst


def test_real_rpm_has_no_opening_burst(srv: FakeLLMServer) -> None:
    start = time.monotonic()
    _run_all(srv, Limits(num_workers=64, requests_per_minute=600), 20)
    arrivals = srv.arrivals
    assert sum(t < start + 0.5 for t in arrivals) <= 9 + 5  # a burst of 9, then 9.8 a second
    assert _max_in_window(arrivals, 1.0) <= 20
    rate = 600 / 61  # a bucket holds one second of this, and starts full
    assert arrivals[-1] - start >= (20 - rate) / rate - 0.05


def test_retries_stop_after_max_retries(srv: FakeLLMServer) -> None:
    srv.faults = lambda body, index: Fault(status=500)
    limits = Limits(max_retries=2, retry_backoff_base=0.01, retry_backoff_max=0.02)
    [outcome] = _run_all(srv, limits, 1)
    assert isinstance(outcome, RequestFailure) and outcome.status == 500
    assert srv.count == 3


def test_final_failures_are_not_retried(srv: FakeLLMServer) -> None:
    srv.faults = lambda body, index: Fault(status=400)
    [outcome] = _run_all(srv, Limits(max_retries=5, retry_backoff_base=0.01), 1)
    assert isinstance(outcome, RequestFailure) and not outcome.retryable
    assert srv.count == 1


def test_retry_after_is_honoured_instead_of_backoff(srv: FakeLLMServer) -> None:
    srv.faults = lambda body, index: Fault(status=429, retry_after=0.3) if index == 0 else None
    limits = Limits(max_retries=3, retry_backoff_base=10.0)
    [outcome] = _run_all(srv, limits, 1)
    assert isinstance(outcome, Completion)
    arrivals = srv.arrivals
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.3
    # the wait the dispatcher chose: Retry-After plus at most 10 %, not the 5-10 s backoff
    dispatcher = Dispatcher(
        OpenAICompatBackend(EndpointConfig("REMOTE", "m", srv.url(CHAT))), limits
    )
    waits = [dispatcher._retry_delay(RequestFailure("", True, 429, 0.3), 0) for _ in range(50)]
    assert all(0.3 <= wait <= 0.33 for wait in waits)


def test_retry_after_429_pauses_the_other_workers_too(srv: FakeLLMServer) -> None:
    srv.faults = lambda body, index: Fault(status=429, retry_after=0.3) if index == 0 else None
    srv.latency = 0.01
    limits = Limits(num_workers=1, max_retries=3, retry_backoff_base=0.01)
    outcomes = _run_all(srv, limits, 3)
    assert all(isinstance(o, Completion) for o in outcomes)
    arrivals = srv.arrivals
    assert arrivals[1] - arrivals[0] >= 0.3  # request 1 waited although it was never refused


def test_backoff_waits_at_least_half_of_base_times_two_to_the_attempt(srv: FakeLLMServer) -> None:
    srv.faults = lambda body, index: Fault(status=503) if index < 3 else None
    limits = Limits(max_retries=3, retry_backoff_base=0.05, retry_backoff_max=10.0)
    [outcome] = _run_all(srv, limits, 1)
    assert isinstance(outcome, Completion)
    gaps = [b - a for a, b in zip(srv.arrivals, srv.arrivals[1:], strict=False)]
    assert all(g >= d for g, d in zip(gaps, (0.025, 0.05, 0.1), strict=True))


def test_politeness_spaces_a_workers_requests(srv: FakeLLMServer) -> None:
    _run_all(srv, Limits(num_workers=1, politeness_policy=0.1), 3)
    gaps = [b - a for a, b in zip(srv.arrivals, srv.arrivals[1:], strict=False)]
    assert min(gaps) >= 0.1


class Batched:
    """A batch engine stand-in: takes up to eight requests a call, sends them over HTTP."""

    max_batch = 8

    def __init__(self, inner: OpenAICompatBackend):
        self.inner = inner
        self.sizes: list[int] = []

    async def generate(self, requests: Sequence[Request]) -> list[Outcome]:
        self.sizes.append(len(requests))
        return await self.inner.generate(requests)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_concurrent_requests_are_micro_batched(srv: FakeLLMServer) -> None:
    backends: list[Batched] = []

    def wrap(inner: OpenAICompatBackend) -> Batched:
        backends.append(Batched(inner))
        return backends[0]

    outcomes = _run_all(srv, Limits(num_workers=1), 20, wrap=wrap)
    assert [o.text.split(" #")[0] for o in outcomes if isinstance(o, Completion)] == [
        f"reply to: question {i}" for i in range(20)
    ]
    assert backends[0].sizes == [8, 8, 4]
    assert srv.count == 20


class Broken:
    """A batch engine whose every call raises, as a crashed engine would."""

    max_batch = 4

    async def generate(self, requests: Sequence[Request]) -> list[Outcome]:
        raise RuntimeError("engine crashed")

    async def aclose(self) -> None:
        pass


def test_a_batch_engine_error_reaches_every_caller_in_the_batch() -> None:
    async def go() -> list[Any]:
        dispatcher = Dispatcher(Broken(), Limits())
        try:
            runs = (dispatcher.run(r) for r in _requests(3))
            return list(await asyncio.gather(*runs, return_exceptions=True))
        finally:
            await dispatcher.aclose()

    errors = asyncio.run(go())
    assert [str(e) for e in errors] == ["engine crashed"] * 3
