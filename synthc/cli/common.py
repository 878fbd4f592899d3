"""What every ``synthc`` command shares: errors become messages and exit codes, and logging."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

import click


@contextlib.contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Turn a SynthError into its message on stderr and its exit code: never a traceback."""
    from synthc.core.errors import SynthError

    try:
        yield
    except SynthError as exc:
        click.echo(f"error: {exc.render()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        saved = getattr(exc, "saved", None)
        if saved is None:
            click.echo("interrupted: results received so far are cached", err=True)
        else:
            click.echo(
                f"interrupted: {saved} new results saved to the cache; "
                "run the same command again to build the rest",
                err=True,
            )
        sys.exit(130)


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (a command's ``-o``); a path that cannot be written is an
    error naming it, exit 2."""
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        click.echo(f"error: cannot write {path}: {exc.strerror or exc}", err=True)
        sys.exit(2)


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
