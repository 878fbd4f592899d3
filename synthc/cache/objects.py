"""Object-store remotes: ``s3://``, ``gs://`` and ``az://`` URLs in, a Remote over a bucket out.

Records are objects at ``<prefix>/<namespace>/<key>`` of the bucket (or container),
the layout of every other remote tier. The client is obstore (Rust, one API for the
three clouds; docs/team-cache.md says why, with the measurements): it reads the
providers' usual environment variables and configuration (``AWS_ACCESS_KEY_ID``,
``AWS_REGION``, ``AWS_ENDPOINT_URL`` for MinIO, R2 or Ceph; ``GOOGLE_APPLICATION_CREDENTIALS``;
``AZURE_STORAGE_ACCOUNT_NAME``...), never the synthc config. It is an optional
install (``pip install 'synthc[s3]'``); without it such a URL is a CacheError that
says so.

A write never replaces a record that is there: it is a conditional put (``If-None-Match:
*``), and when an object is already at the key it is read back: a record of that key
stays, anything else (a forged or damaged object) is replaced only if it is still the
same object (``If-Match`` its ETag). Every request is bounded (``timeout`` seconds, two
quick retries), so a store that stops answering costs a warning, not a hung build.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from synthc.cache.remote import (
    DEFAULT_TIMEOUT,
    KEY_RE,
    MAX_RECORD_BYTES,
    NAMESPACE,
    Entry,
    RemoteError,
    check_key,
    redact,
)
from synthc.core.errors import CacheError
from synthc.core.records import is_record_of

SCHEMES = ("s3", "gs", "az")
INSTALL = "pip install 'synthc[s3]'"


def _obstore() -> Any:
    try:
        import obstore
        import obstore.store
    except ImportError:
        raise CacheError(
            f"an s3://, gs:// or az:// remote cache needs obstore: {INSTALL}"
        ) from None
    return obstore


class ObjectRemote:
    """Records as objects in a bucket, through obstore; every failure a RemoteError."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT):
        self.obstore = _obstore()
        self.name = redact(url)
        self.concurrency = 8  # pushes in flight: each one a round trip
        parts = urlsplit(url)
        if not parts.netloc:
            raise CacheError(
                f"remote cache {self.name!r}: name the bucket, e.g. s3://bucket/prefix"
            )
        retry = {
            "max_retries": 2,
            "retry_timeout": datetime.timedelta(seconds=timeout),
            "backoff": {
                "init_backoff": datetime.timedelta(milliseconds=50),
                "max_backoff": datetime.timedelta(milliseconds=500),
                "base": 2,
            },
        }
        options: dict[str, Any] = {
            "timeout": f"{timeout:g}s",
            "connect_timeout": f"{min(timeout, 5):g}s",
        }
        if _plain_http_endpoint():
            options["allow_http"] = True
        try:
            self.store = self.obstore.store.from_url(
                url, client_options=options, retry_config=retry
            )
        except Exception as exc:  # obstore's configuration errors: a bad URL or setting
            raise CacheError(f"remote cache {self.name!r}: {exc}") from None
        self._checked = False
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        self._check_bucket()
        try:
            result = self.obstore.get(self.store, _path(key))
            if result.meta["size"] > MAX_RECORD_BYTES:
                raise RemoteError(
                    f"{self.name}: record {key} is {result.meta['size']} bytes, over "
                    f"{MAX_RECORD_BYTES}: refused unread"
                )
            return bytes(result.bytes())
        except FileNotFoundError:
            return None
        except self.obstore.exceptions.BaseError as exc:
            raise self._failed("GET", exc) from None

    def contains(self, key: str) -> bool:
        self._check_bucket()
        try:
            self.obstore.head(self.store, _path(key))
        except FileNotFoundError:
            return False
        except self.obstore.exceptions.BaseError as exc:
            raise self._failed("HEAD", exc) from None
        return True

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` unless a record of that key is there already."""
        self._check_bucket()
        exceptions = self.obstore.exceptions
        path = _path(key)
        try:
            self.obstore.put(self.store, path, data, mode="create")
            return
        except exceptions.AlreadyExistsError:
            pass
        except exceptions.BaseError as exc:
            raise self._failed("PUT", exc) from None
        try:
            found = self.obstore.get(self.store, path)
            tag = found.meta["e_tag"]
            there = bytes(found.bytes())
            if is_record_of(there, key):
                return  # the same answer (or another valid one): it stays
            self.obstore.put(self.store, path, data, mode={"e_tag": tag})
        except (FileNotFoundError, exceptions.PreconditionError):
            return  # deleted or replaced meanwhile: whoever did it, the next reader checks it
        except exceptions.BaseError as exc:
            raise self._failed("PUT", exc) from None

    def entries(self) -> Iterator[Entry]:
        """Every record in the store (its namespace), as the listing gives them."""
        try:
            for chunk in self.obstore.list(self.store, prefix=NAMESPACE, chunk_size=1000):
                for meta in chunk:
                    key = str(meta["path"]).rsplit("/", 1)[-1]
                    if KEY_RE.fullmatch(key):
                        yield Entry(key, int(meta["size"]), meta["last_modified"])
        except self.obstore.exceptions.BaseError as exc:
            raise self._failed("LIST", exc) from None

    def delete(self, keys: list[str]) -> None:
        try:
            self.obstore.delete(self.store, [_path(k) for k in keys])
        except self.obstore.exceptions.BaseError as exc:
            raise self._failed("DELETE", exc) from None

    def close(self) -> None:
        pass  # one client for every thread; its connections close with it

    def _check_bucket(self) -> None:
        """A missing bucket answers like a missing key: list it once, so that a wrong
        bucket name is an error (a warning, a build without the remote), not all misses."""
        if self._checked:
            return
        with self._lock:
            if self._checked:
                return
            try:
                next(iter(self.obstore.list(self.store, prefix=NAMESPACE, chunk_size=1)), None)
            except (FileNotFoundError, self.obstore.exceptions.BaseError) as exc:
                raise self._failed("LIST", exc) from None
            self._checked = True

    def _failed(self, method: str, exc: BaseException) -> RemoteError:
        text = " ".join(str(exc).split())
        if len(text) > 300:
            text = text[:300] + "..."
        return RemoteError(f"{self.name}: {method} failed: {type(exc).__name__}: {text}")


def _path(key: str) -> str:
    return f"{NAMESPACE}/{check_key(key)}"


def _plain_http_endpoint() -> bool:
    """Whether the S3 endpoint named in the environment is plain http (a local MinIO):
    obstore refuses it unless told."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    return endpoint.lower().startswith("http://")
