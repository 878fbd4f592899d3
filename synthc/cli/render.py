"""Draw a build for a terminal: live progress, oumi's preview table, the summary and hints."""

from __future__ import annotations

import json
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from synthc.pipeline import BuildResult
from synthc.planning.formats.rows import is_conversation, message_text
from synthc.runtime.progress import Counts, batch_text

if TYPE_CHECKING:
    from synthc.runtime.batching import BatchCounts

PREVIEW_COLUMNS = 6
CELL_CHARS = 200


class BuildProgress(Counts):
    """The counts drawn live on a terminal (stderr), 4 times a second; a line per change
    of what loads and of a batch build's batches when stderr is not a terminal."""

    def __init__(self, enabled: bool = True, quiet: bool = False):
        super().__init__()
        self.enabled = enabled and not quiet
        self.quiet = quiet
        self._live: Live | None = None

    def loading(self, what: str) -> None:
        super().loading(what)
        if not self.enabled and not self.quiet:
            click.echo(f"{what}...", err=True)

    def batches(self, counts: BatchCounts) -> None:
        super().batches(counts)
        if not self.enabled and not self.quiet:  # a log, not a terminal: a line per change
            click.echo(batch_text(counts), err=True)

    def __enter__(self) -> BuildProgress:
        if self.enabled:
            self._live = Live(
                self, console=Console(stderr=True), refresh_per_second=4, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)


def print_preview(result: BuildResult) -> None:
    """oumi's "Synthesis Results" table: the first row, six columns at most; a row too
    wide for the terminal's columns is printed a field per line instead."""
    if not result.preview:
        return
    first = result.preview[0]
    if _too_wide(first):
        print_rows([first])
        if result.stats.samples_written > 1:
            click.echo(f"... and {result.stats.samples_written - 1} more samples")
        return
    names = list(first)
    table = Table(
        title="Synthesis Results", title_style="bold magenta", show_edge=False, show_lines=True
    )
    shown = names if len(names) <= PREVIEW_COLUMNS else names[: PREVIEW_COLUMNS - 1]
    for name in shown:
        table.add_column(name, overflow="fold")
    cells = [_cell(first[name]) for name in shown]
    if len(shown) < len(names):
        table.add_column(f"... and {len(names) - len(shown)} more columns...")
        cells.append("...")
    table.add_row(*cells)
    console = Console()
    console.print(table)
    if result.stats.samples_written > 1:
        console.print(f"... and {result.stats.samples_written - 1} more samples")


def _too_wide(row: dict[str, Any]) -> bool:
    """Whether oumi's table would hide some of ``row``: more fields than it has columns,
    or a field longer than a cell shows."""
    return len(row) > PREVIEW_COLUMNS or any(len(repr(v)) > CELL_CHARS for v in row.values())


def print_rows(rows: list[dict[str, Any]]) -> None:
    """Each row a field per line, every value in full (a conversation a message per
    line), so nothing is cut to a column's width."""
    console = Console(highlight=False)
    for index, row in enumerate(rows):
        console.rule(f"row {index}", style="magenta")
        for name, value in row.items():
            label = Text(f"{name}: ", style="bold")
            if is_conversation(value):
                console.print(label)
                for message in value["messages"]:
                    role = Text(f"  {message.get('role', '')}: ", style="cyan")
                    console.print(role + Text(message_text(message)), soft_wrap=True)
            else:
                console.print(label + Text(_plain(value)), soft_wrap=True)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _cell(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "..."


def pending_text(result: BuildResult, config: str) -> str:
    """What a --no-wait build says when it stops with requests at the provider."""
    pending = result.pending
    assert pending is not None
    return (
        f"{pending.requests:,} requests are with the provider in {len(pending.batch_ids)} "
        f"batches ({', '.join(pending.batch_ids)}); nothing is written yet.\n"
        f"Collect the results later (the batches are recorded in the cache; nothing is "
        f"paid twice): synthc build {config} --batch"
    )


def summary_line(result: BuildResult) -> str:
    s = result.stats
    cached = f"{s.cached} cached"
    if remote := sum(s.remote_hits.values()):
        cached += f" ({s.cached - remote} local, {remote} remote)"
    line = f"{s.nodes} nodes: {cached}, {s.generated} generated, {s.failed} failed"
    if s.skipped:
        line += f", {s.skipped} skipped (upstream failed)"
    line += (
        f"; {s.samples_written} samples written to {result.output_path} in {result.elapsed:.1f}s"
    )
    if s.rejected:
        gates = ", ".join(f"{gate}: {count}" for gate, count in sorted(s.rejected.items()))
        count = sum(s.rejected.values())
        line += f"\nquality gates rejected {count} row{'s' * (count != 1)} ({gates})"
        if s.slots_given_up:
            line += (
                f"; {s.slots_given_up} slot{'s' * (s.slots_given_up != 1)} gave up after "
                "their last attempt "
                "(synthc.quality.max_attempts) and have no row"
            )
        line += f"; the rows are in {result.output_path.stem}.rejected.jsonl"
    if result.kept is not None:
        line += (
            f"\n{result.kept} is kept as it was (it has more rows than this failed build "
            f"made); this build's rows are in {result.output_path}"
        )
    return line


def training_hint(result: BuildResult, config: str) -> str:
    """How to train on what was written: the export that gives rows a trainer loads (the
    build's own rows hold oumi synth's columns, which neither TRL nor oumi's
    text_sft_jsonl reads as a conversation)."""
    first = result.preview[0] if result.preview else {}
    columns = [name for name, value in first.items() if is_conversation(value)]
    if not columns:
        return (
            "\nThe rows hold no conversation (add a multiturn attribute or a CHAT "
            f"transformation to train a chat model on them); for other uses: synthc export "
            f"{config} --format parquet"
        )
    choose = f" --conversation {columns[0]}" if len(columns) > 1 else ""
    exported = result.output_path.with_name(f"{result.output_path.stem}.messages.jsonl")
    return (
        f"\nTo train on the {columns[0]!r} conversations, write them as messages rows (from "
        f"the cache, nothing sent): synthc export {config}{choose}\n"
        f"TRL: SFTTrainer(train_dataset=load_dataset('json', data_files='{exported}')['train'])"
        f"\noumi: data.train.datasets: [{{dataset_name: text_sft_jsonl, dataset_path: "
        f"{exported}}}]\n"
        f"Hub: synthc push {config}{choose} you/dataset-name  (rows, messages, dataset card)"
    )


def print_failures(result: BuildResult) -> None:
    s = result.stats
    click.echo(
        f"error: {s.failed} node(s) failed; {s.samples_failed} sample(s) left out of the output. "
        "Rerun to retry only those.",
        err=True,
    )
    for node_id, message in s.failures:
        click.echo(f"  {node_id}: {message}", err=True)
    if s.failed > len(s.failures):
        click.echo(f"  ... and {s.failed - len(s.failures)} more", err=True)
    if s.unusable:
        click.echo(
            f"warning: {s.unusable} answer(s) could not be used (a conversation plan that "
            "does not parse); they are not cached, so the next run asks for them again",
            err=True,
        )
