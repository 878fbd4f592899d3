"""The seam between the runtime and an inference engine: requests in, outcomes out.

Concurrency, rate limits and retries live in the runtime, not in backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from synthc.core.messages import Outcome, Request


class Backend(Protocol):
    """What the runtime needs from an inference engine.

    ``max_batch`` is how many requests one ``generate`` call takes: 1 for HTTP
    APIs (the runtime runs many calls concurrently), larger for batch engines
    that want every ready request at once.
    """

    max_batch: int

    async def generate(self, requests: Sequence[Request]) -> list[Outcome]: ...

    async def aclose(self) -> None: ...
