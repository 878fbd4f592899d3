"""A build's progress as people watch it: the scheduler's reports in, a rich drawing out.

:class:`Counts` keeps what the scheduler reports (nodes cached, generated,
failed; output tokens; what is loading; a batch build's batches) and draws it
with rich: a bar, the counts, the rate and the time left. The CLI redraws it on
a terminal (``synthc.cli.render.BuildProgress``); in a Jupyter kernel,
:class:`NotebookProgress` shows the same drawing as one output of the cell,
updated in place a few times a second through IPython's display handles, which
every front end (JupyterLab, VS Code, nbclient) renders without widgets.
"""

from __future__ import annotations

import importlib
import io
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.text import Text

from synthc.core.messages import Completion
from synthc.planning.plan import Node

if TYPE_CHECKING:
    from synthc.runtime.batching import BatchCounts

NOTEBOOK_REDRAW_SECONDS = 0.25


class Counts:
    """What the scheduler reported, and its drawing (``__rich__``)."""

    def __init__(self) -> None:
        self.total = 0
        self.n_cached = 0
        self.n_generated = 0
        self.n_failed = 0
        self.tokens = 0
        self.started = time.monotonic()
        self.status: str | None = None  # what is loading, shown with a spinner
        self.batch: BatchCounts | None = None  # a batch build's batches, as last reported
        self._spinner = Spinner("dots")

    def begin(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()
        self.changed()

    def cached(self, count: int) -> None:
        self.n_cached += count
        self.changed()

    def generated(self, node: Node, completion: Completion | None) -> None:
        self.n_generated += 1
        self.tokens += completion.usage.output_tokens if completion is not None else 0
        self.changed()

    def failed(self, node: Node, message: str) -> None:
        self.n_failed += 1
        self.changed()

    def counted(self, generated: int, failed: int, output_tokens: int) -> None:
        self.n_generated += generated
        self.n_failed += failed
        self.tokens += output_tokens
        self.changed()

    def loading(self, what: str) -> None:
        self.status = what
        self.changed()

    def loaded(self) -> None:
        self.status = None
        self.changed()

    def batches(self, counts: BatchCounts) -> None:
        """A batch build's counts changed (a batch submitted, adopted or downloaded)."""
        self.batch = counts
        self.changed()

    def changed(self) -> None:
        """Something was reported; a display that draws on change redraws."""

    def __rich__(self) -> RenderableType:
        done = self.n_cached + self.n_generated + self.n_failed
        self.total = max(self.total, done)  # tool rounds and plan retries were not foreseen
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.n_generated / elapsed
        left = self.total - done
        eta = f"{left / rate:,.0f}s" if rate > 0 and left > 0 else "-"
        counts = Text.assemble(
            (f"{done:,}/{self.total:,} nodes  ", "bold"),
            (f"{self.n_cached:,} cached  ", "cyan"),
            (f"{self.n_generated:,} generated  ", "green"),
            (f"{self.n_failed:,} failed", "red" if self.n_failed else "dim"),
        )
        speed = Text(
            f"{rate:,.1f} req/s  {self.tokens / elapsed:,.0f} tokens/s  "
            f"{self.tokens:,} tokens  ETA {eta}",
            style="dim",
        )
        bar = ProgressBar(total=max(self.total, 1), completed=done, width=40)
        rows: list[RenderableType] = [bar, counts, speed]
        if self.batch is not None:
            rows.append(Text(batch_text(self.batch), style="magenta"))
        if self.status:
            self._spinner.update(text=Text(self.status, style="yellow"))
            rows.insert(0, self._spinner)
        return Group(*rows)


def batch_text(counts: BatchCounts) -> str:
    ids = counts.batch_ids
    shown = ", ".join(ids[-3:]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    return (
        f"batches: {counts.submitted:,} requests submitted, {counts.in_progress:,} in progress, "
        f"{counts.downloaded:,} downloaded ({shown or 'none yet'})"
    )


def in_a_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython with a kernel attached)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class NotebookProgress(Counts):
    """The drawing as a cell's output, redrawn in place at most every quarter second (and
    once at the end, so the cell keeps the final counts)."""

    def __init__(self) -> None:
        super().__init__()
        self._handle: Any = None
        self._drawn = 0.0

    def __enter__(self) -> NotebookProgress:
        self._handle = _ipython_display().display(self._html(), display_id=True)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.status = None
        self._draw()

    def changed(self) -> None:
        if time.monotonic() - self._drawn >= NOTEBOOK_REDRAW_SECONDS:
            self._draw()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        if self._handle is not None:
            self._handle.update(self._html())

    def _html(self) -> Any:
        console = Console(record=True, width=100, force_jupyter=False, file=io.StringIO())
        console.print(self)
        html = console.export_html(inline_styles=True, code_format="<pre>{code}</pre>")
        return _ipython_display().HTML(html)


def _ipython_display() -> Any:
    return importlib.import_module("IPython.display")
