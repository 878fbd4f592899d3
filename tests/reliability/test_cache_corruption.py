"""A damaged cache is detected, evicted and regenerated with a warning, never a traceback;
``synthc cache verify`` finds what is wrong and ``--fix`` evicts it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from synthc.testing._wire import default_reply
from synthc.testing.server import FakeLLMServer
from tests.reliability.helpers import cached_keys, run_synthc, write_config

SAMPLES = 20
REQUESTS = 2 * SAMPLES
PAGE = 4096  # SQLite's default page size


def _built(tmp_path: Path, server: FakeLLMServer) -> tuple[Path, bytes]:
    write_config(tmp_path / "c.yaml", server, samples=SAMPLES)
    done = run_synthc("build", "c.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert server.count == REQUESTS
    server.reset()
    return tmp_path / ".synthc" / "cache", (tmp_path / "out.jsonl").read_bytes()


def _rebuild(tmp_path: Path, server: FakeLLMServer, expected: bytes) -> tuple[int, str]:
    """Build again: the requests sent, and stderr; the output must be unchanged."""
    server.reset()
    done = run_synthc("build", "c.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == expected
    return server.count, done.stderr


def _damage_records(cache: Path) -> None:
    """3 garbled, 2 truncated (unreadable); 2 swapped with each other (bad: misfiled)."""
    db = sqlite3.connect(cache / "cache.db")
    try:
        rows = db.execute("SELECT rowid, value FROM Cache ORDER BY key").fetchall()
        for rowid, _ in rows[0:3]:
            db.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (b"\x00\xffgarbage{", rowid))
        for rowid, value in rows[3:5]:
            db.execute(
                "UPDATE Cache SET value = ? WHERE rowid = ?", (value[: len(value) // 2], rowid)
            )
        (a, va), (b, vb) = rows[5], rows[6]
        db.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (vb, a))
        db.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (va, b))
        db.commit()
    finally:
        db.close()


def _verify(tmp_path: Path, *extra: str) -> tuple[int, str]:
    done = run_synthc("cache", "verify", "--cache-dir", ".synthc/cache", *extra, cwd=tmp_path)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout


def test_garbled_truncated_and_misfiled_records_are_found_and_regenerated(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        cache, expected = _built(tmp_path, server)
        _damage_records(cache)
        code, out = _verify(tmp_path)
        assert code == 1
        assert f"{REQUESTS - 7} ok, 2 bad, 5 unreadable" in out
        sent, stderr = _rebuild(tmp_path, server, expected)
        assert sent == 7  # exactly the damaged ones; their answers come back the same
        assert stderr.count("evicting unreadable cache record") == 7
        assert _verify(tmp_path) == (0, f".synthc/cache: {REQUESTS} ok, 0 bad, 0 unreadable\n")


def test_verify_fix_evicts_what_fails(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        cache, expected = _built(tmp_path, server)
        _damage_records(cache)
        code, out = _verify(tmp_path, "--fix")
        assert code == 0 and "evicted 7 records" in out
        assert len(cached_keys(cache)) == REQUESTS - 7
        assert _verify(tmp_path)[0] == 0
        sent, stderr = _rebuild(tmp_path, server, expected)
        assert sent == 7 and "evicting" not in stderr


@pytest.mark.parametrize("damage", ["truncated", "garbled page", "not a database"])
def test_a_damaged_database_is_moved_aside_and_what_is_readable_kept(
    tmp_path: Path, damage: str
) -> None:
    with FakeLLMServer() as server:
        cache, expected = _built(tmp_path, server)
        db = cache / "cache.db"
        data = db.read_bytes()
        if damage == "truncated":  # a half-written file
            db.write_bytes(data[: len(data) // 2])
        elif damage == "garbled page":  # the b-tree header of a page that holds records
            records = [m.start() for m in re.finditer(rb'\{"key":"', data)]
            page = records[len(records) // 2] // PAGE * PAGE
            db.write_bytes(data[:page] + b"\xde\xad\xbe\xef" * 4 + data[page + 16 :])
        else:
            db.write_bytes(b"\x00" * 100 + data[100:])
        sent, stderr = _rebuild(tmp_path, server, expected)
        assert "is damaged" in stderr
        kept = int(re.search(r"kept the (\d+) records", stderr)[1])  # type: ignore[index]
        assert sent == REQUESTS - kept
        assert list(cache.glob("cache.db.corrupt-*"))  # kept for inspection, not deleted
        assert _rebuild(tmp_path, server, expected)[0] == 0
        assert _verify(tmp_path)[0] == 0


def test_deleted_record_files_are_a_miss_with_a_warning(tmp_path: Path) -> None:
    """Records over diskcache's inline limit (32 KB) live in files; delete some of them."""
    big = lambda body: default_reply(body) + " " + "x" * 40_000  # noqa: E731
    with FakeLLMServer(reply=big) as server:
        cache, expected = _built(tmp_path, server)
        files = sorted(cache.rglob("*.val"))
        assert len(files) == REQUESTS
        for path in files[::4]:
            path.unlink()
        lost = len(files[::4])
        code, out = _verify(tmp_path)
        assert code == 1 and f"{lost} unreadable" in out
        sent, stderr = _rebuild(tmp_path, server, expected)
        assert sent == lost
        assert stderr.count("its value file is missing") == lost
        assert _verify(tmp_path)[0] == 0
