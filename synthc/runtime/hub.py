"""Publish a folder as a Hugging Face Hub dataset: a folder and a repo id in, the commit out.

``huggingface_hub`` does the talking: the dataset repo is created when missing,
then the folder goes up as one commit (small text inline, the rest through LFS).
The token is the caller's or the one ``huggingface_hub`` finds (``HF_TOKEN``, or
the file ``hf auth login`` wrote); synthc passes it on and never writes it
anywhere. ``HF_ENDPOINT`` (or ``endpoint``) points at another Hub: a mirror, or a
test's stand-in on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthc.core.errors import SynthError


@dataclass(frozen=True)
class Pushed:
    repo_id: str
    url: str  # the dataset's page
    commit: str  # the commit's id
    private: bool | None  # as asked; None: the Hub's default (or the repo as it was)


def push_folder(
    folder: Path,
    repo_id: str,
    *,
    message: str,
    private: bool | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    revision: str | None = None,
) -> Pushed:
    """Upload ``folder`` to the dataset repo ``repo_id`` (created if missing) as one
    commit; a :class:`SynthError` saying what the Hub answered when it refuses."""
    hub, errors, constants = _hub()
    token = token or hub.get_token()
    if not token:
        raise SynthError(
            "no Hugging Face token: set HF_TOKEN to a token with write access "
            "(or run `hf auth login`); synthc passes it to the Hub and stores it nowhere"
        )
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    api = hub.HfApi(endpoint=endpoint, token=token)
    http_error = errors.HfHubHTTPError.__bases__  # the HTTP library's errors, any version
    try:
        repo = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="dataset",
            commit_message=message,
            revision=revision,
        )
    except errors.HfHubHTTPError as exc:
        raise SynthError(f"the Hub refused the push to {repo_id}: {_reason(exc)}") from None
    except ValueError as exc:  # huggingface_hub's validation: a malformed repo id
        raise SynthError(f"cannot push to {repo_id!r}: {exc}") from None
    except (*http_error, OSError) as exc:
        where = endpoint or constants.ENDPOINT
        raise SynthError(f"cannot reach the Hub at {where}: {exc}") from None
    return Pushed(repo.repo_id, str(repo), commit.oid, private)


def _hub() -> tuple[Any, Any, Any]:
    """huggingface_hub, its errors and its constants (submodules it loads lazily)."""
    try:
        return tuple(
            importlib.import_module(name)
            for name in ("huggingface_hub", "huggingface_hub.errors", "huggingface_hub.constants")
        )  # type: ignore[return-value]
    except ImportError:
        raise SynthError("synthc push needs huggingface_hub: pip install 'synthc[data]'") from None


def _reason(exc: Exception) -> str:
    """The Hub's answer in a line: status and its message, never the request's headers."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    server = getattr(exc, "server_message", None) or str(exc).splitlines()[0]
    hint = {401: " (is HF_TOKEN a valid token?)", 403: " (does the token have write access?)"}
    return f"HTTP {status}: {server}{hint.get(status or 0, '')}" if status else server
