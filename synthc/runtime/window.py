"""Fit the requests in flight to what an endpoint takes: 429s in, a smaller window out.

``num_workers`` is the most requests a build keeps in flight; a provider may take
fewer (a rate limiter that counts concurrent requests, a small server). The
window starts at ``num_workers`` and adapts as TCP's congestion window does
(additive increase, multiplicative decrease):

- a 429 for a request sent after the window was last cut halves it (not below
  one); 429s for requests sent before that cut were caused by the old window
  and do not cut it again;
- each completion grows it by ``1 / window``, about one request per round trip
  of a full window, back up to ``num_workers``.

A 429 that cut the window (or came from before the cut) says the build asked
too much, not that the request is bad: the dispatcher retries it without
spending one of the request's ``max_retries``. At a window of one, 429s count
again, so a server that refuses everything still fails its nodes.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Window:
    """How many requests may be in flight now, between 1 and ``most``."""

    def __init__(self, most: int):
        self.most = max(1, most)
        self.limit = float(self.most)
        self.in_flight = 0
        self._sent = 0  # tickets handed out: one per request sent
        self._cut_at = 0  # the last ticket handed out when the window was last cut
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> int:
        """Wait for room; the request's ticket (its place in the sending order)."""
        while self.in_flight >= max(1, int(self.limit)):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        self.in_flight += 1
        self._sent += 1
        return self._sent

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def succeeded(self) -> None:
        self.limit = min(float(self.most), self.limit + 1.0 / self.limit)
        self._wake()

    def throttled(self, ticket: int) -> bool:
        """A 429 for the request sent with ``ticket``; whether the window took the blame
        (it was cut now, or the request was sent before the last cut)."""
        if ticket <= self._cut_at:
            return True
        if self.limit <= 1.0:
            return False
        self.limit = max(1.0, self.limit / 2)
        self._cut_at = self._sent
        return True

    def _wake(self) -> None:
        room = max(1, int(self.limit)) - self.in_flight
        while room > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1
