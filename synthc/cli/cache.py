"""``synthc cache ...``: look after the cache and share it; options in, one call, output out."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from synthc.cli.common import errors_to_exit_codes, setup_logging

if TYPE_CHECKING:
    from synthc.cache.layered import LayeredStore
    from synthc.cache.remote import Listing
    from synthc.cache.store import LocalStore
    from synthc.compiler.validate import Spec


@click.group()
def cache() -> None:
    """Inspect, trim, archive and share the cache (docs/team-cache.md)."""


def _where(func: Any) -> Any:
    func = click.option(
        "--cache-dir",
        envvar="SYNTHC_CACHE_DIR",
        type=click.Path(file_okay=False),
        help="The local cache [default: .synthc/cache beside CONFIG, or in this directory].",
    )(func)
    return click.option(
        "-c", "--config", type=click.Path(dir_okay=False), help="Use this config's cache."
    )(func)


def _remotes(func: Any) -> Any:
    return click.option(
        "--remote-cache",
        metavar="URL",
        multiple=True,
        help="The remote(s) [default: SYNTHC_REMOTE_CACHE, else the config's synthc.remote_cache].",
    )(func)


def _local(config: str | None, cache_dir: str | None) -> LocalStore:
    from synthc.cache.store import LocalStore, default_cache_dir

    return LocalStore(default_cache_dir(Path(config or "synthc.yaml"), cache_dir))


@cache.command()
@_where
@click.option(
    "--remote",
    metavar="URL",
    help="Report on this remote instead: a bucket (s3://, gs://, az://) or a shared directory.",
)
def stats(config: str | None, cache_dir: str | None, remote: str | None) -> None:
    """Entries and bytes in the local cache, and the last build's hit rate per tier."""
    from synthc.cache.maintenance import remote_stats
    from synthc.cache.maintenance import stats as cache_stats

    if remote:
        with errors_to_exit_codes():
            found = remote_stats(_listing(remote))
        span = (
            f"; written {found.oldest:%Y-%m-%d %H:%M} to {found.newest:%Y-%m-%d %H:%M} UTC"
            if found.oldest and found.newest
            else ""
        )
        click.echo(f"{found.name}: {found.entries:,} records, {found.bytes:,} bytes{span}")
        return
    with errors_to_exit_codes():
        store = _local(config, cache_dir)
        try:
            found_local = cache_stats(store)
        finally:
            store.close()
    click.echo(
        f"{found_local.directory}: {found_local.entries:,} records, "
        f"{found_local.disk_bytes:,} bytes on disk"
    )
    lines = found_local.tier_lines()
    click.echo("last build:" if lines else "last build: none recorded")
    for line in lines:
        click.echo(f"  {line}")


def _listing(url: str) -> Listing:
    """The remote at ``url``, if it can list its records; a CacheError saying why not."""
    from synthc.cache.remote import Listing
    from synthc.cache.remotes import open_remote
    from synthc.core.errors import CacheError

    remote = open_remote(url)
    if not isinstance(remote, Listing):
        raise CacheError(
            f"{remote.name} cannot list its records over HTTP: run synthc cache stats or gc "
            "where its directory is (--remote DIRECTORY)"
        )
    return remote


@cache.command()
@_where
@click.option("--max-size", metavar="SIZE", help="Keep the newest records that fit, e.g. 5GB.")
@click.option("--older-than", metavar="AGE", help="Remove records generated before, e.g. 30d.")
@click.option(
    "--remote",
    metavar="URL",
    help="Collect on this remote instead (a bucket or a shared directory), by when each "
    "record was written there.",
)
def gc(
    config: str | None,
    cache_dir: str | None,
    max_size: str | None,
    older_than: str | None,
    remote: str | None,
) -> None:
    """Remove old records from the local cache: by age, then oldest first down to a size."""
    from synthc.cache.maintenance import compact, parse_age, parse_size, remote_gc
    from synthc.cache.maintenance import gc as collect

    if not max_size and not older_than:
        raise click.UsageError("give --max-size SIZE and/or --older-than AGE")
    try:
        limit = parse_size(max_size) if max_size else None
        age = parse_age(older_than) if older_than else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with errors_to_exit_codes():
        if remote:
            result = remote_gc(_listing(remote), max_size=limit, older_than=age)
        else:
            store = _local(config, cache_dir)
            try:
                result = collect(store, max_size=limit, older_than=age)
            finally:
                store.close()
            compact(store.directory)
    click.echo(
        f"removed {result.removed:,} records ({result.bytes_removed:,} bytes); "
        f"kept {result.kept:,} ({result.bytes_kept:,} bytes)"
    )


@cache.command()
@_where
@click.option("--fix", is_flag=True, help="Evict the records that fail (they are regenerated).")
@click.option("--log-level", default="WARNING", show_default=True, help="How much to log.")
def verify(config: str | None, cache_dir: str | None, fix: bool, log_level: str) -> None:
    """Check every record in the local cache against its key (its request is rehashed).

    Reports how many are ok, bad (filed under a key their request does not hash
    to) and unreadable; exits 1 if any fail and --fix was not given.
    """
    from synthc.cache.recover import verify as check

    setup_logging(log_level)
    with errors_to_exit_codes():
        store = _local(config, cache_dir)
        try:
            result = check(store, fix=fix)
        finally:
            store.close()
    click.echo(
        f"{store.directory}: {result.ok:,} ok, {result.bad:,} bad, {result.unreadable:,} unreadable"
    )
    for key in result.bad_keys[:20]:
        click.echo(f"  failed: {key}")
    if fix and result.evicted:
        click.echo(f"evicted {result.evicted:,} records; the next build regenerates them")
    elif result.bad_keys and not fix:
        click.echo("run synthc cache verify --fix to evict them")
        raise SystemExit(1)


@cache.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@_where
def export_(file: str, config: str | None, cache_dir: str | None) -> None:
    """Write records to the archive FILE: those CONFIG's last build used, or all of them."""
    from synthc.cache.archive import export_records

    with errors_to_exit_codes():
        keys = _manifest_keys(_spec(config)) if config else None
        store = _local(config, cache_dir)
        try:
            written, missing = export_records(store, keys or store.iter_keys(), Path(file))
        finally:
            store.close()
    gone = f" ({missing} listed in the manifest are not in the cache)" if missing else ""
    click.echo(f"exported {written:,} records to {file}{gone}")


@cache.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_where
def import_(file: str, config: str | None, cache_dir: str | None) -> None:
    """Add the records of the archive FILE to the local cache (each one checked)."""
    from synthc.cache.archive import import_records

    with errors_to_exit_codes():
        store = _local(config, cache_dir)
        try:
            result = import_records(store, Path(file))
        finally:
            store.close()
    click.echo(
        f"imported {result.imported:,} records; {result.already:,} already cached, "
        f"{result.refused:,} refused (unreadable or not matching their key)"
    )


@cache.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--cache-dir", envvar="SYNTHC_CACHE_DIR", type=click.Path(file_okay=False))
@_remotes
@click.option("--log-level", default="WARNING", show_default=True, help="How much to log.")
def push(config: str, cache_dir: str | None, remote_cache: tuple[str, ...], log_level: str) -> None:
    """Send the records CONFIG's last build used to the remote cache(s)."""
    from synthc.cache.sync import push as run

    setup_logging(log_level)
    with errors_to_exit_codes():
        spec = _spec(config)
        keys = _manifest_keys(spec)
        store = _layered(spec, cache_dir, remote_cache)
        try:
            result = run(store, keys)
        finally:
            store.close()
    for name, sent in result.pushed.items():
        click.echo(
            f"{name}: pushed {sent:,}, already there {result.present[name]:,}, "
            f"failed {result.failed[name]:,}"
        )
    if any(result.failed.values()):
        raise SystemExit(1)


@cache.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
@click.option("--cache-dir", envvar="SYNTHC_CACHE_DIR", type=click.Path(file_okay=False))
@_remotes
@click.option("--log-level", default="WARNING", show_default=True, help="How much to log.")
def pull(
    config: str,
    overrides: tuple[str, ...],
    cache_dir: str | None,
    remote_cache: tuple[str, ...],
    log_level: str,
) -> None:
    """Copy every record CONFIG (with OVERRIDES) needs from the remote(s) to the local cache."""
    from synthc import pipeline
    from synthc.cache.sync import pull as run

    setup_logging(log_level)
    with errors_to_exit_codes():
        spec = pipeline.load(config, overrides)
        graph = pipeline.compile(config, overrides)
        store = _layered(spec, cache_dir, remote_cache)
        try:
            result = run(store, graph)
        finally:
            store.close()
    pulled = sum(result.pulled.values())
    click.echo(
        f"pulled {pulled:,} records; {result.local:,} were already local; "
        f"{result.missing:,} nodes are in no cache (a build would send them)"
    )


@cache.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free one).",
)
@click.option(
    "--token",
    envvar="SYNTHC_REMOTE_CACHE_TOKEN",
    help="A bearer token that may read and write [env SYNTHC_REMOTE_CACHE_TOKEN; prefer the env].",
)
@click.option(
    "--read-token",
    envvar="SYNTHC_REMOTE_CACHE_READ_TOKEN",
    help="A bearer token that may only read: a PUT with it is refused (403) "
    "[env SYNTHC_REMOTE_CACHE_READ_TOKEN].",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True),
    help="Several tokens: a line 'write TOKEN' or 'read TOKEN' each (# comments).",
)
@click.option("--no-token", is_flag=True, help="Serve without a token (a trusted network only).")
@click.option(
    "--max-size",
    default="4MB",
    show_default=True,
    callback=lambda ctx, param, value: _size(value),
    help="Largest record accepted (4MB, 500KiB, 1048576).",
)
@click.option("--log-level", default="INFO", show_default=True, help="How much to log.")
def serve(
    *,
    directory: str,
    host: str,
    port: int,
    token: str | None,
    read_token: str | None,
    token_file: str | None,
    no_token: bool,
    max_size: int,
    log_level: str,
) -> None:
    """Serve DIRECTORY as a remote cache over HTTP (GET/HEAD/PUT /<namespace>/<key>).

    Clients send a bearer token: one that may read and write (--token, or 'write' lines of
    --token-file) or one that may only read (--read-token, 'read' lines), for CI jobs and
    laptops that should use the cache without filling it. Tokens are never logged."""
    import asyncio

    from synthc.cache.server import (
        LISTEN_ERRORS,
        CacheServer,
        Tokens,
        read_token_file,
        serve_forever,
    )

    tokens = Tokens.of(token, [read_token] if read_token else [])
    if token_file:
        try:
            tokens += read_token_file(Path(token_file))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="--token-file") from None
    if tokens.open and not no_token:
        raise click.UsageError(
            "give --token (or SYNTHC_REMOTE_CACHE_TOKEN), --read-token, --token-file, or --no-token"
        )
    if no_token and not tokens.open:
        raise click.UsageError("--no-token serves without tokens: leave the tokens out")
    setup_logging(log_level)
    Path(directory).mkdir(parents=True, exist_ok=True)
    server = CacheServer(
        Path(directory),
        tokens.write,
        read_tokens=tokens.read,
        host=host,
        port=port,
        max_size=max_size,
    )

    def announce(url: str) -> None:
        click.echo(f"serving {directory} on {url} (Ctrl-C to stop)", err=True)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_forever(server, announce))
    except LISTEN_ERRORS as exc:  # the address: not this machine's, not resolvable, in use
        why = getattr(exc, "strerror", None) or exc
        click.echo(f"error: cannot listen on {host}:{port}: {why}", err=True)
        sys.exit(2)


def _size(value: str) -> int:
    from synthc.cache.maintenance import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _spec(config: str) -> Spec:
    from synthc import pipeline

    return pipeline.load(config)


def _manifest_keys(spec: Spec) -> list[str]:
    from synthc import pipeline
    from synthc.core.errors import CacheError
    from synthc.planning.manifest import load_manifest
    from synthc.planning.plan import Status

    path = pipeline.manifest_path(spec)
    manifest = load_manifest(path)
    if manifest is None:
        raise CacheError(f"no manifest at {path}: build {spec.path} first")
    return [
        entry["key"]
        for entry in manifest.nodes.values()
        if "key" in entry and entry.get("status") in (Status.CACHED, Status.GENERATED)
    ]


def _layered(spec: Spec, cache_dir: str | None, remote_cache: tuple[str, ...]) -> LayeredStore:
    from synthc import pipeline
    from synthc.core.errors import CacheError

    store = pipeline.cache_store(spec, cache_dir, remote_cache or None)
    if not store.tiers:
        store.close()
        raise CacheError(
            "no remote cache: give --remote-cache URL, set SYNTHC_REMOTE_CACHE, "
            "or set synthc.remote_cache in the config"
        )
    return store
