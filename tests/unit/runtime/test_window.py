"""window: the in-flight limit halves on a 429 once per round, never below one, and grows back."""

from __future__ import annotations

import asyncio

from synthc.runtime.window import Window


def test_a_burst_of_429s_from_one_round_cuts_the_window_once() -> None:
    async def run() -> None:
        window = Window(8)
        tickets = [await window.acquire() for _ in range(8)]
        assert window.in_flight == 8
        assert all(window.throttled(t) for t in tickets)  # all blamed on the window...
        assert window.limit == 4.0  # ...which was cut once, for the round they were sent in
        for _ in tickets:
            window.release()
        later = await window.acquire()
        assert window.throttled(later) and window.limit == 2.0  # a new round: cut again

    asyncio.run(run())


def test_the_window_stops_at_one_and_then_429s_count_against_the_request() -> None:
    async def run() -> None:
        window = Window(2)
        first = await window.acquire()
        assert window.throttled(first) and window.limit == 1.0
        window.release()
        second = await window.acquire()
        assert not window.throttled(second)  # at one in flight the request is at fault
        window.release()

    asyncio.run(run())


def test_completions_grow_the_window_back_to_num_workers() -> None:
    window = Window(4)
    window.limit = 1.0
    grown = []
    for _ in range(20):
        window.succeeded()
        grown.append(window.limit)
    assert grown == sorted(grown) and grown[-1] == 4.0
    assert grown[0] == 2.0  # one completion at a window of one: one more in flight


def test_waiters_enter_one_at_a_time_at_a_window_of_one() -> None:
    async def run() -> list[int]:
        window = Window(3)
        window.limit = 1.0
        seen: list[int] = []  # requests in flight as each one enters

        async def worker() -> None:
            await window.acquire()
            seen.append(window.in_flight)
            await asyncio.sleep(0)
            window.release()

        await asyncio.gather(*(worker() for _ in range(5)))
        return seen

    assert asyncio.run(run()) == [1, 1, 1, 1, 1]
