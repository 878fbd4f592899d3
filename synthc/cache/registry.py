"""Register a build on a cache directory and see the other live builds: a directory in, peers out.

Each build holds ``<cache>/builds/<pid>-<token>`` open under an exclusive
``flock`` for as long as it runs. The kernel drops the lock when the process
ends, however it ends (SIGKILL included), so a registration that nobody holds
locked belongs to a dead build; whoever finds one deletes it. Pids are never
trusted on their own: they are reused, and other containers' are invisible.

A build acknowledges a peer by appending the peer's id, one per line, to its
own registration; :mod:`synthc.cache.claims` uses that as a handshake. Where
``flock`` is missing (Windows) or refused (some network file systems),
:meth:`Registry.join` returns None and the build runs unregistered.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

if sys.platform != "win32":
    import fcntl

BUILDS = "builds"  # the registrations, under the cache directory
JOIN_ATTEMPTS = 3


class Registry:
    """This build's registration; ``peers()`` lists the other live ones."""

    def __init__(self, directory: Path, build_id: str, fd: int):
        self.directory = directory
        self.id = build_id
        self._fd: int | None = fd

    @classmethod
    def join(cls, cache_dir: Path, group: str = "") -> Registry | None:
        """Register a build on ``cache_dir``; None where registrations cannot work.
        A ``group`` (one sharded build's processes) prefixes the id: ``group.pid-token``."""
        if sys.platform == "win32":
            return None
        directory = cache_dir / BUILDS
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for _ in range(JOIN_ATTEMPTS):
                build_id = f"{os.getpid()}-{secrets.token_hex(4)}"
                build_id = f"{group}.{build_id}" if group else build_id
                fd = _create_locked(directory / build_id)
                if fd is not None:
                    return cls(directory, build_id, fd)
        except OSError:
            pass
        return None

    def peers(self) -> dict[str, frozenset[str]]:
        """Every other live build: its id and the ids it has acknowledged.
        Registrations of dead builds are deleted on the way."""
        found: dict[str, frozenset[str]] = {}
        for name in os.listdir(self.directory):
            if name != self.id and not name.startswith("."):
                acknowledged = _probe(self.directory / name)
                if acknowledged is not None:
                    found[name] = acknowledged
        return found

    def is_live(self, build_id: str) -> bool:
        if build_id == self.id:
            return self._fd is not None
        if not build_id or "/" in build_id or build_id.startswith("."):
            return False
        return _probe(self.directory / build_id) is not None

    def acknowledge(self, build_id: str) -> None:
        """Tell ``build_id`` (which reads our registration) that we have seen it."""
        if self._fd is not None:
            os.write(self._fd, f"{build_id}\n".encode())  # O_APPEND: one write, one line

    def leave(self) -> None:
        """Delete the registration (while still holding its lock) and let go of it."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            (self.directory / self.id).unlink(missing_ok=True)
        finally:
            os.close(fd)


def _create_locked(path: Path) -> int | None:
    """``path`` created and locked by us, or None if a prober got in between (try again)."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # A prober that locked the new file before we did took it for a dead
        # build's and deleted it; then the name no longer leads to our file.
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    except OSError:
        os.close(fd)
        raise
    os.close(fd)
    return None


def _probe(path: Path) -> frozenset[str] | None:
    """The ids the build registered at ``path`` has acknowledged, if it is alive; else
    None, and a dead build's registration is deleted."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # its build holds it: alive
            data = os.pread(fd, os.fstat(fd).st_size, 0)
            return frozenset(data.decode(errors="replace").split("\n")[:-1])  # whole lines
        path.unlink(missing_ok=True)  # nobody held it: its build is gone
        return None
    finally:
        os.close(fd)
