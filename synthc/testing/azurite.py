"""A real Azure Blob Storage server on 127.0.0.1 for tests: Azurite (Microsoft's emulator,
``npm install azurite``) in a child process.

    with LocalAzurite(tmp_path / "blobs") as azure:
        azure.make_container("team-cache")
        os.environ.update(azure.env())        # what an Azure client reads to reach it
        ... synthc build qa.yaml --remote-cache az://team-cache/synthc

The ``azurite-blob`` command is found in ``SYNTHC_AZURITE`` (its path), on PATH, or
where ``.ci/run`` installs it. The emulator's account and key are the well-known
development ones (``devstoreaccount1``), published with Azurite.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import http.client
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from synthc.testing._local import Stoppable

ENV = "SYNTHC_AZURITE"
CI_COPY = (
    Path.home() / ".cache" / "synthc-ci" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
)
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_command() -> str | None:
    """Where ``azurite-blob`` is, or None."""
    found = os.environ.get(ENV) or shutil.which("azurite-blob")
    if found:
        return found
    return str(CI_COPY) if CI_COPY.exists() else None


class LocalAzurite(Stoppable):
    """Azurite's blob service on a free loopback port, keeping its data in ``root``."""

    def __init__(self, root: Path) -> None:
        command = azurite_command()
        if command is None:
            raise RuntimeError(f"azurite-blob is not installed (npm install azurite; or {ENV})")
        self.command, self.root = command, root
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalAzurite:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [self.command, "--blobHost", "127.0.0.1", "--blobPort", str(self.port)]
        argv += ["--location", str(self.root), "--silent", "--skipApiVersionCheck", "--loose"]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read() if self._process.stderr else b""
                raise RuntimeError(f"azurite exited with {self._process.returncode}: {error!r}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("azurite did not start listening within 30 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment an Azure client (obstore) reads to use this emulator."""
        return {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": self.url}

    def make_container(self, name: str) -> None:
        status, body = self.request("PUT", f"/{name}", "restype=container")
        if status != 201:
            raise RuntimeError(f"cannot create container {name!r}: HTTP {status} {body[:200]!r}")

    def request(self, method: str, path: str, query: str = "") -> tuple[int, bytes]:
        """One request signed with the emulator's account key (Shared Key): ``path`` is
        ``/container[/blob]``, ``query`` its parameters (``restype=container``)."""
        date = email.utils.formatdate(usegmt=True)
        version = "2021-08-06"
        resource = f"/{ACCOUNT}/{ACCOUNT}{path}"
        if query:
            resource += "".join(
                f"\n{k}:{v}" for k, v in sorted(p.split("=") for p in query.split("&"))
            )
        signed = (
            f"{method}\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n" + resource
        )
        digest = hmac.new(base64.b64decode(KEY), signed.encode(), hashlib.sha256).digest()
        headers = {
            "x-ms-date": date,
            "x-ms-version": version,
            "Content-Length": "0",
            "Authorization": f"SharedKey {ACCOUNT}:{base64.b64encode(digest).decode()}",
        }
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            target = f"/{ACCOUNT}{path}" + (f"?{query}" if query else "")
            connection.request(method, target, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # it waits for open connections to close: not for long
            try:
                self._process.wait(3)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None
