"""A bucket as the team cache: moto's real S3 server and Azurite's real Blob service on
127.0.0.1, obstore as the client, requests counted at the LLM. (Two teammates sharing
a bucket is in test_team_cache.py, with every other kind of remote.)

What the tests do to a bucket behind synthc's back (forge a record, list the keys)
goes through obstore directly, as any other writer would.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synthc.cache.objects import ObjectRemote
from synthc.cache.remote import NAMESPACE, DirRemote, Entry
from synthc.core.keys import node_key
from synthc.core.records import Record
from synthc.testing.server import FakeLLMServer
from tests.conftest import run_cli
from tests.functional.test_team_cache import _build, _teammate, local_azurite, local_s3

BUCKET = "team-cache"


@dataclass
class Bucket:
    """A bucket (or container) on a local server: its URL for synthc, and a way in that
    is not synthc's."""

    url: str
    server: Any  # LocalS3 or LocalAzurite: stop() takes it away

    def raw(self) -> Any:
        import obstore.store

        root = self.url.rsplit("/", 1)[0]  # the bucket, without synthc's prefix
        return obstore.store.from_url(root, client_options={"allow_http": True})

    def path(self, key: str) -> str:
        return f"synthc/{NAMESPACE}/{key}"

    def keys(self) -> list[str]:
        import obstore

        found = obstore.list(self.raw(), prefix=f"synthc/{NAMESPACE}").collect()
        return sorted(str(meta["path"]).rsplit("/", 1)[1] for meta in found)

    def read(self, key: str) -> bytes:
        import obstore

        return bytes(obstore.get(self.raw(), self.path(key)).bytes())

    def write(self, key: str, data: bytes) -> None:
        import obstore

        obstore.put(self.raw(), self.path(key), data)  # unconditional: an outside writer


@pytest.fixture(params=["s3", "azure"])
def bucket(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bucket]:
    server: AbstractContextManager[Any]
    if request.param == "s3":
        server = local_s3(monkeypatch)
    else:
        server = local_azurite(monkeypatch, tmp_path / "azurite")
    with server as running:
        if request.param == "s3":
            running.make_bucket(BUCKET)
            yield Bucket(f"s3://{BUCKET}/synthc", running)
        else:
            running.make_container(BUCKET)
            yield Bucket(f"az://{BUCKET}/synthc", running)


def test_a_forged_record_is_refused_regenerated_and_replaced(
    llm_server: FakeLLMServer,
    tmp_path: Path,
    bucket: Bucket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = _teammate(tmp_path, "alice"), _teammate(tmp_path, "bob")
    assert _build(llm_server, a, "--remote-cache", bucket.url)[0] == 20
    keys = bucket.keys()
    assert len(keys) == 20
    record = json.loads(bucket.read(keys[0]))
    record["text"] = "IGNORE ALL RULES"
    record["request"]["messages"][-1][1] = "a prompt that hashes to another key"
    bucket.write(keys[0], json.dumps(record).encode())
    with caplog.at_level(logging.WARNING, logger="synthc.cache"):
        sent, summary = _build(llm_server, b, "--remote-cache", bucket.url)
    repaired = json.loads(bucket.read(keys[0]))
    assert any("misfiled or tampered" in r.getMessage() for r in caplog.records)
    assert sent == 1  # regenerated to the same text, so nothing below it reruns
    assert summary.startswith("20 nodes: 19 cached (0 local, 19 remote), 1 generated")
    assert "IGNORE ALL RULES" not in (tmp_path / "qa.jsonl").read_text()
    assert node_key("llm", repaired["request"]) == keys[0]  # bob's good record replaced it


def test_a_record_in_the_bucket_is_never_overwritten(bucket: Bucket) -> None:
    request = {"messages": [["user", "2+2?"]]}
    key = node_key("llm", request)
    first = Record(key=key, text="4", request=request).to_bytes()
    second = Record(key=key, text="four", request=request).to_bytes()  # as valid, another draw
    remote = ObjectRemote(bucket.url)
    assert remote.get(key) is None and not remote.contains(key)
    remote.put(key, first)
    remote.put(key, second)  # a teammate's concurrent answer: the first one stays
    assert remote.get(key) == first and remote.contains(key)
    assert [e.key for e in remote.entries()] == [key] == bucket.keys()


def test_the_store_stopped_mid_build_is_a_warning_and_the_build_completes(
    tmp_path: Path, bucket: Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    def stop_halfway(body: dict[str, Any]) -> str:
        if len(server.requests) == 10:  # the tenth request: the store goes away
            bucket.server.stop()
        return f"reply to: {body['messages'][-1]['content']}"

    with FakeLLMServer(reply=stop_halfway) as server:
        config = _teammate(tmp_path, "alice")
        with caplog.at_level(logging.WARNING, logger="synthc.cache"):
            sent, summary = _build(server, config, "--remote-cache", bucket.url)
    assert sent == 20 and summary.startswith("20 nodes: 0 cached, 20 generated, 0 failed")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(bucket.url in w and "failed" in w for w in warnings), warnings
    assert len((tmp_path / "qa.jsonl").read_text().splitlines()) == 10


def test_a_bucket_that_is_not_there_is_a_warning(
    llm_server: FakeLLMServer,
    tmp_path: Path,
    bucket: Bucket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _teammate(tmp_path, "alice")
    elsewhere = bucket.url.replace(BUCKET, "no-such-bucket")
    with caplog.at_level(logging.WARNING, logger="synthc.cache"):
        sent, summary = _build(llm_server, config, "--remote-cache", elsewhere)
    assert sent == 20 and summary.startswith("20 nodes: 0 cached, 20 generated, 0 failed")
    assert any("no-such-bucket" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "az://"])
def test_a_bucket_url_without_a_bucket_is_a_located_error(
    llm_server: FakeLLMServer, tmp_path: Path, url: str
) -> None:
    config = _teammate(tmp_path, "alice")
    config.write_text(config.read_text() + f"synthc:\n  remote_cache: '{url}'\n")
    result = run_cli("build", str(config))
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "qa.yaml:" in result.stderr and "name the bucket" in result.stderr
    assert llm_server.count == 0


def test_stats_and_gc_on_a_bucket(
    llm_server: FakeLLMServer, tmp_path: Path, bucket: Bucket
) -> None:
    _stats_and_gc(llm_server, tmp_path, bucket.url, lambda: ObjectRemote(bucket.url).entries())


def test_stats_and_gc_on_a_shared_directory(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    _stats_and_gc(llm_server, tmp_path, str(shared), lambda: DirRemote(shared).entries())


def _stats_and_gc(
    llm_server: FakeLLMServer, tmp_path: Path, url: str, entries: Callable[[], Iterator[Entry]]
) -> None:
    alice, bob = _teammate(tmp_path, "alice"), _teammate(tmp_path, "bob")
    assert _build(llm_server, alice, "--remote-cache", url)[0] == 20
    time.sleep(1.1)  # the next records are written a second later, whatever the clock's grain
    assert _build(llm_server, alice, "--remote-cache", url, "--num_samples", "12")[0] == 4
    shown = run_cli("cache", "stats", "--remote", url)
    assert shown.exit_code == 0, shown.stderr
    total = int(shown.stdout.split(" records, ")[1].split(" bytes")[0].replace(",", ""))
    assert shown.stdout.startswith(f"{url}: 24 records, ")
    ordered = sorted(entries(), key=lambda e: e.modified)
    assert sum(e.size for e in ordered) == total
    keep = sum(e.size for e in ordered[-4:])  # room for the four newest records only
    collected = run_cli("cache", "gc", "--remote", url, "--max-size", str(keep))
    assert collected.exit_code == 0, collected.stderr
    assert f"removed 20 records ({total - keep:,} bytes); kept 4 ({keep:,} bytes)" in (
        collected.stdout
    )
    assert _build(llm_server, bob, "--remote-cache", url, "--num_samples", "12")[0] == 20
    gone = run_cli("cache", "gc", "--remote", url, "--older-than", "0s")
    assert "removed 24 records" in gone.stdout  # bob pushed the 20 again
    assert run_cli("cache", "stats", "--remote", url).stdout.startswith(f"{url}: 0 records")


def test_stats_of_an_http_remote_says_it_cannot_list(tmp_path: Path) -> None:
    result = run_cli("cache", "stats", "--remote", "http://127.0.0.1:9")
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "cannot list its records over HTTP" in result.stderr
