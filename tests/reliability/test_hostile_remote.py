"""A hostile cache remote cannot exhaust a build's memory: record reads are bounded.

The remote answers every GET with an endless body (an HTTP server streaming
megabytes until the client hangs up), or a shared directory holds a huge file
under a key. The build warns, completes from the LLM, and its peak RSS stays
far below what reading the body whole would take.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from synthc.cache.appserver import AppServer
from synthc.cache.lookups import LOOKUPS
from synthc.cache.remote import MAX_RECORD_BYTES, NAMESPACE, DirRemote, RemoteError
from synthc.testing.server import FakeLLMServer
from tests.reliability.helpers import synthc_command, write_config

CHUNK = b"x" * (1 << 20)


class EndlessRemote(AppServer):
    """GET: an endless chunked body; HEAD: a miss; PUT: accepted. Counts the bytes it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.gets = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._endless)
        app.router.add_route("PUT", "/{tail:.*}", self._stored)
        return app

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        self.gets += 1
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            while True:  # until the client goes away
                await response.write(CHUNK)
                self.sent += len(CHUNK)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def _stored(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=201)


def _peak_rss_of(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``command``; its result and its peak RSS in bytes (Linux reports KiB)."""
    script = (
        "import resource, subprocess, sys; "
        "done = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(done.returncode)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, int(done.stderr.strip().splitlines()[-1]) * 1024


def test_an_endless_remote_body_is_a_warning_and_memory_stays_bounded(tmp_path: Path) -> None:
    with FakeLLMServer() as llm, EndlessRemote() as remote:
        write_config(tmp_path / "big.yaml", llm, samples=20)
        url = f"http://127.0.0.1:{remote.port}"
        done, peak = _peak_rss_of(
            synthc_command("build", "big.yaml", "-q", "--remote-cache", url), tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert llm.count == 40  # every node came from the LLM
        assert remote.gets >= 1
    assert "sent more than" in done.stderr and "refused" in done.stderr
    assert "Traceback" not in done.stderr
    # Reading whole would hold everything the server streams, without end. Each lookup
    # thread stops after one record's worth: a build's own memory plus that, at most.
    assert peak < 200 * 2**20 + LOOKUPS * MAX_RECORD_BYTES, peak


def test_a_huge_file_in_a_shared_directory_remote_is_refused_unread(tmp_path: Path) -> None:
    key = "0" * 32
    root = tmp_path / "shared"
    (root / NAMESPACE).mkdir(parents=True)
    with (root / NAMESPACE / key).open("wb") as huge:  # sparse: huge, costs no disk
        huge.truncate(8 * MAX_RECORD_BYTES)
    with pytest.raises(RemoteError, match="more than"):
        DirRemote(root).get(key)
