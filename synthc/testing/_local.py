"""What the local stand-in servers share: a ``with`` block stops them."""

from __future__ import annotations

from types import TracebackType


class Stoppable:
    """A server that a ``with`` block stops (``__enter__`` starts it)."""

    def stop(self) -> None:
        raise NotImplementedError

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
