"""The ``synthc`` command: options in, one library call, output out.

Imports stay light at module level (click only) so ``synthc --help`` is quick;
the library, rich and the backends load inside the commands that use them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from synthc.cli.cache import cache
from synthc.cli.common import errors_to_exit_codes, setup_logging, write_text

if TYPE_CHECKING:
    from synthc.pipeline import BuildResult

OVERRIDES_HELP = """
Overrides follow the config, in oumi's syntax: --num_samples 50,
--inference_config.generation.temperature 0.5, --a.b=value, and list
indexes as [0] or .0 (--strategy_params.sampled_attributes[0].possible_values[0].sample_rate 0.8).
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="synthc")
def main() -> None:
    """synthc: build synthetic datasets from oumi synth configs, incrementally.

    Every LLM request is a node keyed by a hash of what decides its output;
    results are cached, so a rerun, an edit or an override regenerates only
    the nodes whose inputs changed.
    """


def _config_args(func: Any) -> Any:
    func = click.argument("args", nargs=-1, type=click.UNPROCESSED)(func)
    func = click.option(
        "-c",
        "--config",
        "config_opt",
        type=click.Path(dir_okay=False),
        help="The config file (or give it as the first argument).",
    )(func)
    func = click.option(
        "--cache-dir",
        envvar="SYNTHC_CACHE_DIR",
        type=click.Path(file_okay=False),
        help="Where results are cached [default: .synthc/cache beside the config; "
        "env SYNTHC_CACHE_DIR].",
    )(func)
    func = click.option(
        "--log-level",
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
        default="WARNING",
        show_default=True,
        help="How much to log to stderr.",
    )(func)
    return func


def _remote_args(func: Any) -> Any:
    func = click.option(
        "--remote-cache-readonly",
        is_flag=True,
        default=None,
        help="Read from the remote cache but never push to it (for CI consumers) "
        "[env SYNTHC_REMOTE_CACHE_READONLY].",
    )(func)
    func = click.option(
        "--remote-cache",
        metavar="URL",
        multiple=True,
        help="A shared cache behind the local one: http(s)://host/path, file:///dir or a "
        "directory; repeat for several [env SYNTHC_REMOTE_CACHE; token in "
        "SYNTHC_REMOTE_CACHE_TOKEN]. See docs/team-cache.md.",
    )(func)
    return func


def _tiers(remote_cache: tuple[str, ...], readonly: bool | None) -> dict[str, Any]:
    """The ``_remote_args`` options as the library's functions take them."""
    return {"remote_cache": remote_cache or None, "remote_cache_readonly": readonly}


def _split(config_opt: str | None, args: Sequence[str]) -> tuple[str, list[str]]:
    rest = list(args)
    if config_opt:
        return config_opt, rest
    if not rest or rest[0].startswith("-"):
        raise click.UsageError("give a config file: synthc build CONFIG [OVERRIDES...]")
    return rest[0], rest[1:]


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog=OVERRIDES_HELP,
)
@_config_args
@_remote_args
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and the summary line.")
@click.option("--dry-run", is_flag=True, help="Print what would run (explain's summary) and exit.")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this process. ray: spread the samples over a Ray cluster's processes "
    "(pip install 'synthc[ray]'; docs/scale-out.md); same output, same cache.",
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    help="With --executor ray: 'local' starts Ray on this machine, 'auto' joins the "
    "cluster running here, ray://HOST:PORT a remote one. Default: RAY_ADDRESS, else a "
    "running cluster, else a new local one.",
)
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    help="With --executor ray: how many tasks share the samples (default: the cluster's CPUs).",
)
@click.option(
    "--batch/--no-batch",
    default=None,
    help="Send the requests through the provider's batch API (OPENAI, ANTHROPIC, "
    "OpenAI-compatible servers): about half the price, results within 24 h; the same "
    "rows and cache as online. Default: the config's synthc.batch (docs/batch.md).",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="With --batch: poll until every batch ends, or submit what is ready and exit "
    "(run the same command again to collect the results; nothing is paid twice).",
)
def build(
    *,
    args: tuple[str, ...],
    config_opt: str | None,
    cache_dir: str | None,
    log_level: str,
    remote_cache: tuple[str, ...],
    remote_cache_readonly: bool | None,
    quiet: bool,
    dry_run: bool,
    executor: str,
    ray_address: str | None,
    shards: int | None,
    batch: bool | None,
    wait: bool,
) -> None:
    """Build the dataset CONFIG describes (an oumi synth YAML file).

    Cached nodes are reused; only the requests whose inputs changed are sent.
    Writes the JSONL output (oumi's row shape) and a manifest of every node.
    """
    config, overrides = _split(config_opt, args)
    if executor != "ray" and (ray_address is not None or shards is not None):
        raise click.UsageError("--ray-address and --shards go with --executor ray")
    setup_logging(log_level)
    from synthc import pipeline
    from synthc.cli.render import BuildProgress

    remote = _tiers(remote_cache, remote_cache_readonly)

    if dry_run:
        with errors_to_exit_codes():
            from synthc.planning.formats.text import summary_text

            data = pipeline.explain(
                config, overrides, cache_dir=cache_dir, node_limit=0, batch=batch, **remote
            ).to_json()
            click.echo(summary_text(data))
        return
    with errors_to_exit_codes():
        with BuildProgress(enabled=sys.stderr.isatty(), quiet=quiet) as progress:
            result = pipeline.build(
                config,
                overrides,
                cache_dir=cache_dir,
                progress=progress,
                executor=executor,
                ray_address=ray_address,
                shards=shards,
                batch=batch,
                wait=wait,
                **remote,
            )
        _report(result, quiet, config)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog=OVERRIDES_HELP,
)
@_config_args
@_remote_args
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "dot", "html"]),
    default="text",
    show_default=True,
    help="text: a tree with reasons; json: the documented schema (docs/explain-json.md); "
    "dot: Graphviz; html: one self-contained page.",
)
@click.option("--why", "node", metavar="NODE", help="Explain one node in full, e.g. answer[3].")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="List every node, not the first 50; and count every sample (without it, a build "
    "of more than 40,000 samples is counted from 40,000 of them, spread evenly).",
)
@click.option("--nodes", is_flag=True, help="With --format dot: draw nodes, not just rules.")
@click.option(
    "--prices",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML/JSON file: model name → {input: $, output: $} per million tokens.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here, not stdout.")
@click.option(
    "--batch/--no-batch",
    default=None,
    help="Price the build as a batch build (half the online price). Default: the config's "
    "synthc.batch.",
)
def explain(
    *,
    args: tuple[str, ...],
    config_opt: str | None,
    cache_dir: str | None,
    log_level: str,
    remote_cache: tuple[str, ...],
    remote_cache_readonly: bool | None,
    fmt: str,
    node: str | None,
    show_all: bool,
    nodes: bool,
    prices: str | None,
    output: str | None,
    batch: bool | None,
) -> None:
    """Show what `synthc build CONFIG` would do, and why, without sending a request.

    The rule graph in dependency order with, per rule, how many nodes are
    cached, would run, are blocked on an upstream node that must run first,
    or fail; the requests, tokens and dollars it would spend; and for each
    node that would run, why (compared with the last build's manifest):
    new, failed, modified.template / .params / .model / .sampling / .upstream.
    """
    config, overrides = _split(config_opt, args)
    setup_logging(log_level)
    from synthc.cli.explain import render_explain

    with errors_to_exit_codes():
        text = render_explain(
            config,
            overrides,
            cache_dir=cache_dir,
            fmt=fmt,
            node=node,
            show_all=show_all,
            nodes=nodes,
            prices=prices,
            remote_cache=remote_cache,
            remote_cache_readonly=remote_cache_readonly,
            batch=batch,
        )
        if output:
            write_text(output, text)
        else:
            click.echo(text, nl=not text.endswith("\n"))


def _report(result: BuildResult, quiet: bool, config: str) -> None:
    from synthc.cli.render import (
        pending_text,
        print_failures,
        print_preview,
        summary_line,
        training_hint,
    )

    if result.pending is not None:  # --no-wait: submitted, not built yet
        click.echo(pending_text(result, config))
        return
    if not quiet:
        print_preview(result)
    click.echo(summary_line(result))
    if result.ok:
        if not quiet:
            click.echo(training_hint(result, config))
        return
    print_failures(result)
    sys.exit(1)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog=OVERRIDES_HELP,
)
@_config_args
@_remote_args
@click.option(
    "-n",
    "--samples",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="How many samples to build: the first N of the full build.",
)
def preview(
    *,
    args: tuple[str, ...],
    config_opt: str | None,
    cache_dir: str | None,
    log_level: str,
    remote_cache: tuple[str, ...],
    remote_cache_readonly: bool | None,
    samples: int,
) -> None:
    """Build the first N samples of CONFIG for real and print each row in full.

    The samples are the full build's own (same draws, same requests) and are cached,
    so `synthc build` does not pay for them again. Writes no output file. Ends with
    what the full build would still send and spend.
    """
    config, overrides = _split(config_opt, args)
    setup_logging(log_level)
    from synthc import pipeline
    from synthc.cli.render import BuildProgress, print_rows
    from synthc.planning.formats.text import summary_text

    with errors_to_exit_codes():
        with BuildProgress(enabled=sys.stderr.isatty()) as progress:
            result = pipeline.preview(
                config,
                overrides,
                samples=samples,
                cache_dir=cache_dir,
                progress=progress,
                **_tiers(remote_cache, remote_cache_readonly),
            )
        print_rows(result.rows)
        click.echo(result.summary())
        for node_id, message in result.stats.failures:
            click.echo(f"  {node_id}: {message}", err=True)
        click.echo(f"The full build ({result.num_samples:,} samples), from here:")
        click.echo(summary_text(result.full.to_json()))


def _conversation_args(command: Callable[..., None]) -> Callable[..., None]:
    """--conversation and --provenance: which rows export and push write, and how."""
    command = click.option(
        "--provenance",
        is_flag=True,
        help="Add a synthc_nodes column: the key of every node that made the row, by node id.",
    )(command)
    return click.option(
        "--conversation",
        metavar="ATTRIBUTE",
        help="The column the messages come from (a multiturn attribute or a CHAT "
        "transform); needed only when the rows have several.",
    )(command)


@main.command(
    "export",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog=OVERRIDES_HELP,
)
@_config_args
@_remote_args
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["messages", "sharegpt", "parquet", "hf-dir"]),
    default="messages",
    show_default=True,
    help="messages: {'messages': [...]} a line, what TRL's SFTTrainer and oumi's "
    "text_sft_jsonl load; sharegpt: {'conversations': [{'from', 'value'}]} a line; "
    "parquet: every column in one Parquet file; hf-dir: a folder for the Hugging Face "
    "Hub (data/train.jsonl, messages/train.jsonl, a dataset card as README.md).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="Where to write [default: beside the build's output, e.g. out.messages.jsonl, out-hf/].",
)
@_conversation_args
def export_command(
    *,
    args: tuple[str, ...],
    config_opt: str | None,
    cache_dir: str | None,
    log_level: str,
    remote_cache: tuple[str, ...],
    remote_cache_readonly: bool | None,
    fmt: str,
    output: str | None,
    conversation: str | None,
    provenance: bool,
) -> None:
    """Write what CONFIG's build made in a trainer's format, from the cache.

    Sends no request: every sample whose nodes are all cached is written; the
    rest are counted (build them first).
    """
    config, overrides = _split(config_opt, args)
    setup_logging(log_level)
    from synthc import pipeline

    with errors_to_exit_codes():
        done = pipeline.export(
            config,
            overrides,
            format=fmt,
            output=output,
            conversation=conversation,
            provenance=provenance,
            cache_dir=cache_dir,
            **_tiers(remote_cache, remote_cache_readonly),
        )
    source = f" (from {done.conversation})" if done.conversation else ""
    click.echo(f"{done.rows:,} rows written to {done.path} as {done.format}{source}")
    _left_out(done.missing, config)


def _left_out(missing: int, config: str) -> None:
    if missing:
        click.echo(
            f"warning: {missing:,} samples are not in the cache and were left out: "
            f"run synthc build {config} first",
            err=True,
        )


@main.command(
    "push",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog=OVERRIDES_HELP,
)
@_config_args
@_remote_args
@_conversation_args
@click.option("--private", is_flag=True, default=None, help="Create the repo private.")
@click.option("-m", "--message", help="The commit message [default: synthc: N rows].")
def push_command(
    *,
    args: tuple[str, ...],
    config_opt: str | None,
    cache_dir: str | None,
    log_level: str,
    remote_cache: tuple[str, ...],
    remote_cache_readonly: bool | None,
    conversation: str | None,
    provenance: bool,
    private: bool | None,
    message: str | None,
) -> None:
    """Publish what CONFIG's build made as the Hugging Face dataset REPO_ID.

    synthc push CONFIG REPO_ID [OVERRIDES...]

    Uploads what `synthc export --format hf-dir` writes (the rows, their messages,
    the dataset card as README.md) as one commit, creating the dataset repo when
    it is missing. Sends no LLM request. The token comes from HF_TOKEN (or `hf
    auth login`); synthc stores it nowhere. HF_ENDPOINT points at another Hub.
    """
    config, rest = _split(config_opt, args)
    if not rest or rest[0].startswith("-"):
        raise click.UsageError("give the dataset's repo id: synthc push CONFIG REPO_ID")
    repo_id, overrides = rest[0], rest[1:]
    setup_logging(log_level)
    from synthc import pipeline

    with errors_to_exit_codes():
        done = pipeline.push(
            config,
            repo_id,
            overrides,
            private=private,
            conversation=conversation,
            provenance=provenance,
            message=message,
            cache_dir=cache_dir,
            **_tiers(remote_cache, remote_cache_readonly),
        )
    rows = done.exported
    configs = "rows and messages" if rows.conversation else "rows"
    click.echo(
        f"{rows.rows:,} rows ({configs}, dataset card) pushed to {done.pushed.url} "
        f"(commit {done.pushed.commit[:12]})"
    )
    _left_out(rows.missing, config)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def convert(config: str) -> None:
    """Print CONFIG in the other form: an oumi YAML config as .synth, a .synth file as YAML."""
    from pathlib import Path

    from synthc.compiler.synth.emit import convert as run

    with errors_to_exit_codes():
        click.echo(run(Path(config)), nl=False)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--check", is_flag=True, help="Print nothing; exit 1 if CONFIG is not formatted.")
def fmt(config: str, check: bool) -> None:
    """Print the .synth file CONFIG in canonical layout (comments kept)."""
    from pathlib import Path

    from synthc.compiler.synth.emit import formatted

    with errors_to_exit_codes():
        text, canonical = formatted(Path(config))
    if not check:
        click.echo(canonical, nl=False)
    elif text != canonical:
        click.echo(f"{config}: not in canonical layout; run synthc fmt {config}", err=True)
        sys.exit(1)


main.add_command(cache)

if __name__ == "__main__":
    main()
