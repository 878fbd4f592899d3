"""Answer huggingface_hub's create-repo and upload requests over real HTTP, offline; keep the files.

``FakeHub`` is an aiohttp server on 127.0.0.1 standing in for the Hugging Face Hub's
endpoints that ``HfApi.create_repo``, ``upload_file`` and ``upload_folder`` call:

    with FakeHub() as hub:
        api = HfApi(endpoint=hub.url, token="hf_test")
        api.create_repo("user/data", repo_type="dataset", exist_ok=True)
        api.upload_folder(folder_path=out, repo_id="user/data", repo_type="dataset")
        assert hub.files("user/data") == {"README.md": b"...", ...}
        assert hub.tokens == {"hf_test"}

Served (``{repo}`` is ``[datasets/|spaces/]owner/name``): ``POST /api/repos/create``,
``/api/validate-yaml``, ``/api/{repo}/preupload/{rev}`` ("lfs" for a binary file, a
``.parquet``-like name or over 10 MB; with the stored oid, so unchanged files are left
out) and ``/api/{repo}/commit/{rev}`` (NDJSON); the LFS batch API ``POST
/{repo}.git/info/lfs/objects/batch`` (always "basic": a ``PUT`` to this server, without
a token like a presigned URL, whose body must hash to the oid); ``GET /api/{repo}``,
``[/revision/{rev}]``, ``/tree/{rev}[/{path}]`` and ``/{repo}/resolve/{rev}/{path}``.
That also serves ``datasets``' ``push_to_hub`` and ``load_dataset``. A revision is
``main`` or its head commit; a new repo is empty (no ``.gitattributes``).

Xet is never offered: huggingface_hub 0.x asks in the LFS batch and gets "basic", but
1.x and later use xet whenever ``hf_xet`` is importable, so they need
``HF_HUB_DISABLE_XET=1`` (:attr:`FakeHub.env`). It and ``HF_ENDPOINT`` are read when
huggingface_hub is imported: set them before, or in-process pass ``endpoint=hub.url``
and set ``huggingface_hub.constants.HF_HUB_DISABLE_XET`` (not ``.ENDPOINT`` alone:
download URLs come from a template made at import, rewritten only from its endpoint).

Every route but the upload wants ``Authorization: Bearer ...`` (else the Hub's 401).
Requests are recorded (:attr:`FakeHub.requests`); one to a route not served gets a
JSON 404 and is listed in :attr:`FakeHub.unexpected` too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web

from synthc.cache.appserver import AppServer

LFS_SUFFIXES = (".parquet", ".arrow", ".bin", ".safetensors", ".pt", ".npy", ".zip", ".gz", ".zst")
REGULAR_MAX_BYTES = 10 * 1024 * 1024
# Page URLs in answers name the Hub, as the real ones do; clients map them onto their endpoint.
HUB_URL = "https://huggingface.co"
_REPO = "/api/{kind:models|datasets|spaces}/{ns}/{name}"
_OPEN_ROUTES = {"lfs_upload", "unknown"}  # no token needed: presigned upload, and the 404 catch-all


@dataclass(frozen=True)
class Repo:
    """A repo as ``create_repo`` made it."""

    id: str
    type: str  # "model", "dataset" or "space"
    private: bool


@dataclass(frozen=True)
class Commit:
    """A commit as the commit endpoint took it (``oid`` is what the client was answered)."""

    repo: str
    oid: str
    message: str
    description: str
    operations: tuple[tuple[str, str], ...]  # (NDJSON key, path): ("lfsFile", "data/x.parquet")


@dataclass(frozen=True)
class HubRequest:
    """One request as the server saw it."""

    method: str
    path: str
    token: str | None  # the bearer token sent, if any
    status: int


@dataclass
class _Store:
    repo: Repo
    files: dict[str, bytes] = field(default_factory=dict)
    lfs: set[str] = field(default_factory=set)  # paths stored through LFS
    head: str = "0" * 40


def _git_blob_oid(data: bytes) -> str:
    """The git blob id of ``data``: what the Hub and huggingface_hub call a regular file's oid."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _compared_oid(data: bytes, lfs: bool) -> str:
    """The oid huggingface_hub compares a local file with: sha256 for LFS, else the git blob id."""
    return hashlib.sha256(data).hexdigest() if lfs else _git_blob_oid(data)


def _web_url(repo: Repo) -> str:
    """The repo's page on the Hub (huggingface_hub 0.x parses commit URLs against HF_ENDPOINT)."""
    return f"{HUB_URL}/{'' if repo.type == 'model' else repo.type + 's/'}{repo.id}"


class _Refusal(Exception):
    """An error answer, as the Hub words it: JSON ``{"error": ...}`` and ``X-Error-*`` headers."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def response(self) -> web.Response:
        headers = {"X-Error-Message": self.message}
        if self.code:
            headers["X-Error-Code"] = self.code
        return web.json_response({"error": self.message}, status=self.status, headers=headers)


class FakeHub(AppServer):
    """A local Hugging Face Hub; in a background thread (``with``) or in the caller's loop."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self._lock = threading.Lock()  # guards what the test's thread reads; the loop alone writes
        self._repos: dict[tuple[str, str], _Store] = {}
        self._blobs: dict[str, bytes] = {}  # LFS objects by sha256
        self._commits: list[Commit] = []
        self._requests: list[HubRequest] = []
        self._unexpected: list[str] = []

    @property
    def url(self) -> str:
        """The endpoint: ``HfApi(endpoint=hub.url)`` or ``HF_ENDPOINT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client process: this endpoint, LFS rather than xet, no telemetry."""
        return {"HF_ENDPOINT": self.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}

    def files(self, repo_id: str, repo_type: str = "dataset") -> dict[str, bytes]:
        """The files on ``main`` of a repo, by path (a KeyError for a repo never created)."""
        with self._lock:
            return dict(self._repos[repo_type, repo_id].files)

    @property
    def repos(self) -> list[Repo]:
        with self._lock:
            return [store.repo for store in self._repos.values()]

    @property
    def commits(self) -> list[Commit]:
        with self._lock:
            return list(self._commits)

    @property
    def requests(self) -> list[HubRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def unexpected(self) -> list[str]:
        """``"METHOD /path"`` of each request to a route this stand-in does not serve."""
        with self._lock:
            return list(self._unexpected)

    @property
    def tokens(self) -> set[str]:
        """Every bearer token that was sent."""
        return {r.token for r in self.requests if r.token is not None}

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._requests)

    # --- serving -------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate], client_max_size=1 << 30)
        app.router.add_post("/api/repos/create", self._create)
        app.router.add_post("/api/validate-yaml", self._validate_yaml)
        app.router.add_get(_REPO, self._info)
        app.router.add_get(_REPO + "/revision/{rev}", self._info)
        app.router.add_get(_REPO + "/tree/{rev}", self._tree)
        app.router.add_get(_REPO + "/tree/{rev}/{path:.+}", self._tree)
        app.router.add_post(_REPO + "/preupload/{rev}", self._preupload)
        app.router.add_post(_REPO + "/commit/{rev}", self._commit)
        batch = "/{ns}/{name}.git/info/lfs/objects/batch"
        app.router.add_post(batch, self._batch)
        app.router.add_post("/{kind:datasets|spaces}" + batch, self._batch)
        app.router.add_put("/lfs-upload/{oid}", self._upload, name="lfs_upload")
        resolve = "/{ns}/{name}/resolve/{rev}/{path:.+}"
        app.router.add_get(resolve, self._resolve)  # and HEAD
        app.router.add_get("/{kind:datasets|spaces}" + resolve, self._resolve)
        app.router.add_route("*", "/{tail:.*}", self._unknown, name="unknown")
        return app

    @web.middleware
    async def _gate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        response: web.StreamResponse
        try:
            if not token and request.match_info.route.name not in _OPEN_ROUTES:
                raise _Refusal(401, "Invalid credentials in Authorization header")
            response = await handler(request)
        except _Refusal as refusal:
            response = refusal.response()
        except (KeyError, TypeError, ValueError) as exc:  # a body the Hub would refuse
            response = _Refusal(400, f"malformed request: {exc!r}").response()
        with self._lock:
            self._requests.append(HubRequest(request.method, request.path, token, response.status))
        return response

    async def _unknown(self, request: web.Request) -> web.Response:
        call = f"{request.method} {request.path}"
        with self._lock:
            self._unexpected.append(call)
        hint = " (it speaks LFS only: set HF_HUB_DISABLE_XET=1)" if "xet" in call else ""
        raise _Refusal(404, f"FakeHub has no route for {call}{hint}")

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("organization"):
            raise _Refusal(400, "FakeHub needs a namespace: create 'owner/name'")
        kind = body.get("type") or "model"
        private = bool(body.get("private")) or body.get("visibility") == "private"
        repo = Repo(f"{body['organization']}/{body['name']}", kind, private)
        url = _web_url(repo)
        with self._lock:
            if (kind, repo.id) in self._repos:
                conflict = {"error": "You already created this repo", "url": url}
                return web.json_response(conflict, status=409)
            self._repos[kind, repo.id] = _Store(repo)
        return web.json_response({"url": url, "name": repo.id, "id": repo.id})

    async def _validate_yaml(self, request: web.Request) -> web.Response:
        content: str = (await request.json()).get("content", "")
        parts = content.split("---\n", 2) if content.startswith("---\n") else []
        try:
            meta = yaml.safe_load(parts[1]) if len(parts) == 3 else {}
            problem = None if isinstance(meta, dict | None) else "metadata must be a YAML mapping"
        except yaml.YAMLError as exc:
            problem = str(exc)
        errors = [{"message": problem}] if problem else []
        return web.json_response({"errors": errors, "warnings": []}, status=400 if errors else 200)

    def _store(self, request: web.Request) -> _Store:
        """The repo a request names; the Hub's 404 if none (or the revision is not main/head)."""
        kind = request.match_info.get("kind", "models")[:-1]
        repo_id = f"{request.match_info['ns']}/{request.match_info['name']}"
        store = self._repos.get((kind, repo_id))
        if store is None:
            raise _Refusal(404, f"Repository Not Found: {kind} {repo_id}", "RepoNotFound")
        if request.match_info.get("rev", "main") not in ("main", store.head):
            raise _Refusal(404, f"Invalid rev id: {request.match_info['rev']}", "RevisionNotFound")
        return store

    async def _info(self, request: web.Request) -> web.Response:
        store = self._store(request)
        repo = store.repo
        siblings = [{"rfilename": path} for path in sorted(store.files)]
        info = {"id": repo.id, "author": repo.id.split("/")[0], "sha": store.head}
        return web.json_response(info | {"private": repo.private, "siblings": siblings})

    async def _tree(self, request: web.Request) -> web.Response:
        store = self._store(request)
        folder = request.match_info.get("path", "").strip("/")
        prefix = folder + "/" if folder else ""
        recursive = request.query.get("recursive", "").lower() in ("1", "true")
        entries: dict[str, dict[str, Any]] = {}
        for path, data in sorted(store.files.items()):
            rest = path.removeprefix(prefix)
            if rest == path and prefix:
                continue
            if not recursive and "/" in rest:
                child = prefix + rest.split("/")[0]
                entries[child] = {"type": "directory", "path": child, "oid": "0" * 40, "size": 0}
                continue
            entry = {"type": "file", "path": path, "size": len(data), "oid": _git_blob_oid(data)}
            if path in store.lfs:
                sha256 = hashlib.sha256(data).hexdigest()
                entry["lfs"] = {"oid": sha256, "size": len(data), "pointerSize": 134}
            entries[path] = entry
        if prefix and not entries:
            raise _Refusal(404, f"{folder} does not exist on main", "EntryNotFound")
        return web.json_response(list(entries.values()))

    async def _preupload(self, request: web.Request) -> web.Response:
        store = self._store(request)
        answers = []
        for item in (await request.json())["files"]:
            path, size, sample = item["path"], item["size"], base64.b64decode(item["sample"])
            lfs = path.endswith(LFS_SUFFIXES) or b"\0" in sample or size > REGULAR_MAX_BYTES
            old = store.files.get(path)  # its oid lets the client leave an unchanged file out
            oid = None if old is None else _compared_oid(old, lfs)
            mode = "lfs" if lfs else "regular"
            answers.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return web.json_response({"files": answers})

    async def _batch(self, request: web.Request) -> web.Response:
        self._store(request)  # the repo must exist
        objects = []
        for item in json.loads(await request.read())["objects"]:
            answer = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in self._blobs:  # else the client has nothing to send
                href = f"{self.url}/lfs-upload/{item['oid']}"
                answer["actions"] = {"upload": {"href": href, "header": {}}}
            objects.append(answer)
        body = {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}
        return web.json_response(body, content_type="application/vnd.git-lfs+json")

    async def _upload(self, request: web.Request) -> web.Response:
        oid, data = request.match_info["oid"], await request.read()
        if hashlib.sha256(data).hexdigest() != oid:
            raise _Refusal(400, f"uploaded body does not hash to its oid {oid}")
        self._blobs[oid] = data
        return web.Response(status=200)

    async def _resolve(self, request: web.Request) -> web.Response:
        store = self._store(request)
        path = request.match_info["path"]
        if path not in store.files:
            raise _Refusal(404, f"{path} does not exist on main", "EntryNotFound")
        data = store.files[path]
        etag = _compared_oid(data, path in store.lfs)
        return web.Response(body=data, headers={"ETag": f'"{etag}"', "X-Repo-Commit": store.head})

    async def _commit(self, request: web.Request) -> web.Response:
        store = self._store(request)
        if "create_pr" in request.query:
            raise _Refusal(400, "FakeHub does not open pull requests")
        lines = [json.loads(line) for line in (await request.read()).splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _Refusal(400, "a commit starts with a header line")
        header = lines[0]["value"]
        if header.get("parentCommit") not in (None, store.head):
            raise _Refusal(412, f"parent commit is not the head of main ({store.head})")
        with self._lock:
            files, lfs = dict(store.files), set(store.lfs)
            for line in lines[1:]:
                problem = _apply(files, lfs, self._blobs, line["key"], line["value"])
                if problem:
                    raise _Refusal(400, problem)
            ops = tuple((line["key"], line["value"]["path"]) for line in lines[1:])
            tree = sorted((path, _git_blob_oid(data)) for path, data in files.items())
            state = json.dumps([store.head, header["summary"], tree]).encode()
            oid = hashlib.sha1(state).hexdigest()
            store.files, store.lfs, store.head = files, lfs, oid
            message, description = header["summary"], header.get("description", "")
            self._commits.append(Commit(store.repo.id, oid, message, description, ops))
        url = f"{_web_url(store.repo)}/commit/{oid}"
        return web.json_response({"success": True, "commitOid": oid, "commitUrl": url})

    async def __aenter__(self) -> FakeHub:
        await self.start_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()


def _apply(
    files: dict[str, bytes], lfs: set[str], blobs: dict[str, bytes], key: str, value: dict[str, Any]
) -> str | None:
    """Apply one NDJSON commit operation to ``files``; the Hub's complaint, or None."""
    path: str = value["path"]
    if key == "file":
        files[path] = base64.b64decode(value["content"])
        lfs.discard(path)
    elif key == "lfsFile":
        if value["oid"] not in blobs:
            return f"{path}: LFS object {value['oid']} was never uploaded"
        files[path] = blobs[value["oid"]]
        lfs.add(path)
    elif key == "deletedFile":
        if files.pop(path, None) is None:
            return f"{path}: A file with this name doesn't exist"
        lfs.discard(path)
    elif key == "deletedFolder":
        for name in [p for p in files if p.startswith(path.rstrip("/") + "/")]:
            del files[name]
            lfs.discard(name)
    else:
        return f"FakeHub does not support the commit operation {key!r}"
    return None
