"""store: records in and out of the local diskcache tier; unreadable records evicted, not fatal."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import diskcache
import pytest

from synthc.cache.store import LocalStore, default_cache_dir
from synthc.core.errors import CacheError
from synthc.core.records import RECORD_VERSION, Record, Store

KEY = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


def _record(key: str = KEY, text: str = "Paris ☀") -> Record:
    return Record(
        key=key,
        text=text,
        request={"model": "m", "messages": [{"role": "user", "content": "Capital?"}]},
        model="m-2024",
        usage={"input_tokens": 3, "output_tokens": 2},
        latency=0.25,
        created=1_700_000_000.0,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    local = LocalStore(tmp_path / "cache")
    yield local
    local.close()


# a record read alone, or among others in one query: both check and evict alike
READS: dict[str, Callable[[LocalStore, str], Record | None]] = {
    "get": lambda store, key: store.get(key),
    "get_many": lambda store, key: store.get_many([OTHER, key, key]).get(key),
}


@pytest.fixture(params=list(READS))
def read(request: pytest.FixtureRequest) -> Callable[[LocalStore, str], Record | None]:
    return READS[request.param]


def _raw_set(directory: Path, key: str, value: object) -> None:
    """Write under ``key`` with diskcache itself, bypassing Record."""
    with diskcache.Cache(str(directory)) as cache:
        cache.set(key, value)


def test_put_get_roundtrip(store: LocalStore) -> None:
    record = _record()
    assert store.get(KEY) is None
    assert not store.contains(KEY)
    store.put(KEY, record)
    assert store.contains(KEY)
    assert store.get(KEY) == record


def test_put_many(store: LocalStore) -> None:
    records = [(KEY, _record(KEY, "a")), (OTHER, _record(OTHER, "b"))]
    store.put_many(records)
    assert [store.get(k) for k, _ in records] == [r for _, r in records]


def test_put_many_rows_read_as_diskcache_wrote_them(tmp_path: Path) -> None:
    """put_many writes diskcache's rows itself: diskcache reads them; counts, sizes agree."""
    directory = tmp_path / "cache"
    local = LocalStore(directory)
    local.put(KEY, _record(KEY, "x" * 100_000))  # large: diskcache keeps it in a value file
    value_files = list(directory.rglob("*.val"))
    assert len(value_files) == 1
    local.put_many([(KEY, _record(KEY, "small")), (OTHER, _record(OTHER, "b"))])
    assert not value_files[0].exists()  # the replaced row's file went with it
    assert local.get(KEY) == _record(KEY, "small")
    local.close()
    with diskcache.Cache(str(directory)) as cache:
        assert len(cache) == 2
        assert sorted(cache.iterkeys()) == sorted([KEY, OTHER])
        assert Record.from_bytes(cache.get(OTHER)) == _record(OTHER, "b")
        assert cache.check() == []  # diskcache's own consistency check: count, size, files
        assert cache.volume() > 0


def test_get_many_reads_inline_rows_and_value_files_in_one_call(store: LocalStore) -> None:
    big, small = _record(KEY, "x" * 100_000), _record(OTHER, "small")
    store.put(KEY, big)  # large: a value file
    store.put_many([(OTHER, small)])  # inline
    missing = "0" * 32
    assert store.get_many([missing, KEY, OTHER, KEY]) == {KEY: big, OTHER: small}
    assert store.get_many([]) == {}
    keys = [f"{i:032x}" for i in range(1200)]  # more than one query's worth of parameters
    store.put_many([(key, _record(key, key)) for key in keys])
    assert store.get_many(keys) == {key: _record(key, key) for key in keys}


def test_records_survive_reopening(tmp_path: Path) -> None:
    first = LocalStore(tmp_path / "c")
    first.put(KEY, _record())
    first.close()
    second = LocalStore(tmp_path / "c")
    try:
        assert second.get(KEY) == _record()
    finally:
        second.close()


def test_local_store_is_a_store(store: LocalStore) -> None:
    typed: Store = store
    assert typed.get(OTHER) is None


def test_record_is_json_not_pickle() -> None:
    data = _record().to_bytes()
    assert json.loads(data) == {
        "key": KEY,
        "text": "Paris ☀",
        "request": {"model": "m", "messages": [{"role": "user", "content": "Capital?"}]},
        "model": "m-2024",
        "usage": {"input_tokens": 3, "output_tokens": 2},
        "latency": 0.25,
        "created": 1_700_000_000.0,
        "version": RECORD_VERSION,
    }
    assert "☀".encode() in data  # UTF-8, not \\u escapes
    assert Record.from_bytes(data) == _record()


@pytest.mark.parametrize(
    "junk",
    [
        b"\x00\xffjunk bytes",
        b"not json",
        b"[1, 2]",
        b'{"key": "k"}',
        "a str, not bytes",
        {"key": KEY, "text": "a pickled dict"},
        12345,
    ],
    ids=["binary", "text", "list", "no-text", "str", "dict", "int"],
)
def test_garbled_record_is_evicted_with_warning(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    read: Callable[[LocalStore, str], Record | None],
    junk: object,
) -> None:
    directory = tmp_path / "cache"
    _raw_set(directory, KEY, junk)
    store = LocalStore(directory)
    try:
        with caplog.at_level(logging.WARNING, logger="synthc.cache"):
            assert read(store, KEY) is None
        assert not store.contains(KEY)  # evicted, so the next build regenerates it
        (warning,) = caplog.records
        assert warning.levelno == logging.WARNING
        assert warning.getMessage().startswith(f"evicting unreadable cache record {KEY} (")
        assert warning.getMessage().endswith("); it will be regenerated")
        store.put(KEY, _record())
        assert store.get(KEY) == _record()
    finally:
        store.close()


def test_corrupt_pickle_is_evicted(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    read: Callable[[LocalStore, str], Record | None],
) -> None:
    directory = tmp_path / "cache"
    _raw_set(directory, KEY, {"placeholder": True})  # stored by diskcache as a pickle
    with sqlite3.connect(directory / "cache.db") as db:
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (b"\x80\x04garbage", KEY))
    db.close()
    store = LocalStore(directory)
    try:
        with caplog.at_level(logging.WARNING, logger="synthc.cache"):
            assert read(store, KEY) is None
        assert not store.contains(KEY)
        assert len(caplog.records) == 1
    finally:
        store.close()


def test_record_under_the_wrong_key_is_refused(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    read: Callable[[LocalStore, str], Record | None],
) -> None:
    directory = tmp_path / "cache"
    _raw_set(directory, KEY, _record(key=OTHER).to_bytes())
    store = LocalStore(directory)
    try:
        with caplog.at_level(logging.WARNING, logger="synthc.cache"):
            assert read(store, KEY) is None
        assert f"record filed under another key ({OTHER})" in caplog.text
        assert not store.contains(KEY)
    finally:
        store.close()


@pytest.mark.parametrize("version", [RECORD_VERSION + 1, 0, None, "1"])
def test_other_record_versions_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, version: object
) -> None:
    directory = tmp_path / "cache"
    data = json.loads(_record().to_bytes())
    data["version"] = version
    _raw_set(directory, KEY, json.dumps(data).encode())
    store = LocalStore(directory)
    try:
        with caplog.at_level(logging.WARNING, logger="synthc.cache"):
            assert store.get(KEY) is None
        assert f"record version {version!r}, expected {RECORD_VERSION}" in caplog.text
    finally:
        store.close()


def test_record_with_unknown_field_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "cache"
    data = json.loads(_record().to_bytes())
    data["surprise"] = 1
    _raw_set(directory, KEY, json.dumps(data).encode())
    store = LocalStore(directory)
    try:
        with caplog.at_level(logging.WARNING, logger="synthc.cache"):
            assert store.get(KEY) is None
        assert "unexpected keyword argument 'surprise'" in caplog.text
    finally:
        store.close()


def test_unwritable_directory_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError) as info:
        LocalStore(blocker / "cache")
    assert str(info.value).startswith(f"cannot open the cache at {blocker / 'cache'}: ")
    assert info.value.exit_code == 2


def test_unwritable_directory_by_permissions(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        try:
            (locked / "probe").mkdir()
        except PermissionError:
            pass
        else:  # root (or CAP_DAC_OVERRIDE): permissions do not stop us; covered above
            pytest.skip("directory permissions are not enforced for this user")
        with pytest.raises(CacheError, match="cannot open the cache at"):
            LocalStore(locked / "cache")
    finally:
        locked.chmod(0o700)


def test_corrupt_database_file_is_moved_aside_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "cache.db").write_bytes(b"this is not an sqlite database" * 100)
    store = LocalStore(directory)
    try:
        assert len(store) == 0
        store.put("k", Record(key="k", text="t"))
        assert store.get("k") == Record(key="k", text="t")
    finally:
        store.close()
    assert "is damaged (file is not a database)" in caplog.text
    assert len(list(directory.glob("cache.db.corrupt-*"))) == 1  # kept for inspection


def test_default_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "proj" / "geo.yaml"
    monkeypatch.delenv("SYNTHC_CACHE_DIR", raising=False)
    assert default_cache_dir(config) == tmp_path / "proj" / ".synthc" / "cache"
    monkeypatch.setenv("SYNTHC_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir(config) == tmp_path / "env"
    assert default_cache_dir(config, str(tmp_path / "flag")) == tmp_path / "flag"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir(config, "~/c") == tmp_path / "home" / "c"
