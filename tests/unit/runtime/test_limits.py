"""Rate budgets on a simulated clock: the window guarantee, the burst size, usage corrections."""

from __future__ import annotations

import random

import pytest

from synthc.core.messages import Message, Request, Usage
from synthc.runtime.limits import Budget, RateLimiter, Reservation, estimate_tokens


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _send_times(limiter: RateLimiter, clock: Clock, costs: list[int]) -> list[float]:
    """Everyone asks at once (a crowd of workers); each sends at its reserved time."""
    times = []
    for cost in costs:
        delay, _ = limiter.reserve(1, cost, None)
        times.append(clock.now + delay)
    return times


def _max_in_window(times: list[float], weights: list[int], window: float) -> int:
    best = 0
    for start in times:
        best = max(
            best, sum(w for t, w in zip(times, weights, strict=True) if start <= t < start + window)
        )
    return best


@pytest.mark.parametrize("rpm", [1, 7, 60, 600, 10_000])
def test_requests_never_exceed_rpm_in_any_minute(rpm: int) -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=rpm, clock=clock)
    times = _send_times(limiter, clock, [0] * min(3 * rpm, 3000))
    assert _max_in_window(times, [1] * len(times), 60.0) <= rpm
    # and the budget is used: the first minute gets all but ~1/61 of it
    assert sum(t < clock.now + 60.0 for t in times) >= min(len(times), rpm * 60 // 61)


def test_opening_burst_is_one_second_not_one_minute() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=600, clock=clock)
    times = _send_times(limiter, clock, [0] * 100)
    immediate = sum(t == clock.now for t in times)
    assert immediate == 9  # a full bucket holds 600/61 ≈ 9.8 requests
    assert _max_in_window(times, [1] * 100, 1.0) <= 20


def test_input_tokens_respect_the_window_with_varied_prompts() -> None:
    clock = Clock()
    limiter = RateLimiter(input_tokens_per_minute=61_000, clock=clock)
    rng = random.Random(0)
    costs = [rng.randint(1, 1000) for _ in range(400)]  # each within one burst (1000)
    times = _send_times(limiter, clock, costs)
    assert _max_in_window(times, costs, 60.0) <= 61_000


def test_oversized_request_waits_for_a_full_bucket_and_leaves_debt() -> None:
    budget = Budget(61, window=60.0, burst=1.0)  # 1 unit/s, holds 1
    assert budget.earliest(5, now=0.0) == 0.0
    budget.take(5, at=0.0)
    assert budget.earliest(1, now=0.0) == pytest.approx(5.0)


def test_settle_charges_under_estimates_and_keeps_over_estimates() -> None:
    clock = Clock()
    limiter = RateLimiter(input_tokens_per_minute=6100, clock=clock)  # 100 a second
    delay, reservation = limiter.reserve(1, 100, None)
    assert delay == 0 and reservation == Reservation(100, 0, 100)
    assert limiter.reserve(1, 100, None)[0] == pytest.approx(1.0)
    limiter.settle(Reservation(100, 0, 100), Usage(input_tokens=150, output_tokens=0))
    assert limiter.reserve(1, 10, None)[0] == pytest.approx(2.5 + 0.15 - 1.0)  # +50 owed
    limiter.settle(Reservation(100, 0, 100), Usage(input_tokens=10, output_tokens=0))
    # nothing given back, but later estimates are scaled by reported / estimated (160 / 200)
    delay, reservation = limiter.reserve(1, 100, None)
    assert reservation == Reservation(80, 0, 100)
    assert delay == pytest.approx(3.5 - 1.0 + 0.8 - 1.0 + 0.15, abs=0.01)


def test_output_estimate_is_max_new_tokens_then_the_mean_seen() -> None:
    clock = Clock()
    limiter = RateLimiter(output_tokens_per_minute=61_000, clock=clock)
    assert limiter.reserve(1, 0, 500)[1].output_tokens == 500
    limiter.settle(Reservation(0, 500), Usage(0, 20))
    limiter.settle(Reservation(0, 500), Usage(0, 40))
    assert limiter.reserve(1, 0, 500)[1].output_tokens == 30


def test_no_limits_means_inactive() -> None:
    assert not RateLimiter().active
    assert RateLimiter(requests_per_minute=5).active


def test_token_estimate_is_about_four_characters_a_token() -> None:
    request = Request("m", (Message("user", "x" * 400),))
    assert estimate_tokens(request) == 104
