"""Chain the stages: a config path and overrides in; a Spec, a Graph, a Plan or a built dataset out.

load(config, overrides)  -> Spec     read, override, validate
compile(config, ...)     -> Graph    + lower
explain_plan(config,...) -> Plan     + plan against the cache, nothing sent
build(config, ...)       -> BuildResult   + execute, write JSONL and manifest
"""

from __future__ import annotations

import asyncio
import html
import importlib
import importlib.metadata
import re
import shlex
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from synthc.cache.claims import Claims
from synthc.cache.layered import LayeredStore, open_store, readonly_setting, remote_urls
from synthc.cache.store import default_cache_dir
from synthc.compiler.engines import Engine
from synthc.compiler.graph import Graph
from synthc.compiler.lower import lower
from synthc.compiler.overrides import Override, apply_overrides, overrides_from, parse_overrides
from synthc.compiler.resolve import resolve
from synthc.compiler.source import Document, include_environments, load_yaml, parse_yaml
from synthc.compiler.validate import Spec, validate
from synthc.core.errors import (
    BatchesPending,
    BuildInterrupted,
    ConfigError,
    EngineError,
    Span,
    SynthError,
    UnsupportedFeature,
)
from synthc.core.records import Store
from synthc.planning.derive import build_row
from synthc.planning.explain import DEFAULT_NODE_LIMIT, Explanation, TokenCounter, cost_usd
from synthc.planning.explain import explain as explain_graph
from synthc.planning.explain import why as why_node
from synthc.planning.manifest import load_manifest
from synthc.planning.plan import SampleState
from synthc.runtime.engines import LazyRunner, check_batch_engine, check_engine
from synthc.runtime.export import HF_MESSAGES, HF_ROWS, Exported
from synthc.runtime.export import export as export_rows
from synthc.runtime.inputs import load_inputs
from synthc.runtime.loops import in_a_thread, off_the_loop, run_loop
from synthc.runtime.output import (
    AtomicFile,
    count_rows,
    file_stamp,
    manifest_entries,
    manifest_header,
    manifest_line,
    partial_path,
    read_rows,
    row_line,
)
from synthc.runtime.progress import NotebookProgress, in_a_notebook
from synthc.runtime.scheduler import (
    NoProgress,
    Progress,
    Scheduler,
    Stats,
    window_for,
)

if TYPE_CHECKING:
    from synthc.cluster.shards import ShardAnswers
    from synthc.runtime.batching import BatchRunner
    from synthc.runtime.hub import Pushed

PREVIEW_ROWS = 5
T = TypeVar("T")


@dataclass
class BuildResult:
    output_path: Path
    manifest_path: Path
    stats: Stats
    elapsed: float
    preview: list[dict[str, Any]] = field(default_factory=list)
    pending: BatchesPending | None = None  # batch=True, wait=False: not built yet
    kept: Path | None = None  # a failed build left this output (with more rows) as it was
    written: tuple[int, int] | None = None  # the output's (mtime_ns, size) when it was written
    _rows: list[dict[str, Any]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.pending is None and self.stats.failed == 0 and self.stats.samples_failed == 0

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows the build wrote (none while its batches are with the provider), read
        back from ``output_path`` once; refused if another build rewrote it since."""
        if self._rows is None:
            if self.pending is not None:
                return []
            if self.written is not None and file_stamp(self.output_path) != self.written:
                raise SynthError(
                    f"{self.output_path} was rewritten after this build wrote it: "
                    "read the rows from the newer build's result"
                )
            self._rows = read_rows(self.output_path)
        return self._rows

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` (pandas is imported here, not before)."""
        pandas = _optional("pandas", "to_pandas()", "pandas")
        return pandas.DataFrame(self.rows)

    def to_dataset(self) -> Any:
        """The rows as a Hugging Face ``datasets.Dataset`` (imported here, not before)."""
        datasets = _optional("datasets", "to_dataset()", "'synthc[data]'")
        return datasets.Dataset.from_list(self.rows)

    def summary(self) -> str:
        s = self.stats
        if self.pending is not None:
            return f"{self.pending.requests:,} requests with the provider; nothing written yet"
        return (
            f"{s.samples_written:,} rows in {self.output_path} ({s.samples_failed:,} samples "
            f"failed); {s.nodes:,} nodes: {s.cached:,} cached, {s.generated:,} generated, "
            f"{s.failed:,} failed; {self.elapsed:.1f}s"
        )

    def __repr__(self) -> str:
        return f"<BuildResult: {self.summary()}>"

    def _repr_html_(self) -> str:
        from synthc.planning.formats.rows import rows_html  # drawing loads when used

        return rows_html(self.summary(), self.rows[:PREVIEW_ROWS], ok=self.ok)


ConfigSource = Path | str | Mapping[str, Any]
Overrides = Sequence[str] | Mapping[str, Any] | str
TEXT_CONFIG = "<config>"  # what errors call a config given as text or a dict


def _optional(module: str, what: str, install: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SynthError(f"{what} needs {module}: pip install {install}") from None


def load(config: ConfigSource, overrides: Overrides = ()) -> Spec:
    """Read ``config``, apply ``overrides`` and validate the result.

    ``config`` is a path (``.yaml``, ``.synth``), the text of a YAML or ``.synth``
    config (anything with a line break), or a dict. A config given as text or a dict
    reads as if it were ``./config.yaml`` (``./config.synth``): relative paths
    resolve in the working directory and the default output is ``config.jsonl``.
    ``overrides`` are command-line arguments (``["--num_samples", "50"]``, or one
    string of them) or a mapping of the same paths to values
    (``{"num_samples": 50}``).
    """
    document = _document(config)
    data, source_map = apply_overrides(document.data, document.source_map, _overrides(overrides))
    include_environments(data, source_map, document.path)
    return validate(data, source_map, document.text, document.path)


def _document(config: ConfigSource) -> Document:
    if isinstance(config, Mapping):
        return parse_yaml(_as_yaml(config), TEXT_CONFIG, Path.cwd() / "config.yaml")
    if isinstance(config, str) and "\n" in config:
        if _looks_like_yaml(config):
            return parse_yaml(config, TEXT_CONFIG, Path.cwd() / "config.yaml")
        from synthc.compiler.synth.source import parse_synth  # lark loads only for .synth

        return parse_synth(config, TEXT_CONFIG, Path.cwd() / "config.synth")
    path = Path(config)
    if path.suffix == ".synth":
        from synthc.compiler.synth.source import load_synth

        return load_synth(path)
    return load_yaml(path)


_YAML_START = re.compile(r"(---|\{|[\w\"'.-]+[ \t]*:(\s|$))")


def _looks_like_yaml(text: str) -> bool:
    """Whether config text is YAML (its first statement is a key, ``---`` or ``{``), not
    ``.synth`` (whose statements open with a keyword: ``samples 10``, ``model ...``)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return _YAML_START.match(stripped) is not None
    return True


def _as_yaml(config: Mapping[str, Any]) -> str:
    """A dict config as YAML text, so its errors have lines to point at."""
    try:
        return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True, width=100)
    except yaml.YAMLError as exc:
        raise ConfigError.at(
            f"the config dict holds a value YAML cannot write: {exc}", Span(TEXT_CONFIG, 0, 0)
        ) from None


def _overrides(overrides: Overrides) -> list[Override]:
    if isinstance(overrides, Mapping):
        return overrides_from(overrides)
    if isinstance(overrides, str):
        return parse_overrides(shlex.split(overrides))
    return parse_overrides(overrides)


def compile(config: ConfigSource, overrides: Overrides = ()) -> Graph:
    """The build graph of ``config``: every error in it is raised here, before any request."""
    return _compile(config, overrides)[1]


def _compile(config: ConfigSource, overrides: Overrides) -> tuple[Spec, Graph]:
    spec = load(config, overrides)
    graph = lower(spec, resolve(spec), load_inputs(spec))
    check_engine(spec, graph)
    return spec, graph


def explain(
    config: ConfigSource,
    overrides: Overrides = (),
    *,
    cache_dir: str | None = None,
    node_limit: int | None = DEFAULT_NODE_LIMIT,
    prices: dict[str, tuple[float, float]] | None = None,
    remote_cache: Sequence[str] | str | None = None,
    remote_cache_readonly: bool | None = None,
    batch: bool | None = None,
) -> Explanation:
    """What a build would do now and why, decided against the cache and the last
    build's manifest; sends nothing (remote cache hits are copied to the local tier).
    A batch build (``batch``, else the config's ``synthc.batch``) is priced as one."""
    spec, graph = _compile(config, overrides)
    batched = batch_setting(spec, graph, batch)
    store = cache_store(spec, cache_dir, remote_cache, remote_cache_readonly)
    return _explained(spec, graph, store, node_limit=node_limit, prices=prices, batch=batched)


def _explained(
    spec: Spec,
    graph: Graph,
    store: LayeredStore,
    *,
    node_limit: int | None,
    prices: dict[str, tuple[float, float]] | None = None,
    batch: bool = False,
) -> Explanation:
    """:func:`explain`'s answer from ``store``, which it closes."""
    try:
        previous = load_manifest(manifest_path(spec))
        report = explain_graph(
            graph,
            store,
            previous,
            node_limit=node_limit,
            prices=prices,
            batch=batch,
            tokenizer=_token_counter(graph),
        )
        report.remote_hits = store.remote_hits()
        return report
    finally:
        store.close()


def _token_counter(graph: Graph) -> TokenCounter | None:
    """The model's own token count where it is on this machine: a GGUF model's
    vocabulary and chat template (llama.cpp). None otherwise (a hosted model, or a
    library missing): explain then counts characters."""
    path = graph.inference.path
    if graph.inference.engine is not Engine.LLAMACPP or path is None or not path.is_file():
        return None
    try:
        from synthc.runtime.backends.llamacpp import prompt_counter

        return prompt_counter(path)
    except (ImportError, ValueError, RuntimeError, EngineError):
        return None


@dataclass
class Preview:
    """The first samples of a build, built for real (through the cache, so the full
    build does not pay for them again), and what the full build would still do."""

    rows: list[dict[str, Any]]
    stats: Stats
    num_samples: int  # of the full build
    full: Explanation  # the full build, after the preview: what it would still send

    def summary(self) -> str:
        s = self.stats
        return (
            f"{s.samples_written:,} of {self.num_samples:,} samples built "
            f"({s.generated:,} requests sent, {s.cached:,} nodes cached, {s.failed:,} failed)"
        )

    def __repr__(self) -> str:
        return f"<Preview: {self.summary()}; full build: {self.full!r}>"

    def _repr_html_(self) -> str:
        from synthc.planning.formats.rows import rows_html  # drawing loads when used
        from synthc.planning.formats.text import summary_text

        full = html.escape(summary_text(self.full.to_json()))
        page = rows_html(self.summary(), self.rows, ok=self.stats.failed == 0)
        return f"{page}<p>The full build:</p><pre>{full}</pre>"


@off_the_loop
def preview(
    config: ConfigSource,
    overrides: Overrides = (),
    *,
    samples: int = PREVIEW_ROWS,
    cache_dir: str | None = None,
    progress: Progress | None = None,
    remote_cache: Sequence[str] | str | None = None,
    remote_cache_readonly: bool | None = None,
) -> Preview:
    """Build the first ``samples`` samples of ``config`` for real and say what the full
    build would still do. The samples are the full build's own (the same draws, the same
    node keys), cached as it goes; no output file or manifest is written."""
    if samples < 1:
        raise ConfigError.at(f"a preview builds at least 1 sample, not {samples}")
    spec, graph = _compile(config, overrides)
    store = cache_store(spec, cache_dir, remote_cache, remote_cache_readonly, building=True)
    claims = Claims.open(default_cache_dir(spec.path, cache_dir), store.local)
    rows: list[dict[str, Any]] = []
    stats = Stats()

    def emit(state: SampleState) -> None:
        if state.ok:
            rows.append(build_row(graph, state.values))

    first = range(min(samples, graph.num_samples))
    try:
        _run(_schedule(spec, graph, store, None, stats, emit, claims, samples=first), stats)
    finally:
        _close(store, claims)
    store = cache_store(spec, cache_dir, remote_cache, remote_cache_readonly)
    full = _explained(spec, graph, store, node_limit=0, batch=batch_setting(spec, graph, None))
    return Preview(rows, stats, graph.num_samples, full)


def export(
    config: ConfigSource,
    overrides: Overrides = (),
    *,
    format: str = "messages",
    output: Path | str | None = None,
    conversation: str | None = None,
    provenance: bool = False,
    cache_dir: str | None = None,
    remote_cache: Sequence[str] | str | None = None,
    remote_cache_readonly: bool | None = None,
) -> Exported:
    """Write the rows ``config``'s build made, from the cache, in a trainer's format
    (:mod:`synthc.runtime.export`): ``messages`` (TRL's SFTTrainer, oumi's
    text_sft_jsonl), ``sharegpt``, ``parquet``, or ``hf-dir`` (a folder for the Hub:
    the rows, their messages and a dataset card as ``README.md``). Sends nothing;
    samples not in the cache are counted in the result, not written. ``output``
    defaults to the build's output beside itself: ``out.messages.jsonl``,
    ``out.parquet``, ``out-hf/``."""
    spec, graph = _compile(config, overrides)
    store = cache_store(spec, cache_dir, remote_cache, remote_cache_readonly)
    target = Path(output) if output is not None else export_path(output_path(spec), format)
    try:
        exported = export_rows(
            graph, store, format, target, conversation=conversation, provenance=provenance
        )
    finally:
        store.close()
    if format == "hf-dir":  # the folder's card names its files as configs
        files = {HF_ROWS: "default", HF_MESSAGES: "messages"}
        configs = {files[f]: f for f in files if f in exported.first}
        first = {files[f]: row for f, row in exported.first.items()}
        samples = Samples(exported.rows, exported.missing, exported.tokens)
        name = output_path(spec).stem
        _write_card(spec, graph, target / "README.md", name, configs, samples, first)
    return exported


@dataclass(frozen=True)
class Published:
    """What :func:`push` put on the Hub."""

    pushed: Pushed
    exported: Exported  # the folder's rows, as export wrote them (the folder is gone)

    def __repr__(self) -> str:
        return (
            f"<Published {self.exported.rows:,} rows to {self.pushed.url} "
            f"(commit {self.pushed.commit[:12]})>"
        )


def push(
    config: ConfigSource,
    repo_id: str,
    overrides: Overrides = (),
    *,
    private: bool | None = None,
    conversation: str | None = None,
    provenance: bool = False,
    message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    cache_dir: str | None = None,
    remote_cache: Sequence[str] | str | None = None,
    remote_cache_readonly: bool | None = None,
) -> Published:
    """Publish what ``config``'s build made as the Hub dataset ``repo_id``: the
    ``hf-dir`` export (rows, messages, dataset card as ``README.md``) in one commit,
    the repo created when missing (:mod:`synthc.runtime.hub`). Sends no LLM request.
    The token: ``token``, else ``HF_TOKEN`` or the login file; it is never stored."""
    from synthc.runtime.hub import push_folder

    with tempfile.TemporaryDirectory(prefix="synthc-push-") as tmp:
        exported = export(
            config,
            overrides,
            format="hf-dir",
            output=Path(tmp) / "dataset",
            conversation=conversation,
            provenance=provenance,
            cache_dir=cache_dir,
            remote_cache=remote_cache,
            remote_cache_readonly=remote_cache_readonly,
        )
        default = f"synthc: {exported.rows:,} rows"
        pushed = push_folder(
            exported.path,
            repo_id,
            message=message or default,
            private=private,
            token=token,
            endpoint=endpoint,
        )
    return Published(pushed, exported)


def export_path(output: Path, fmt: str) -> Path:
    """Where an export goes by default: beside the build's output, named for the format."""
    if fmt == "parquet":
        return output.with_suffix(".parquet")
    if fmt == "hf-dir":
        return output.with_name(f"{output.stem}-hf")
    return output.with_name(f"{output.stem}.{fmt}.jsonl")


def why(
    config: ConfigSource,
    node: str,
    overrides: Overrides = (),
    *,
    cache_dir: str | None = None,
    remote_cache: Sequence[str] | str | None = None,
    remote_cache_readonly: bool | None = None,
) -> dict[str, Any]:
    """One node in full: key, rendered messages, inputs and their keys, status, reasons, output."""
    spec, graph = _compile(config, overrides)
    store = cache_store(spec, cache_dir, remote_cache, remote_cache_readonly)
    try:
        return why_node(graph, store, load_manifest(manifest_path(spec)), node)
    finally:
        store.close()


EXECUTORS = ("local", "ray")


@off_the_loop  # in a notebook cell, whose event loop runs in this thread
def build(
    config: ConfigSource,
    overrides: Overrides = (),
    *,
    cache_dir: str | None = None,
    progress: Progress | None = None,
    remote_cache: Sequence[str] | str | None = None,
    remote_cache_readonly: bool | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    shards: int | None = None,
    batch: bool | None = None,
    wait: bool = True,
) -> BuildResult:
    """Build the dataset ``config`` describes, reusing every cached node (local, then remote).

    ``executor="ray"`` spreads the samples over ``shards`` Ray tasks (default: the
    cluster's CPUs) on the cluster at ``ray_address`` (``"local"`` starts one here;
    None: Ray's own rule) that share the cache; the output is the same bytes.
    ``batch`` (else the config's ``synthc.batch``) sends the requests through the
    provider's batch API (docs/batch.md); with ``wait=False`` the build returns once
    nothing more can happen without waiting for the provider, ``pending`` set.
    In a Jupyter kernel, without a ``progress`` of its own, the cell shows the build's
    progress as it goes (:class:`~synthc.runtime.progress.NotebookProgress`).
    """
    if progress is None and in_a_notebook():
        with NotebookProgress() as shown:
            return build(
                config,
                overrides,
                cache_dir=cache_dir,
                progress=shown,
                remote_cache=remote_cache,
                remote_cache_readonly=remote_cache_readonly,
                executor=executor,
                ray_address=ray_address,
                shards=shards,
                batch=batch,
                wait=wait,
            )
    if executor not in EXECUTORS:
        expected = " or ".join(EXECUTORS)
        raise ConfigError.at(f"unknown executor {executor!r}: expected {expected}")
    spec, graph = _compile(config, overrides)
    batched = batch_setting(spec, graph, batch)
    if graph.gates is not None and (executor == "ray" or batched):
        raise UnsupportedFeature(
            "synthc.quality gates run in a local build for now: leave out "
            + ("--executor ray" if executor == "ray" else "--batch (and synthc.batch)"),
            spec.span("synthc", "quality"),
        )
    if executor == "ray":
        if batched:
            raise ConfigError.at("a batch build runs in one process: leave out --executor ray")
        remote = remote_cache, remote_cache_readonly
        return _build_on_ray(spec, graph, cache_dir, remote, progress, ray_address, shards)
    directory = default_cache_dir(spec.path, cache_dir)
    store = cache_store(spec, cache_dir, remote_cache, remote_cache_readonly, building=True)
    # Other builds on this cache directory: claims keep us from sending what they send.
    claims = Claims.open(directory, store.local)
    batches: BatchRunner | None = None
    stats = Stats()
    completed = False  # every sample ended: the batch answers it received are all cached
    try:
        if batched:
            batches = _batch_runner(spec, graph, directory, store, progress, wait, claims)
        work = _build(spec, graph, store, progress, stats, claims=claims, runner=batches)
        result = _run(_pending_as_result(work, spec, stats), stats)
        completed = result.pending is None
    finally:
        try:
            _close(store, claims)
        finally:
            if batches is not None:
                batches.close(settle=completed)
    result.stats.remote_hits = store.remote_hits()
    return result


async def abuild(config: ConfigSource, overrides: Overrides = (), **options: Any) -> BuildResult:
    """:func:`build` for ``await``: it runs in a thread, so the caller's loop goes on;
    cancelling the awaiting task stops the build once it has saved what it received."""
    return await in_a_thread(build, config, overrides, **options)


def batch_setting(spec: Spec, graph: Graph, batch: bool | None) -> bool:
    """Whether to use the provider's batch API: ``batch`` if given, else the config's
    ``synthc.batch``; refused for an engine without one."""
    settings = spec.config.synthc
    batched = batch if batch is not None else bool(settings and settings.batch)
    if batched:
        check_batch_engine(spec, graph)
    return batched


def _batch_runner(  # noqa: PLR0917 - build()'s own arguments, passed on
    spec: Spec,
    graph: Graph,
    directory: Path,
    store: LayeredStore,
    progress: Any,
    wait: bool,
    claims: Claims | None,
) -> BatchRunner:
    """The runner of a batch build, over the cache directory's batch journal; the build's
    registration tells the other builds on the directory whether it still runs."""
    from synthc.cache.batches import BatchJournal
    from synthc.runtime.batching import BatchRunner

    journal = BatchJournal.open(directory)
    journal.prune(lambda keys: store.get_local_many(keys).keys())
    registry = claims.registry if claims is not None else None
    return BatchRunner(
        spec,
        graph,
        journal,
        progress,
        wait=wait,
        owner=registry.id if registry is not None else "",
        is_live=registry.is_live if registry is not None else None,
    )


async def _pending_as_result(work: Any, spec: Spec, stats: Stats) -> BuildResult:
    """``work``'s result; a no-wait batch build that stopped with requests at the provider
    becomes a result saying so (nothing written)."""
    try:
        result: BuildResult = await work
    except BatchesPending as pending:
        return BuildResult(output_path(spec), manifest_path(spec), stats, 0.0, pending=pending)
    return result


def _build_on_ray(  # noqa: PLR0917 - build()'s own arguments, passed on
    spec: Spec,
    graph: Graph,
    cache_dir: str | None,
    remote: tuple[Sequence[str] | str | None, bool | None],
    progress: Progress | None,
    address: str | None,
    shards: int | None,
) -> BuildResult:
    """Shards on Ray fill the cache; then a local pass over it writes the rows and the
    manifest, sending nothing (:class:`synthc.cluster.shards.ShardAnswers`)."""
    from synthc.cluster.on_ray import run_shards  # imports Ray: only for --executor ray
    from synthc.cluster.shards import ShardAnswers, ShardJob, merge_stats

    started = time.perf_counter()
    urls, readonly = _remotes(spec, *remote)
    directory = default_cache_dir(spec.path, cache_dir).resolve()
    job = ShardJob(spec, graph, directory, urls, readonly, build=uuid.uuid4().hex[:16])
    run = run_shards(job, address=address, shards=shards, progress=progress or NoProgress())
    answers = ShardAnswers({key: f for r in run.reports for key, f in r.failures.items()})
    store = cache_store(spec, cache_dir, *remote, building=True)
    try:
        assembly = _build(spec, graph, store, None, Stats(), runner=answers, build=job.build)
        result = run_loop(assembly)
    finally:
        store.close()
    result.stats = merge_stats(run.reports, result.stats, run.engine_load_seconds)
    result.stats.remote_hits = store.remote_hits()
    result.elapsed = time.perf_counter() - started
    return result


def cache_store(
    spec: Spec,
    cache_dir: str | None,
    remote_cache: Sequence[str] | str | None = None,
    remote_cache_readonly: bool | None = None,
    *,
    building: bool = False,
) -> LayeredStore:
    """The local cache for ``spec``, with the remotes the command line, env or config names."""
    urls, readonly = _remotes(spec, remote_cache, remote_cache_readonly)
    return open_store(
        default_cache_dir(spec.path, cache_dir),
        urls,
        readonly=readonly,
        write_behind=building,
        record_stats=building,
    )


def _remotes(
    spec: Spec, remote_cache: Sequence[str] | str | None, remote_cache_readonly: bool | None
) -> tuple[tuple[str, ...], bool]:
    """The remote cache tiers the command line, env or config names; whether read-only."""
    settings = spec.config.synthc
    urls = remote_urls(remote_cache, settings.remote_cache if settings else None)
    readonly = readonly_setting(
        remote_cache_readonly, settings.remote_cache_readonly if settings else False
    )
    return tuple(urls), readonly


def output_path(spec: Spec) -> Path:
    """oumi's rule: ``output_path`` relative to the working directory; synthc's default
    (oumi stamps the time instead) is the config's name, so reruns overwrite one file."""
    if spec.config.output_path:
        return Path(spec.config.output_path)
    return Path(f"{spec.path.stem}.jsonl")


def _window(spec: Spec, runner: Any) -> int:
    """Samples open at once: the runner's own figure (a batch runner wants big waves),
    else enough to keep the workers busy."""
    window: int | None = getattr(runner, "window", None)
    return window or window_for(spec.config.inference_config.remote_params.num_workers)


def manifest_path(spec: Spec) -> Path:
    return spec.path.resolve().parent / ".synthc" / "manifests" / f"{spec.path.stem}.jsonl"


async def _build(
    spec: Spec,
    graph: Graph,
    store: Store,
    progress: Progress | None,
    stats: Stats,
    *,
    claims: Claims | None = None,
    runner: LazyRunner | ShardAnswers | BatchRunner | None = None,
    build: str = "",
) -> BuildResult:
    started = time.perf_counter()
    preview: list[dict[str, Any]] = []
    rows = AtomicFile(output_path(spec))
    manifest = AtomicFile(manifest_path(spec))
    # rows a quality gate refused, with the gate: for looking at, not for training
    rejected = AtomicFile(rejected_path(output_path(spec))) if graph.gates else None

    def emit(state: SampleState) -> None:
        for entry in manifest_entries(graph, state):
            manifest.write(manifest_line(entry))
        for k, refused in enumerate(state.rejections):
            for rule_id, key, status in refused.nodes:  # its nodes, for cache push
                node_id = f"{rule_id}[{state.index}]~{k}"
                manifest.write(manifest_line({"id": node_id, "key": key, "status": status}))
            if rejected is not None:
                line = {"slot": state.index, "attempt": refused.attempt, "gate": refused.gate}
                if refused.retried:  # the gate's attribute alone was drawn again
                    line["retried"] = True
                rejected.write(row_line({**line, "row": refused.row}))
        if state.accepted:
            row = build_row(graph, state.values)
            rows.write(row_line(row))
            if len(preview) < PREVIEW_ROWS:
                preview.append(row)

    manifest.write(manifest_line(manifest_header(graph, spec.path)))
    try:
        await _schedule(
            spec, graph, store, progress, stats, emit, claims, runner=runner, build=build
        )
    except BaseException:
        rows.abort()
        manifest.abort()
        if rejected is not None:
            rejected.abort()
        raise
    kept = _commit_rows(rows, stats)
    manifest.commit()
    if rejected is not None:
        rejected.commit()
    if kept is None:  # the output was replaced: so is its card
        write_card(spec, graph, rows.path, stats, preview)
    elapsed = time.perf_counter() - started
    written = file_stamp(rows.path)
    return BuildResult(
        rows.path, manifest.path, stats, elapsed, preview, kept=kept, written=written
    )


async def _schedule(  # noqa: PLR0917 - the scheduler's own arguments, passed on
    spec: Spec,
    graph: Graph,
    store: Store,
    progress: Progress | None,
    stats: Stats,
    emit: Callable[[SampleState], None],
    claims: Claims | None,
    *,
    runner: LazyRunner | ShardAnswers | BatchRunner | None = None,
    build: str = "",
    samples: range | None = None,
) -> None:
    """Run ``graph``'s samples (``samples``, else all) through a scheduler that sends with
    ``runner`` (else the config's engine) and hands each finished sample to ``emit``."""
    dispatcher = runner if runner is not None else LazyRunner(spec, graph, progress)
    try:
        await Scheduler(
            graph,
            store,
            dispatcher,
            emit,
            progress=progress,
            window=_window(spec, dispatcher),
            stats=stats,
            claims=claims,
            samples=samples,
            build=build,
        ).run()
        stats.engine_load_seconds = dispatcher.load_seconds
    finally:
        await dispatcher.aclose()


def _run(work: Coroutine[Any, Any, T], stats: Stats) -> T:
    """Run ``work`` in a loop of its own; Ctrl-C (or the caller's interrupt) stops it as
    :class:`BuildInterrupted` once it has unwound (the caller closes the store next,
    which saves every answer received)."""
    try:
        return run_loop(work)
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise BuildInterrupted(stats.generated) from None


def _close(store: Store, claims: Claims | None) -> None:
    """Close the store, then the claims: others find every answer on disk once they go."""
    try:
        store.close()
    finally:
        if claims is not None:
            claims.close()


def rejected_path(output: Path) -> Path:
    """Where a build with quality gates keeps the rows they refused: ``out.rejected.jsonl``."""
    return output.with_name(f"{output.stem}.rejected.jsonl")


def card_path(output: Path) -> Path:
    """Where a build's dataset card goes: beside the output, ``out.card.md``."""
    return output.with_name(f"{output.stem}.card.md")


def write_card(
    spec: Spec, graph: Graph, output: Path, stats: Stats, first_rows: list[dict[str, Any]]
) -> Path:
    """Write the dataset card of the rows at ``output`` beside them."""
    used_in, used_out = stats.dataset_tokens
    samples = Samples(stats.samples_written, stats.samples_failed, (used_in, used_out))
    first = {"default": first_rows[0]} if first_rows else {}
    return _write_card(
        spec, graph, card_path(output), output.stem, {"default": output.name}, samples, first
    )


@dataclass(frozen=True)
class Samples:
    """What a card counts of the rows it describes."""

    written: int
    missing: int  # samples without a row: failed, or (an export) not in the cache
    tokens: tuple[int, int]  # input, output: what the rows' nodes took


def _write_card(  # noqa: PLR0917 - the card's facts, gathered by its two callers
    spec: Spec,
    graph: Graph,
    path: Path,
    name: str,
    data_files: dict[str, str],
    samples: Samples,
    first_rows: dict[str, dict[str, Any]],
) -> Path:
    from synthc.runtime.card import CardFacts, card_text

    used_in, used_out = samples.tokens
    facts = CardFacts(
        name=name,
        data_files=data_files,
        rows=samples.written,
        num_samples=graph.num_samples,
        samples_missing=samples.missing,
        seed=graph.seed,
        engine=graph.inference.engine.name,
        model=graph.inference.model,
        identity=graph.inference.identity,
        synthc_version=_version(),
        config_name=spec.path.name,
        config_text=spec.text,
        input_tokens=used_in,
        output_tokens=used_out,
        cost_usd=cost_usd(graph, used_in, used_out),
        created=time.strftime("%Y-%m-%d", time.gmtime()),
    )
    card = AtomicFile(path)
    card.write(card_text(facts, first_rows))
    card.commit()
    return card.path


def _version() -> str:
    try:
        return importlib.metadata.version("synthc")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _commit_rows(rows: AtomicFile, stats: Stats) -> Path | None:
    """Put the rows in place. A build with failures never replaces an output that has more
    rows: its rows go beside it (``out.partial.jsonl``) and the output is kept (returned).
    A build without failures replaces the output and removes a partial file left earlier."""
    output = rows.path
    failed = stats.failed > 0 or stats.samples_failed > 0
    if failed and count_rows(output) > stats.samples_written:
        rows.commit(partial_path(output))
        return output
    rows.commit()
    if not failed:
        partial_path(output).unlink(missing_ok=True)
    return None
