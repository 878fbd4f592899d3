"""Carry records between caches as a file: records in, a portable archive out, and back.

An archive is gzip-compressed JSON lines: a header
``{"format": "synthc-cache-archive", "archive_version": 1, "namespace": "v1"}``
and then one record per line, exactly as stored. Import checks every record
as a remote hit is checked (its request must hash to its key) and skips the
ones that fail, so an archive from anywhere cannot poison a cache.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from synthc.cache.layered import checked
from synthc.cache.remote import KEY_RE, NAMESPACE
from synthc.cache.store import LocalStore
from synthc.core.errors import CacheError
from synthc.core.records import Record

FORMAT = "synthc-cache-archive"
ARCHIVE_VERSION = 1
BATCH = 512


@dataclass
class ImportResult:
    imported: int = 0
    already: int = 0
    refused: int = 0


def export_records(store: LocalStore, keys: Iterable[str], path: Path) -> tuple[int, int]:
    """Write the records of ``keys`` to the archive ``path``; return (written, missing)."""
    written = missing = 0
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    header = {"format": FORMAT, "archive_version": ARCHIVE_VERSION, "namespace": NAMESPACE}
    try:
        with gzip.open(temp, "wb") as out:
            out.write(json.dumps(header).encode() + b"\n")
            for key in dict.fromkeys(keys):
                data = store.get_bytes(key)
                if data is None:
                    missing += 1
                    continue
                out.write(data + b"\n")  # compact JSON: never a raw newline
                written += 1
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise CacheError(f"cannot write {path}: {exc}") from None
    return written, missing


def import_records(store: LocalStore, path: Path) -> ImportResult:
    """Add the archive's records that check out and that ``store`` does not have yet."""
    result = ImportResult()
    batch: list[tuple[str, Record]] = []
    try:
        with gzip.open(path, "rb") as lines:
            _check_header(path, lines.readline())
            for line in lines:
                record = _record(line.rstrip(b"\n"), str(path))
                if record is None:
                    result.refused += 1
                elif store.contains(record.key):
                    result.already += 1
                else:
                    batch.append((record.key, record))
                    result.imported += 1
                if len(batch) >= BATCH:
                    store.put_many(batch)
                    batch = []
    except (OSError, EOFError) as exc:
        raise CacheError(f"cannot read the archive {path}: {exc}") from None
    store.put_many(batch)
    return result


def _check_header(path: Path, line: bytes) -> None:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CacheError(f"{path} is not a synthc cache archive")
    if header.get("archive_version") != ARCHIVE_VERSION or header.get("namespace") != NAMESPACE:
        raise CacheError(
            f"{path} holds records in a format this synthc does not read "
            f"(archive {header.get('archive_version')}, records {header.get('namespace')})"
        )


def _record(line: bytes, source: str) -> Record | None:
    try:
        key = json.loads(line).get("key")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        return None
    return checked(key, line, source)
