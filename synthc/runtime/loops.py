"""Run a build, which runs an event loop of its own, from code that already runs one.

A Jupyter cell runs inside the kernel's event loop, where ``asyncio.Runner``
refuses to start a second loop in the same thread. :func:`off_the_loop` runs a
blocking call in a thread of its own when the calling thread has a running
loop (and in place when it has none); :func:`in_a_thread` is the ``await``-able
form. Either way an interrupt (the kernel's interrupt button, Ctrl-C, the
awaiting task cancelled) reaches the build as a cancellation of its main task
(:class:`Interrupt`), so it stops the way Ctrl-C stops the command: every
answer received is saved before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from synthc.runtime.scheduler import loop_factory

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_CURRENT = threading.local()  # the Interrupt of the call this thread runs, if any


class Interrupt:
    """Lets the thread waiting for a build stop it: the build's main task is cancelled
    in its own loop, now or as soon as it starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._task: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self.requested = False

    def attach(self, task: asyncio.Task[Any]) -> None:
        with self._lock:
            self._task = (task.get_loop(), task)
            if self.requested:
                task.cancel()

    def cancel(self) -> None:
        with self._lock:
            self.requested = True
            if self._task is not None:
                loop, task = self._task
                with contextlib.suppress(RuntimeError):  # its loop has closed: it is over
                    loop.call_soon_threadsafe(task.cancel)


async def interruptible(work: Awaitable[T]) -> T:
    """``work``, as the main task of a loop that the caller of :func:`off_the_loop` or
    :func:`in_a_thread` may cancel."""
    interrupt: Interrupt | None = getattr(_CURRENT, "interrupt", None)
    task = asyncio.current_task()
    if interrupt is not None and task is not None:
        interrupt.attach(task)
    return await work


def run_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to the end in a new event loop (uvloop's where installed), as a main
    task that :func:`off_the_loop`'s or :func:`in_a_thread`'s caller may cancel."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(interruptible(work))


def loop_running() -> bool:
    """Whether this thread runs an event loop now (a Jupyter cell does)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def off_the_loop(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, run in a thread of its own when called where an event loop runs."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        if not loop_running():
            return fn(*args, **kwargs)
        interrupt = Interrupt()
        with ThreadPoolExecutor(1, thread_name_prefix="synthc") as pool:
            future = pool.submit(functools.partial(_with, interrupt, fn, *args, **kwargs))
            while True:
                try:
                    return future.result()
                except KeyboardInterrupt:
                    if future.done():  # the call's own (a build stopped: BuildInterrupted)
                        raise
                    interrupt.cancel()  # the user's: stop it, then wait while it saves its work

    return call


async def in_a_thread(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Await ``fn(*args, **kwargs)`` run in a thread; cancelling the awaiting task stops
    it (and waits until it has saved its work)."""
    interrupt = Interrupt()
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, functools.partial(_with, interrupt, fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        interrupt.cancel()
        await asyncio.wait({future})  # it saves what it received, then ends
        if not future.cancelled():
            future.exception()  # retrieved: it ended because we stopped it
        raise


def _with(interrupt: Interrupt, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    _CURRENT.interrupt = interrupt
    try:
        return fn(*args, **kwargs)
    finally:
        _CURRENT.interrupt = None
