"""Open a remote tier: a URL in, the Remote for its kind out.

``http(s)://`` is :class:`~synthc.cache.remote.HTTPRemote`, ``s3:// gs:// az://``
:class:`~synthc.cache.objects.ObjectRemote` (obstore is imported only when one is
used), ``file://`` or a path :class:`~synthc.cache.remote.DirRemote`.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from synthc.cache.objects import SCHEMES, ObjectRemote
from synthc.cache.remote import (
    DEFAULT_TIMEOUT,
    TOKEN_ENV,
    DirRemote,
    HTTPRemote,
    Remote,
    redact,
    redact_text,
)
from synthc.core.errors import CacheError


def open_remote(url: str, timeout: float = DEFAULT_TIMEOUT) -> Remote:
    """The remote tier ``url`` names: http(s)://, s3://, gs://, az://, file:// or a path."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:  # "Invalid IPv6 URL"
        raise CacheError(f"remote cache {redact_text(url)!r} is not a URL: {exc}") from None
    if scheme in ("http", "https"):
        return HTTPRemote(url, os.environ.get(TOKEN_ENV) or None, timeout)
    if scheme == "file":
        return DirRemote(Path(urlsplit(url).path))
    if scheme in SCHEMES:
        return ObjectRemote(url, timeout)
    if "://" in url:
        raise CacheError(
            f"unsupported remote cache {redact(url)!r}: use http://, https://, s3://, gs://, "
            "az://, file:// or a path"
        )
    return DirRemote(Path(url).expanduser())
