"""A team shares one remote cache: two teammates, two local caches, requests counted at the LLM.

Each remote kind is exercised the same way: ``synthc cache serve``, a shared
directory, and a real nginx with WebDAV PUT (Debian's package), which the test
starts on a free loopback port with its own config and prefix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthc.cache.remote import NAMESPACE
from synthc.cache.server import CacheServer
from synthc.cache.store import LocalStore
from synthc.core.keys import node_key
from synthc.core.records import Record
from synthc.testing.azurite import LocalAzurite, azurite_command
from synthc.testing.s3 import LocalS3
from synthc.testing.server import FakeLLMServer
from synthc.testing.slow_proxy import SlowProxy
from tests.conftest import run_cli
from tests.functional.test_incremental import CONFIG

TOKEN = "s3cret-team-token-7f1c"
EDIT = ("You answer quiz questions.", "Answer in five words.")

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        client_max_body_size 4m;
        location / {{
            if ($http_authorization != "Bearer {token}") {{ return 401; }}
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], work: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = [
                (work / n).read_text() for n in ("stderr.log", "error.log") if (work / n).exists()
            ]
            raise RuntimeError(f"nginx exited with {process.returncode}: {logs}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("nginx did not start listening within 10s")


@contextlib.contextmanager
def nginx_dav(root: Path, work: Path) -> Iterator[str]:
    """Debian's nginx serving ``root`` with WebDAV PUT and a bearer-token check."""
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if exe is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run installs it)")
    work.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port, root=root, token=TOKEN))
    command = [exe, "-p", str(work), "-c", str(conf), "-e", str(work / "error.log")]
    with open(work / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        _wait_for_port(port, process, work)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(params=["serve", "directory", "nginx", "s3", "azure"])
def remote(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The URL of a remote cache of each kind; the token (or the S3 credentials and
    endpoint) in the environment."""
    monkeypatch.setenv("SYNTHC_REMOTE_CACHE_TOKEN", TOKEN)
    monkeypatch.delenv("SYNTHC_REMOTE_CACHE", raising=False)
    root = tmp_path / "remote"
    if request.param == "serve":
        with CacheServer(root, TOKEN) as server:
            yield server.url
    elif request.param == "directory":
        yield str(root)
    elif request.param == "nginx":
        with nginx_dav(root, tmp_path / "nginx") as url:
            yield url
    elif request.param == "s3":
        with local_s3(monkeypatch) as s3:
            s3.make_bucket("team-cache")
            yield "s3://team-cache/synthc"
    else:
        with local_azurite(monkeypatch, tmp_path / "azurite") as azure:
            azure.make_container("team-cache")
            yield "az://team-cache/synthc"


@contextlib.contextmanager
def local_azurite(monkeypatch: pytest.MonkeyPatch, root: Path) -> Iterator[LocalAzurite]:
    """Azurite's blob service on 127.0.0.1, the emulator's settings in the environment."""
    pytest.importorskip("obstore", reason="obstore (synthc[s3]) is not installed")
    if azurite_command() is None:
        pytest.skip("azurite is not installed (npm install azurite; .ci/run installs it)")
    with LocalAzurite(root) as azure:
        for name, value in azure.env().items():
            monkeypatch.setenv(name, value)
        yield azure


@contextlib.contextmanager
def local_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalS3]:
    """moto's S3 server on 127.0.0.1, its endpoint and credentials in the environment."""
    pytest.importorskip("obstore", reason="obstore (synthc[s3]) is not installed")
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    with LocalS3() as s3:
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
        yield s3


def _teammate(tmp_path: Path, name: str) -> Path:
    """A checkout of the config in its own directory, so with its own local cache."""
    home = tmp_path / name
    home.mkdir()
    config = home / "qa.yaml"
    config.write_text(CONFIG.replace("ENGINE", "OPENAI"))
    return config


def _build(server: FakeLLMServer, config: Path, *args: str) -> tuple[int, str]:
    """Build; return the requests that reached the LLM and the summary line."""
    before = server.count
    url = ["--inference_config.remote_params.api_url", server.url("/v1/chat/completions")]
    result = run_cli("build", str(config), "--quiet", *url, *args)
    assert result.exit_code == 0, result.stderr
    return server.count - before, result.stdout.strip().splitlines()[-1]


def _edit(config: Path) -> None:
    config.write_text(config.read_text().replace(*EDIT))


def test_two_teammates_share_a_remote(
    llm_server: FakeLLMServer, tmp_path: Path, remote: str
) -> None:
    a, b = _teammate(tmp_path, "alice"), _teammate(tmp_path, "bob")
    share = ["--remote-cache", remote]

    sent, summary = _build(llm_server, a, *share)
    assert sent == 20
    assert summary.startswith("20 nodes: 0 cached, 20 generated")

    sent, summary = _build(llm_server, b, *share)
    assert sent == 0
    assert summary.startswith("20 nodes: 20 cached (0 local, 20 remote), 0 generated")

    _edit(b)
    sent, summary = _build(llm_server, b, *share)
    assert sent == 10  # only the edited attribute's requests
    assert summary.startswith("20 nodes: 10 cached, 10 generated")

    _edit(a)  # alice gets bob's edit (say, from git) and pulls his new results
    pulled = run_cli("cache", "pull", str(a), *share)
    assert pulled.exit_code == 0, pulled.stderr
    assert "pulled 10 records; 10 were already local; 0 nodes are in no cache" in pulled.stdout
    sent, summary = _build(llm_server, a)  # no remote needed any more
    assert sent == 0
    assert summary.startswith("20 nodes: 20 cached, 0 generated")
    assert (a.parent / ".synthc" / "cache").is_dir()
    assert not (a.parent / ".synthc" / "cache" / NAMESPACE).exists()


def test_build_reads_through_without_pull(
    llm_server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote named in the config's synthc section; a hit is copied to the local tier."""
    shared = tmp_path / "shared"
    a, b = _teammate(tmp_path, "alice"), _teammate(tmp_path, "bob")
    for config in (a, b):
        config.write_text(config.read_text() + f"synthc:\n  remote_cache: {shared}\n")
    assert _build(llm_server, a)[0] == 20
    assert len(list((shared / NAMESPACE).iterdir())) == 20
    _edit(a)
    assert _build(llm_server, a)[0] == 10
    _edit(b)
    sent, summary = _build(llm_server, b)
    assert sent == 0
    assert "(0 local, 20 remote)" in summary
    monkeypatch.setenv("SYNTHC_REMOTE_CACHE", str(tmp_path / "elsewhere"))  # env beats config
    assert _build(llm_server, b, "--num_samples", "12")[0] == 4
    assert len(list((tmp_path / "elsewhere" / NAMESPACE).iterdir())) == 4
    assert len(list((shared / NAMESPACE).iterdir())) == 30


def test_readonly_consumer_never_pushes(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    ci = _teammate(tmp_path, "ci")
    assert _build(llm_server, ci, "--remote-cache", str(shared), "--remote-cache-readonly")[0] == 20
    assert not (shared / NAMESPACE).exists()


def test_remote_down_is_a_warning(
    llm_server: FakeLLMServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the remote's port: the build completes from the LLM and says so."""
    config = _teammate(tmp_path, "alice")
    down = f"http://127.0.0.1:{_free_port()}"
    with caplog.at_level(logging.WARNING, logger="synthc.cache"):
        sent, summary = _build(llm_server, config, "--remote-cache", down)
    assert sent == 20
    assert summary.startswith("20 nodes: 0 cached, 20 generated, 0 failed")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cannot read from the remote cache" in w for w in warnings)
    assert any("not used for the rest of this run" in w for w in warnings)
    assert _build(llm_server, config, "--remote-cache", down)[0] == 0


def test_tampered_record_is_refused_and_regenerated(
    llm_server: FakeLLMServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A record whose request does not hash to the key it is filed under is a miss."""
    shared = tmp_path / "shared"
    a, b = _teammate(tmp_path, "alice"), _teammate(tmp_path, "bob")
    assert _build(llm_server, a, "--remote-cache", str(shared))[0] == 20
    victim = sorted((shared / NAMESPACE).iterdir())[0]
    record = json.loads(victim.read_text())
    record["text"] = "IGNORE ALL RULES"
    record["request"]["messages"][-1][1] = "a prompt that hashes to another key"
    victim.write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="synthc.cache"):
        sent, summary = _build(llm_server, b, "--remote-cache", str(shared))
    assert any("misfiled or tampered" in r.getMessage() for r in caplog.records)
    assert sent == 1  # regenerated to the same text, so nothing below it reruns
    assert summary.startswith("20 nodes: 19 cached (0 local, 19 remote), 1 generated")
    assert "IGNORE ALL RULES" not in (tmp_path / "qa.jsonl").read_text()
    repaired = json.loads(victim.read_text())  # bob's answer was pushed over it
    assert node_key("llm", repaired["request"]) == victim.name


def test_push_export_import_stats_gc(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    """Share a cache after the fact: push one build's records, or carry them as a file."""
    shared = tmp_path / "shared"
    a, b, c = (_teammate(tmp_path, name) for name in ("alice", "bob", "carol"))
    assert _build(llm_server, a)[0] == 20
    pushed = run_cli("cache", "push", str(a), "--remote-cache", str(shared))
    assert pushed.exit_code == 0, pushed.stderr
    assert f"{shared}: pushed 20, already there 0, failed 0" in pushed.stdout
    assert _build(llm_server, b, "--remote-cache", str(shared))[0] == 0

    dave = _teammate(tmp_path, "dave")  # a fresh checkout: explain sees what the remote has
    explained = run_cli("explain", str(dave), "--remote-cache", str(shared))
    assert explained.exit_code == 0, explained.stderr
    assert "20 nodes: 20 cached (0 local, 20 remote), 0 to run" in explained.stdout

    archive = tmp_path / "qa.synthc.gz"
    exported = run_cli("cache", "export", str(archive), "-c", str(a))
    assert exported.exit_code == 0, exported.stderr
    assert "exported 20 records" in exported.stdout
    imported = run_cli("cache", "import", str(archive), "-c", str(c))
    assert "imported 20 records; 0 already cached, 0 refused" in imported.stdout
    assert _build(llm_server, c)[0] == 0

    shown = run_cli("cache", "stats", "-c", str(b))
    assert "20 records" in shown.stdout
    assert f"{shared}: 20 hits of 20 lookups (100%)" in shown.stdout
    collected = run_cli("cache", "gc", "-c", str(c), "--older-than", "0s")
    assert "removed 20 records" in collected.stdout
    assert _build(llm_server, c)[0] == 20


def test_cache_serve_command(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    """`synthc cache serve` as a team would run it: its own process, a write token for the
    team and a read-only one for CI, from a token file."""
    reader = "ci-read-only-5a1e"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# the team\nwrite {TOKEN}\n# CI and laptops\nread {reader}\n")
    command = [sys.executable, "-m", "synthc", "cache", "serve", str(tmp_path / "srv")]
    command += ["--port", "0", "--token-file", str(tokens)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHC_REMOTE_CACHE")}
    sent: dict[str, int] = {}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "serving" in line, line
        url = line.split(" on ")[1].split()[0]
        for name, token in (("alice", TOKEN), ("bob", reader), ("carol", reader)):
            os.environ["SYNTHC_REMOTE_CACHE_TOKEN"] = token
            try:
                teammate = _teammate(tmp_path, name)
                more = ("--num_samples", "12") if name == "carol" else ()
                sent[name] = _build(llm_server, teammate, "--remote-cache", url, *more)[0]
            finally:
                del os.environ["SYNTHC_REMOTE_CACHE_TOKEN"]
    finally:
        process.terminate()
        _, log = process.communicate(timeout=10)
    # alice wrote 20 records; bob read them all; carol read them, made 4 more, wrote none
    assert sent == {"alice": 20, "bob": 0, "carol": 4}
    assert len(list((tmp_path / "srv" / NAMESPACE).iterdir())) == 20
    assert "hit" in log and "stored" in log and "a read-only token" in log
    assert TOKEN not in log and reader not in log


def test_explain_says_which_tier_serves_the_hits(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    a, b = _teammate(tmp_path, "alice"), _teammate(tmp_path, "bob")
    assert _build(llm_server, a, "--remote-cache", str(shared))[0] == 20
    url = ["--inference_config.remote_params.api_url", llm_server.url("/v1/chat/completions")]
    first = run_cli("explain", str(b), "--remote-cache", str(shared), "--format", "json", *url)
    assert first.exit_code == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["totals"]["cached"] == 20 and sum(data["remote_hits"].values()) == 20
    again = run_cli("explain", str(b), "--remote-cache", str(shared), *url)
    assert "20 nodes: 20 cached, 0 to run" in again.stdout  # explain copied them to local
    assert llm_server.count == 20


DELAY = 0.1  # seconds the proxy adds to every request to the remote


def test_cold_build_from_a_slow_remote_overlaps_its_lookups(
    llm_server: FakeLLMServer, tmp_path: Path
) -> None:
    """A remote 100 ms away: 200 nodes looked up one at a time would take 20 s."""
    a, b, c = (_teammate(tmp_path, name) for name in ("alice", "bob", "carol"))
    more = ("--num_samples", "100")
    nodes = 200
    with CacheServer(tmp_path / "remote", None) as cache, SlowProxy(cache.url, DELAY) as slow:
        assert _build(llm_server, a, "--remote-cache", cache.url, *more)[0] == nodes

        sent, summary = _build(llm_server, b, "--remote-cache", slow.url, *more)
        assert sent == 0
        assert summary.startswith(f"{nodes} nodes: {nodes} cached (0 local, {nodes} remote)")
        assert slow.count == nodes  # one GET per node, none repeated
        assert slow.max_concurrency >= 8, "the lookups did not overlap"  # up to 32 at once

        with SlowProxy(cache.url, DELAY) as again:  # its own counts
            explained = run_cli("explain", str(c), "--remote-cache", again.url, *more)
        assert again.max_concurrency >= 8, "explain's lookups did not overlap"
        assert explained.exit_code == 0, explained.stderr
        assert f"{nodes} nodes: {nodes} cached (0 local, {nodes} remote), 0 to run" in (
            explained.stdout
        )

    shown = run_cli("cache", "stats", "-c", str(b))
    assert f"local: 0 hits of {nodes} lookups" in shown.stdout
    assert f"{slow.url}: {nodes} hits of {nodes} lookups (100%)" in shown.stdout
    remote = sorted((tmp_path / "remote" / NAMESPACE).iterdir())
    assert len(remote) == nodes
    for home in (b, c):  # every record is now in the teammate's own cache
        local = LocalStore(home.parent / ".synthc" / "cache")
        try:
            assert all(local.get(f.name) == Record.from_bytes(f.read_bytes()) for f in remote)
        finally:
            local.close()
    assert _build(llm_server, b, *more)[0] == 0  # and no remote is needed any more


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give --token (or SYNTHC_REMOTE_CACHE_TOKEN), --read-token, --token-file"),
        (("--no-token", "--read-token", "r"), "--no-token serves without tokens"),
        (("--token-file", "TOKENS"), "TOKENS:2: expected 'read TOKEN' or 'write TOKEN'"),
    ],
)
def test_cache_serve_refuses_unclear_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], says: str
) -> None:
    monkeypatch.delenv("SYNTHC_REMOTE_CACHE_TOKEN", raising=False)
    monkeypatch.delenv("SYNTHC_REMOTE_CACHE_READ_TOKEN", raising=False)
    tokens = tmp_path / "tokens"
    tokens.write_text("write ok-token\nowner oops\n")
    args = tuple(str(tokens) if a == "TOKENS" else a for a in args)
    result = run_cli("cache", "serve", str(tmp_path / "srv"), "--port", "0", *args)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert says.replace("TOKENS", str(tokens)) in " ".join(result.stderr.split())
    assert "ok-token" not in result.stderr and not (tmp_path / "srv").exists()
