"""Record which provider batch holds which node keys: keys in before submitting, batch ids out.

A batch build pays for a request when it submits it, days before the answer
arrives, so what it has submitted must outlive the process. The journal is a
SQLite file in the cache directory (``batches.db``), shared by every build on
that directory:

- ``intend(endpoint, keys)`` records an intent (an id of ours and the keys it
  will carry) *before* the batch is submitted, in one transaction that skips
  any key another intent already holds;
- ``submitted(intent, batch_id)`` adds the provider's id once it is known
  (a crash between the two leaves an intent without an id, which a rerun
  looks for at the provider by the intent id it sent as metadata);
- ``live(endpoint, keys)`` says which keys a recorded batch holds: a rerun
  waits for those instead of submitting them again;
- ``settle(keys)`` forgets lines whose answers are safely in the cache (or
  that are to be submitted anew); a batch with no lines left is forgotten;
- ``prune(present)`` forgets lines the cache already answers, and batches
  older than :data:`RESULTS_KEPT` (the providers delete results by then).

Nothing here talks to a provider or knows an API key: the endpoint is an
engine and a base URL, so switching keys between runs finds the same batches.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from synthc.core.errors import CacheError

JOURNAL = "batches.db"  # under the cache directory
RESULTS_KEPT = 29 * 86400.0  # seconds providers keep a batch's results (Anthropic: 29 days)
CHUNK = 500  # keys per IN (...) query

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    intent TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    batch_id TEXT,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    owner TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lines (
    key TEXT NOT NULL,
    intent TEXT NOT NULL,
    PRIMARY KEY (key, intent)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lines_by_intent ON lines (intent);
"""


@dataclass(frozen=True)
class Entry:
    """A recorded batch: our intent id, the provider's id once known, when, how many
    lines, and the build that submitted it (its registration id; "" if unregistered)."""

    intent: str
    endpoint: str
    batch_id: str | None
    created: float
    size: int
    owner: str = ""


OPEN_SECONDS = 30.0  # how long opening a journal another build is setting up may take


class BatchJournal:
    """The batches recorded in one cache directory (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
            self._set_up()
        except sqlite3.Error as exc:
            raise CacheError(f"cannot open the batch journal {path}: {exc}") from None

    def _set_up(self) -> None:
        """WAL mode and the tables. Two builds opening a new journal at once can find it
        locked while the other switches it to WAL: SQLite answers that at once, without
        waiting out the connection's timeout, so it is tried again for a while."""
        deadline = time.monotonic() + OPEN_SECONDS
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.executescript(SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @classmethod
    def open(cls, cache_dir: Path) -> BatchJournal:
        return cls(cache_dir / JOURNAL)

    def close(self) -> None:
        self._db.close()

    def intend(
        self, endpoint: str, keys: Sequence[str], owner: str = ""
    ) -> tuple[Entry | None, dict[str, Entry]]:
        """Record a batch of ``keys`` about to be submitted to ``endpoint``.

        Returns the new entry (None if every key was taken) and the keys another
        recorded batch already holds, which are left out of it: whoever finds a key
        taken waits for that batch instead of paying for the key again.
        """
        with self._transaction():
            taken = self._live(endpoint, keys)
            fresh = [key for key in keys if key not in taken]
            if not fresh:
                return None, taken
            entry = Entry(uuid.uuid4().hex[:16], endpoint, None, time.time(), len(fresh), owner)
            self._db.execute(
                "INSERT INTO batches VALUES (?, ?, NULL, ?, ?, ?)",
                (entry.intent, endpoint, entry.created, entry.size, owner),
            )
            self._db.executemany(
                "INSERT INTO lines VALUES (?, ?)", ((key, entry.intent) for key in fresh)
            )
        return entry, taken

    def submitted(self, intent: str, batch_id: str) -> None:
        """The provider accepted ``intent`` as ``batch_id``."""
        with self._transaction():
            self._db.execute("UPDATE batches SET batch_id = ? WHERE intent = ?", (batch_id, intent))

    def abandon(self, intent: str) -> None:
        """The provider refused ``intent``: nothing of it was submitted."""
        with self._transaction():
            self._db.execute("DELETE FROM lines WHERE intent = ?", (intent,))
            self._db.execute("DELETE FROM batches WHERE intent = ?", (intent,))

    def live(self, endpoint: str, keys: Sequence[str]) -> dict[str, Entry]:
        """The recorded batch on ``endpoint`` that holds each of ``keys``, where one does."""
        return self._live(endpoint, keys)

    def settle(self, keys: Iterable[str], intent: str | None = None) -> None:
        """Forget ``keys``' lines (in ``intent`` only, when given), then empty batches."""
        keys = list(keys)
        if not keys:
            return
        with self._transaction():
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                if intent is None:
                    self._db.execute(f"DELETE FROM lines WHERE key IN ({marks})", chunk)
                else:
                    self._db.execute(
                        f"DELETE FROM lines WHERE intent = ? AND key IN ({marks})",
                        [intent, *chunk],
                    )
            self._forget_empty()

    def prune(self, present: Callable[[list[str]], Iterable[str]]) -> None:
        """Forget the lines whose keys ``present`` finds in the cache, and batches whose
        results the provider no longer keeps."""
        keys = [row[0] for row in self._db.execute("SELECT DISTINCT key FROM lines")]
        done = [k for i in range(0, len(keys), CHUNK) for k in present(keys[i : i + CHUNK])]
        self.settle(done)
        with self._transaction():
            cutoff = (time.time() - RESULTS_KEPT,)
            self._db.execute(
                "DELETE FROM lines WHERE intent IN (SELECT intent FROM batches WHERE created < ?)",
                cutoff,
            )
            self._forget_empty()

    def entries(self, endpoint: str | None = None) -> list[Entry]:
        """Every recorded batch (on ``endpoint``, when given), oldest first; ``size`` is
        the lines it still holds."""
        rows = self._db.execute(
            "SELECT intent, endpoint, batch_id, created, "
            "(SELECT COUNT(*) FROM lines WHERE lines.intent = batches.intent), owner "
            "FROM batches ORDER BY created"
        )
        found = [Entry(*row) for row in rows]
        return [e for e in found if endpoint is None or e.endpoint == endpoint]

    def _live(self, endpoint: str, keys: Sequence[str]) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = list(keys[start : start + CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT lines.key, batches.intent, batches.endpoint, batches.batch_id, "
                "batches.created, batches.size, batches.owner "
                "FROM lines JOIN batches USING (intent) "
                f"WHERE batches.endpoint = ? AND lines.key IN ({marks})",
                [endpoint, *chunk],
            )
            for key, *entry in rows:
                found[key] = Entry(*entry)
        return found

    def _forget_empty(self) -> None:
        self._db.execute(
            "DELETE FROM batches WHERE NOT EXISTS "
            "(SELECT 1 FROM lines WHERE lines.intent = batches.intent)"
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.path)


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error): one writer at a time, so two
    builds never both record a key."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise CacheError(f"cannot write the batch journal {self._path}: {exc}") from None

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if kind is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
