"""Find the files a config names: a path or glob in; existing files out, in sorted order."""

from __future__ import annotations

import glob
from pathlib import Path

from synthc.compiler.source import PathKey
from synthc.compiler.validate import Spec


def resolve_files(spec: Spec, pattern: str, path: PathKey) -> list[Path]:
    """The files ``pattern`` names, relative to the working directory, then to the config."""
    for base in (Path.cwd(), spec.path.resolve().parent):
        full = str(base / Path(pattern).expanduser())
        if glob.has_magic(pattern):
            found = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
        else:
            found = [Path(full)] if Path(full).is_file() else []
        if found:
            return found
    raise spec.error(
        f"no file matches {pattern!r} (looked in the working directory and beside the config)",
        *path,
        "path",
    )
