"""Remote cache tiers: a URL in, a Remote that GETs, HEADs and PUTs record bytes by key out.

Two kinds, both laid out as ``<base>/<namespace>/<key>`` so one directory can be
served by ``synthc cache serve``, by nginx with WebDAV PUT, or mounted as a
shared directory, interchangeably:

- ``http://`` and ``https://``: plain HTTP GET/HEAD/PUT with a bearer token
  from ``SYNTHC_REMOTE_CACHE_TOKEN`` (never logged, never in a URL).
- ``file://`` or a plain path: a shared directory (NFS, SMB...). Writes go to a
  temporary file that is renamed into place, so readers never see half a
  record; there is no SQLite on the shared side.
- ``s3://``, ``gs://``, ``az://``: a bucket or container (:mod:`synthc.cache.objects`).

Remotes move bytes only; checking what they return is the layered store's job.
A transport failure raises :class:`RemoteError`.
"""

from __future__ import annotations

import datetime
import http.client
import os
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

from synthc.core.errors import CacheError
from synthc.core.records import RECORD_VERSION

TOKEN_ENV = "SYNTHC_REMOTE_CACHE_TOKEN"
# A new record format gets a new namespace, so old clients never see it.
NAMESPACE = f"v{RECORD_VERSION}"
KEY_RE = re.compile(r"[0-9a-f]{32}")
DEFAULT_TIMEOUT = 10.0
MAX_RECORD_BYTES = 8 * 1024 * 1024  # a remote record larger than this is refused unread


class RemoteError(CacheError):
    """A remote tier could not be reached or refused a request."""


class ReadOnlyRemote(RemoteError):
    """The remote refused a write it lets this client read (a read-only token: HTTP 403)."""


@dataclass(frozen=True)
class Entry:
    """One record on a remote, as its listing shows it."""

    key: str
    size: int
    modified: datetime.datetime  # when it was written there (the remote's clock)


class Remote(Protocol):
    name: str  # for messages: the URL without credentials
    concurrency: int  # pushes worth running at once (more threads only contend for the GIL)

    def get(self, key: str) -> bytes | None: ...

    def contains(self, key: str) -> bool: ...

    def put(self, key: str, data: bytes) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Listing(Protocol):
    """A remote whose records can be listed and deleted (a directory, a bucket), for
    ``synthc cache stats --remote`` and ``gc --remote``."""

    name: str

    def entries(self) -> Iterator[Entry]: ...

    def delete(self, keys: list[str]) -> None: ...


def check_key(key: str) -> str:
    """``key`` if it is a node key (32 hex digits); anything else could name another file."""
    if not KEY_RE.fullmatch(key):
        raise ValueError(f"not a cache key: {key!r}")
    return key


def env_setting(name: str, default: float, *, minimum: float, whole: bool = False) -> float:
    """The number in environment variable ``name`` (``default`` when unset); a value that
    is not a number of at least ``minimum`` (a whole one, with ``whole``) is a CacheError."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or not value >= minimum or value == float("inf"):
        kind = "a whole number" if whole else "a number"
        raise CacheError(f"{name}={text!r}: expected {kind}, at least {minimum:g}") from None
    return value


def redact_text(text: str) -> str:
    """``text`` (a URL that may not parse) with anything between ``//`` and ``@`` hidden."""
    return re.sub(r"//[^/@]*@", "//***@", text)


def redact(url: str) -> str:
    """``url`` without a user or password, fit to print."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a malformed port
    except ValueError:
        return redact_text(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class DirRemote:
    """Records as files in a shared directory: ``<root>/<namespace>/<key>``."""

    def __init__(self, root: Path):
        self.root = root
        self.name = str(root)
        self.concurrency = 1  # a file write is a quick system call

    def path(self, key: str) -> Path:
        return self.root / NAMESPACE / check_key(key)

    def get(self, key: str) -> bytes | None:
        try:
            with self.path(key).open("rb") as file:
                data = file.read(MAX_RECORD_BYTES + 1)  # not all of an endless file
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RemoteError(f"cannot read {self.name}: {exc}") from None
        if len(data) > MAX_RECORD_BYTES:
            raise _oversize(self.name, key)
        return data

    def contains(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, key: str, data: bytes) -> None:
        try:
            atomic_write(self.path(key), data)
        except OSError as exc:
            raise RemoteError(f"cannot write to {self.name}: {exc}") from None

    def entries(self) -> Iterator[Entry]:
        try:
            files = list(os.scandir(self.root / NAMESPACE))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise RemoteError(f"cannot list {self.name}: {exc}") from None
        for file in files:
            if KEY_RE.fullmatch(file.name) and file.is_file():
                info = file.stat()
                when = datetime.datetime.fromtimestamp(info.st_mtime, datetime.UTC)
                yield Entry(file.name, info.st_size, when)

    def delete(self, keys: list[str]) -> None:
        try:
            for key in keys:
                self.path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise RemoteError(f"cannot delete from {self.name}: {exc}") from None

    def close(self) -> None:
        pass


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``.

    Readers see the old file or the whole new one. No fsync: a record cut short
    by a crash fails the reader's check and is a miss, so durability is not
    worth a disk flush per record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".tmp-{path.name}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _oversize(name: str, key: str) -> RemoteError:
    return RemoteError(f"{name} sent more than {MAX_RECORD_BYTES:,} bytes for {key}: refused")


class HTTPRemote:
    """GET/HEAD/PUT ``<base>/<namespace>/<key>``; one keep-alive connection per thread."""

    def __init__(self, url: str, token: str | None, timeout: float = DEFAULT_TIMEOUT):
        parts = urlsplit(url)
        if not parts.hostname:
            raise CacheError(f"remote cache URL without a host: {redact(url)!r}")
        try:
            parts.port  # noqa: B018 - it raises for a port out of range or not a number
        except ValueError as exc:
            raise CacheError(f"remote cache {redact(url)!r}: {exc}") from None
        self.name = redact(url).rstrip("/")
        self.concurrency = 4  # overlap round trips
        self._https = parts.scheme.lower() == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._local = threading.local()

    def get(self, key: str) -> bytes | None:
        status, body = self._request("GET", key)
        if status == 200:
            return body
        if status == 404:
            return None
        raise self._refused("GET", status)

    def contains(self, key: str) -> bool:
        status, _ = self._request("HEAD", key)
        if status in (200, 404):
            return status == 200
        raise self._refused("HEAD", status)

    def put(self, key: str, data: bytes) -> None:
        status, _ = self._request("PUT", key, data)
        if status == 403:
            raise ReadOnlyRemote(f"{self.name} lets this token only read (HTTP 403 on PUT)")
        if status not in (200, 201, 204):
            raise self._refused("PUT", status)

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _refused(self, method: str, status: int) -> RemoteError:
        hint = f" (check {TOKEN_ENV})" if status in (401, 403) else ""
        return RemoteError(f"{self.name} answered {method} with HTTP {status}{hint}")

    def _request(self, method: str, key: str, body: bytes | None = None) -> tuple[int, bytes]:
        path = f"{self._base}/{NAMESPACE}/{quote(check_key(key))}"
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read(MAX_RECORD_BYTES + 1)  # not all of an endless body
                if len(data) > MAX_RECORD_BYTES:
                    self.close()  # the rest is never read: this connection is spent
                    raise _oversize(self.name, key)
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # a kept-alive connection the server has closed: retry once
                if attempt == 2:
                    raise RemoteError(f"{self.name} closed the connection") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise RemoteError(f"cannot reach {self.name}: {exc}") from None
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=self._timeout)
            self._local.connection = connection
        return connection
