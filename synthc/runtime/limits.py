"""Turn per-minute request and token budgets into a delay before each request is sent.

Each budget (requests, input tokens, output tokens per minute) is a continuous
token bucket, reserved in arrival order without locks (GCRA: a request gets a
send time the moment it asks, then sleeps until it).

The guarantee, as a server sees it: in any 60-second window, at most ``limit``
units are sent, and never more than one second's worth at once. To get both,
a bucket refills at ``limit / (60 + 1)`` units per second and holds at most one
second's worth (``burst``), starting full: ``burst + 60 s * rate = limit``.
The price is 1/61 (1.6 %) of the nominal rate; the gain is no opening burst of
a whole minute's budget, which providers that enforce per-second quotas reject.

A request costing more than a burst (a long prompt) is let through only when
its bucket is full and leaves it in debt; in a 60 s window the overshoot is then
at most that one request's cost beyond a burst. Token costs are estimates:
input ~ ``len(text) / 4``, scaled by how the provider's reported counts have
compared with those estimates so far; output = the running mean of reported
output counts (``max_new_tokens``, at most a burst, until the first reply).
:meth:`RateLimiter.settle` charges what a reply used beyond its estimate; an
over-estimate is not given back, because requests queued behind it already hold
their send times, and budget returned then would let new requests bunch up among
them (a server sees it as a burst). Over-estimates only cost throughput, and the
scaling keeps them small. Under-estimates are charged when the reply arrives, so
output tokens can run over a budget by what the requests already sent or queued
(at most ``num_workers`` of them) used beyond the mean.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

from synthc.core.messages import Request, Usage
from synthc.runtime.config import Limits

WINDOW = 60.0  # seconds: "per minute"
BURST = 1.0  # seconds of budget a full bucket holds


class Budget:
    """A continuous token bucket of ``limit`` units per ``window`` seconds."""

    __slots__ = ("capacity", "rate", "tat")

    def __init__(self, limit: float, window: float = WINDOW, burst: float = BURST):
        if limit <= 0 or window <= 0 or burst <= 0:
            raise ValueError("limit, window and burst must be positive")
        self.rate = limit / (window + burst)  # units per second
        self.capacity = self.rate * burst
        self.tat = -math.inf  # when the bucket is full again; full from the start

    def earliest(self, cost: float, now: float) -> float:
        """The first time ``cost`` units (at most a full bucket) are available."""
        need = min(cost, self.capacity)
        return max(now, self.tat - (self.capacity - need) / self.rate)

    def take(self, cost: float, at: float) -> None:
        self.tat = max(self.tat, at) + cost / self.rate

    def adjust(self, delta: float, now: float) -> None:
        """Charge ``delta`` more units for a request already sent (an under-estimate)."""
        self.tat = max(self.tat, now) + delta / self.rate


class Reservation(NamedTuple):
    """What a request was charged before sending, to correct once usage is known."""

    input_tokens: int
    output_tokens: int
    input_estimate: int = 0  # the input count before scaling


class Limiter(Protocol):
    """An endpoint's budgets and pauses, as the dispatcher uses them: this process's own
    (:class:`RateLimiter`) or one shared by every process sending to the endpoint."""

    active: bool  # whether any budget is set (else ``acquire`` need not be called)

    async def acquire(
        self, requests: int, input_tokens: int, max_output: int | None = None
    ) -> Reservation: ...

    def settle(self, reservation: Reservation, usage: Usage, replies: int = 1) -> None: ...

    def pause(self, seconds: float) -> None:
        """Send nothing to the endpoint for ``seconds`` (a 429 with ``Retry-After``)."""

    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when there is none)."""


class RateLimiter:
    """Request and token budgets for one endpoint; ``acquire`` before each send."""

    def __init__(
        self,
        requests_per_minute: int | None = None,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        *,
        window: float = WINDOW,
        burst: float = BURST,
        clock: Callable[[], float] = time.monotonic,
    ):
        def budget(limit: int | None) -> Budget | None:
            return Budget(limit, window, burst) if limit else None

        self._requests = budget(requests_per_minute)
        self._input = budget(input_tokens_per_minute)
        self._output = budget(output_tokens_per_minute)
        self._clock = clock
        self._resume_at = -math.inf  # nothing is sent before this (after a 429)
        self._output_seen = 0
        self._replies = 0
        self._input_reported = 0
        self._input_estimated = 0
        self.active = any(b is not None for b in (self._requests, self._input, self._output))

    @classmethod
    def from_limits(cls, limits: Limits) -> RateLimiter:
        return cls(
            limits.requests_per_minute,
            limits.input_tokens_per_minute,
            limits.output_tokens_per_minute,
        )

    def reserve(
        self, requests: int, input_tokens: int, max_output: int | None
    ) -> tuple[float, Reservation]:
        """Charge the budgets now; the seconds to wait before sending, and the charge."""
        now = self._clock()
        estimate, input_tokens = input_tokens, self._input_charge(input_tokens)
        output = self._output_estimate(max_output) * requests
        charges = (
            (self._requests, requests),
            (self._input, input_tokens),
            (self._output, output),
        )
        at = now
        for budget, cost in charges:
            if budget is not None:
                at = max(at, budget.earliest(cost, now))
        for budget, cost in charges:
            if budget is not None:
                budget.take(cost, at)
        return at - now, Reservation(input_tokens, output, estimate)

    async def acquire(
        self, requests: int, input_tokens: int, max_output: int | None = None
    ) -> Reservation:
        """Wait until the budgets allow sending ``requests`` requests of ``input_tokens``."""
        delay, reservation = self.reserve(requests, input_tokens, max_output)
        if delay > 0:
            await asyncio.sleep(delay)
        return reservation

    def settle(self, reservation: Reservation, usage: Usage, replies: int = 1) -> None:
        """Charge what the provider reported beyond ``reservation``; learn from it."""
        self._output_seen += usage.output_tokens
        self._replies += replies
        now = self._clock()
        if self._input is not None and usage.input_tokens:
            self._input_reported += usage.input_tokens
            self._input_estimated += reservation.input_estimate or reservation.input_tokens
            self._input.adjust(max(0, usage.input_tokens - reservation.input_tokens), now)
        if self._output is not None:
            self._output.adjust(max(0, usage.output_tokens - reservation.output_tokens), now)

    def pause(self, seconds: float) -> None:
        self._resume_at = max(self._resume_at, self._clock() + seconds)

    def paused_for(self) -> float:
        return max(0.0, self._resume_at - self._clock())

    def _input_charge(self, estimate: int) -> int:
        """``estimate`` scaled by reported / estimated input so far (within 4x either way)."""
        if self._input is None or not self._input_estimated:
            return estimate
        ratio = min(max(self._input_reported / self._input_estimated, 0.25), 4.0)
        return math.ceil(estimate * ratio)

    def _output_estimate(self, max_output: int | None) -> int:
        if self._output is None:
            return 0
        if self._replies:
            return self._output_seen // self._replies
        # before any reply: max_new_tokens, but at most a burst, or the first few requests
        # would book minutes of budget that their replies then mostly give back
        return math.ceil(min(max_output or self._output.capacity, self._output.capacity))


def estimate_tokens(request: Request) -> int:
    """A rough input-token count: four characters a token, plus a few per message."""
    return sum(len(m.content) for m in request.messages) // 4 + 4 * len(request.messages)
