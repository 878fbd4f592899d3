"""OpenAI's Batch API and Anthropic's Message Batches, faithfully enough for the real SDKs.

:class:`BatchDesk` is the batch side of :class:`~synthc.testing.server.FakeLLMServer`:
it keeps uploaded files and batches in memory and answers every line with the
server's own reply logic (the same body gets the same reply as online, faults
included), so a batch build and an online build against one server must agree.

Time is compressed: a batch is ``validating`` (OpenAI) for the first tenth of
``batch_seconds``, ``in_progress`` until ``batch_seconds`` after it was created,
then ``completed`` (OpenAI) or ``ended`` (Anthropic). Its lines are answered
when a client first looks after that. ``expire(n)`` may give, for the n-th
batch created (0 first), the fraction of its lines answered before it expires
instead: the rest come back expired. Cancelling answers nothing more.

OpenAI: ``POST /v1/files`` (multipart, ``purpose=batch``), ``GET /v1/files/{id}``,
``GET /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}``,
``POST /v1/batches/{id}/cancel``, ``GET /v1/batches``. Successful lines go to the
output file, failed and expired ones to the error file, in the documented shapes.
Anthropic: ``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}``,
``GET /v1/messages/batches/{id}/results`` (JSONL), ``POST .../{id}/cancel``,
``GET /v1/messages/batches``.

``refuse = (status, message)`` makes every batch create fail with that error (a
quota, say) until set back to None; ``reply_delay`` holds back the answer to a
batch create that succeeded (a client killed meanwhile never learns the id);
``custom_ids`` lists every line submitted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from synthc.testing._wire import ANTHROPIC, OPENAI, Dialect

# the server's answer to one line: (HTTP status, JSON body)
Answer = Callable[[Dialect, dict[str, Any]], tuple[int, Any]]
ExpireHook = Callable[[int], "float | None"]

OPENAI_ENDPOINTS = ("/v1/chat/completions",)
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # Anthropic's rule for custom_id
BATCH_EXPIRED = "This request could not be executed before the completion window expired."


@dataclass
class _Line:
    custom_id: str
    body: dict[str, Any]
    outcome: tuple[int, Any] | None = None  # answered: (status, body)
    expired: bool = False
    canceled: bool = False


@dataclass
class _Batch:
    id: str
    dialect: Dialect
    lines: list[_Line]
    created: float  # time.time()
    number: int  # the n-th batch created
    input_file_id: str = ""
    endpoint: str = ""
    metadata: dict[str, str] | None = None
    ended: float | None = None
    status: str = "validating"  # OpenAI's words; Anthropic's are derived
    cancel_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BatchDesk:
    """The batch endpoints of one fake server (see the module docstring)."""

    def __init__(
        self,
        answer: Answer,
        *,
        batch_seconds: float,
        expire: ExpireHook | None,
        base_url: Callable[[str], str],
        authorized: Callable[[web.Request, Dialect], bool],
    ):
        self._answer = answer
        self._url = base_url
        self._authorized = authorized
        self.batch_seconds = batch_seconds
        self._expire = expire
        self._lock = threading.Lock()
        self._files: dict[str, tuple[str, str, bytes]] = {}  # id → (filename, purpose, data)
        self._batches: dict[str, _Batch] = {}
        self._ids = itertools.count(1)
        self._created = 0
        self.refuse: tuple[int, str] | None = None
        self.reply_delay = 0.0

    @property
    def ids(self) -> list[str]:
        """The ids of the batches created so far, oldest first (both APIs)."""
        with self._lock:
            return list(self._batches)

    @property
    def custom_ids(self) -> list[str]:
        """The custom_id of every line submitted so far, in order (both APIs)."""
        with self._lock:
            return [line.custom_id for b in self._batches.values() for line in b.lines]

    @property
    def created(self) -> int:
        """Batches created so far (both APIs)."""
        with self._lock:
            return self._created

    def routes(self, app: web.Application) -> None:
        for method, path, handler, dialect in (
            ("POST", "/v1/files", self._upload, OPENAI),
            ("GET", "/v1/files/{id}", self._file, OPENAI),
            ("GET", "/v1/files/{id}/content", self._file_content, OPENAI),
            ("POST", "/v1/batches", self._openai_create, OPENAI),
            ("GET", "/v1/batches", self._openai_list, OPENAI),
            ("GET", "/v1/batches/{id}", self._openai_retrieve, OPENAI),
            ("POST", "/v1/batches/{id}/cancel", self._openai_cancel, OPENAI),
            ("POST", "/v1/messages/batches", self._anthropic_create, ANTHROPIC),
            ("GET", "/v1/messages/batches", self._anthropic_list, ANTHROPIC),
            ("GET", "/v1/messages/batches/{id}", self._anthropic_retrieve, ANTHROPIC),
            ("GET", "/v1/messages/batches/{id}/results", self._anthropic_results, ANTHROPIC),
            ("POST", "/v1/messages/batches/{id}/cancel", self._anthropic_cancel, ANTHROPIC),
        ):
            app.router.add_route(method, path, self._guarded(handler, dialect))

    def _guarded(
        self, handler: Callable[[web.Request], Awaitable[web.Response]], dialect: Dialect
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """``handler``, answering 401 to a request without the server's API key."""

        async def guarded(request: web.Request) -> web.Response:
            if not self._authorized(request, dialect):
                return _error(dialect, 401, "invalid API key")
            return await handler(request)

        return guarded

    # --- OpenAI: files ------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose != "batch" or not isinstance(upload, web.FileField):
            return _error(OPENAI, 400, "expected a multipart form with purpose=batch and a file")
        data = upload.file.read()
        with self._lock:
            file_id = f"file-{next(self._ids)}"
            self._files[file_id] = (upload.filename, "batch", data)
        return web.json_response(self._file_object(file_id))

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        with self._lock:
            if file_id not in self._files:
                return _error(OPENAI, 404, f"No such File object: {file_id}")
            return web.json_response(self._file_object(file_id))

    async def _file_content(self, request: web.Request) -> web.Response:
        with self._lock:
            found = self._files.get(request.match_info["id"])
        if found is None:
            return _error(OPENAI, 404, f"No such File object: {request.match_info['id']}")
        return web.Response(body=found[2], content_type="application/octet-stream")

    def _file_object(self, file_id: str) -> dict[str, Any]:
        filename, purpose, data = self._files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    # --- OpenAI: batches ----------------------------------------------------------

    async def _openai_create(self, request: web.Request) -> web.Response:
        if self.refuse is not None:
            return _error(OPENAI, *self.refuse)
        body = await request.json()
        endpoint = body.get("endpoint")
        if endpoint not in OPENAI_ENDPOINTS:
            return _error(OPENAI, 400, f"endpoint must be one of {list(OPENAI_ENDPOINTS)}")
        if body.get("completion_window") != "24h":
            return _error(OPENAI, 400, "completion_window must be '24h'")
        with self._lock:
            found = self._files.get(body.get("input_file_id", ""))
        if found is None:
            return _error(OPENAI, 400, f"No such File object: {body.get('input_file_id')}")
        lines, problem = _openai_lines(found[2], endpoint)
        batch = self._new(OPENAI, lines)
        batch.input_file_id, batch.endpoint = body["input_file_id"], endpoint
        batch.metadata = body.get("metadata")
        if problem is not None:  # OpenAI fails a batch whose file is malformed
            batch.status, batch.ended = "failed", time.time()
            batch.extra["errors"] = {"object": "list", "data": [problem]}
        await asyncio.sleep(self.reply_delay)
        return web.json_response(self._openai_object(batch))

    async def _openai_retrieve(self, request: web.Request) -> web.Response:
        batch = self._find(request, OPENAI)
        if batch is None:
            return _error(OPENAI, 404, f"No such Batch object: {request.match_info['id']}")
        return web.json_response(self._openai_object(batch))

    async def _openai_list(self, request: web.Request) -> web.Response:
        with self._lock:
            batches = [b for b in self._batches.values() if b.dialect is OPENAI]
        data = [self._openai_object(b) for b in reversed(batches)]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        payload = {"object": "list", "data": data, "first_id": first, "last_id": last}
        return web.json_response({**payload, "has_more": False})

    async def _openai_cancel(self, request: web.Request) -> web.Response:
        batch = self._find(request, OPENAI)
        if batch is None:
            return _error(OPENAI, 404, f"No such Batch object: {request.match_info['id']}")
        self._cancel(batch)
        return web.json_response(self._openai_object(batch, advance=False))

    def _openai_object(self, batch: _Batch, *, advance: bool = True) -> dict[str, Any]:
        if advance:  # a cancel's own answer says "cancelling"; the next look, "cancelled"
            self._advance(batch)
        lines = batch.lines
        done = [ln for ln in lines if ln.outcome is not None and ln.outcome[0] == 200]
        failed = [ln for ln in lines if ln.outcome is not None and ln.outcome[0] != 200]
        stamps = {
            "in_progress_at": _seconds(batch.created + self.batch_seconds / 10),
            "completed_at": _seconds(batch.ended) if batch.status == "completed" else None,
            "expired_at": _seconds(batch.ended) if batch.status == "expired" else None,
            "cancelled_at": _seconds(batch.ended) if batch.status == "cancelled" else None,
            "failed_at": _seconds(batch.ended) if batch.status == "failed" else None,
        }
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": batch.extra.get("errors"),
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": _seconds(batch.created),
            "expires_at": _seconds(batch.created + 86400),
            **stamps,
            "request_counts": {
                "total": len(lines),
                "completed": len(done),
                "failed": len(failed) + sum(ln.expired for ln in lines),
            },
            "metadata": batch.metadata,
        }

    def _openai_files(self, batch: _Batch) -> None:
        """Write the output and error files of an OpenAI batch that has ended."""
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for n, line in enumerate(batch.lines):
            entry: dict[str, Any] = {"id": f"batch_req_{batch.id}_{n}", "custom_id": line.custom_id}
            if line.outcome is not None:
                status, body = line.outcome
                response = {"status_code": status, "request_id": f"req_{n}", "body": body}
                (output if status == 200 else errors).append({**entry, "response": response})
            elif line.expired:
                error = {"code": "batch_expired", "message": BATCH_EXPIRED}
                errors.append({**entry, "response": None, "error": error})
        with self._lock:
            for name, entries in (("output_file_id", output), ("error_file_id", errors)):
                if entries:
                    file_id = f"file-{next(self._ids)}"
                    data = "".join(json.dumps({"error": None, **e}) + "\n" for e in entries)
                    self._files[file_id] = (
                        f"{batch.id}_{name}.jsonl",
                        "batch_output",
                        data.encode(),
                    )
                    setattr(batch, name, file_id)

    # --- Anthropic ----------------------------------------------------------------

    async def _anthropic_create(self, request: web.Request) -> web.Response:
        if self.refuse is not None:
            return _error(ANTHROPIC, *self.refuse)
        body = await request.json()
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return _error(ANTHROPIC, 400, "requests: a non-empty list is required")
        seen: set[str] = set()
        lines = []
        for i, item in enumerate(requests):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            params = item.get("params") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                return _error(
                    ANTHROPIC, 400, f"requests.{i}.custom_id: must match {CUSTOM_ID.pattern}"
                )
            if custom_id in seen:
                return _error(ANTHROPIC, 400, f"requests.{i}.custom_id: duplicate {custom_id!r}")
            if not isinstance(params, dict):
                return _error(ANTHROPIC, 400, f"requests.{i}.params: Field required")
            seen.add(custom_id)
            lines.append(_Line(custom_id, params))
        batch = self._new(ANTHROPIC, lines, prefix="msgbatch_")
        await asyncio.sleep(self.reply_delay)
        return web.json_response(self._anthropic_object(batch))

    async def _anthropic_retrieve(self, request: web.Request) -> web.Response:
        batch = self._find(request, ANTHROPIC)
        if batch is None:
            return _error(ANTHROPIC, 404, f"batch {request.match_info['id']} not found")
        return web.json_response(self._anthropic_object(batch))

    async def _anthropic_list(self, request: web.Request) -> web.Response:
        with self._lock:
            batches = [b for b in self._batches.values() if b.dialect is ANTHROPIC]
        data = [self._anthropic_object(b) for b in reversed(batches)]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return web.json_response(
            {"data": data, "has_more": False, "first_id": first, "last_id": last}
        )

    async def _anthropic_cancel(self, request: web.Request) -> web.Response:
        batch = self._find(request, ANTHROPIC)
        if batch is None:
            return _error(ANTHROPIC, 404, f"batch {request.match_info['id']} not found")
        self._cancel(batch)
        return web.json_response(self._anthropic_object(batch, advance=False))

    async def _anthropic_results(self, request: web.Request) -> web.Response:
        batch = self._find(request, ANTHROPIC)
        if batch is None:
            return _error(ANTHROPIC, 404, f"batch {request.match_info['id']} not found")
        self._advance(batch)
        if batch.ended is None:
            return _error(ANTHROPIC, 400, f"batch {batch.id} has not ended yet")
        out = []
        for line in batch.lines:
            result: dict[str, Any]
            if line.outcome is not None and line.outcome[0] == 200:
                result = {"type": "succeeded", "message": line.outcome[1]}
            elif line.outcome is not None:
                result = {"type": "errored", "error": line.outcome[1]}
            else:
                result = {"type": "canceled" if line.canceled else "expired"}
            out.append(json.dumps({"custom_id": line.custom_id, "result": result}) + "\n")
        return web.Response(body="".join(out).encode(), content_type="application/binary")

    def _anthropic_object(self, batch: _Batch, *, advance: bool = True) -> dict[str, Any]:
        if advance:
            self._advance(batch)
        lines = batch.lines
        ended = batch.ended is not None
        succeeded = sum(ln.outcome is not None and ln.outcome[0] == 200 for ln in lines)
        errored = sum(ln.outcome is not None and ln.outcome[0] != 200 for ln in lines)
        canceled = sum(ln.canceled for ln in lines)
        expired = sum(ln.expired for ln in lines)
        if ended:
            status = "ended"
        elif batch.cancel_at is not None:
            status = "canceling"
        else:
            status = "in_progress"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {
                "processing": len(lines) - succeeded - errored - canceled - expired,
                "succeeded": succeeded,
                "errored": errored,
                "canceled": canceled,
                "expired": expired,
            },
            "created_at": _rfc3339(batch.created),
            "expires_at": _rfc3339(batch.created + 86400),
            "ended_at": _rfc3339(batch.ended) if batch.ended is not None else None,
            "cancel_initiated_at": _rfc3339(batch.cancel_at) if batch.cancel_at else None,
            "archived_at": None,
            "results_url": self._url(f"/v1/messages/batches/{batch.id}/results") if ended else None,
        }

    # --- both ---------------------------------------------------------------------

    def _new(self, dialect: Dialect, lines: list[_Line], prefix: str = "batch_") -> _Batch:
        with self._lock:
            number, self._created = self._created, self._created + 1
            batch = _Batch(f"{prefix}{next(self._ids)}", dialect, lines, time.time(), number)
            self._batches[batch.id] = batch
        return batch

    def _find(self, request: web.Request, dialect: Dialect) -> _Batch | None:
        with self._lock:
            batch = self._batches.get(request.match_info["id"])
        return batch if batch is not None and batch.dialect is dialect else None

    def _cancel(self, batch: _Batch) -> None:
        with self._lock:
            if batch.ended is None and batch.cancel_at is None:
                batch.cancel_at = time.time()
                batch.status = "cancelling"

    def _advance(self, batch: _Batch) -> None:
        """Move ``batch`` on to where the compressed clock says it is."""
        now = time.time()
        with self._lock:
            if batch.ended is not None:
                return
            if batch.cancel_at is not None:
                for line in batch.lines:
                    line.canceled = line.outcome is None
                batch.status, batch.ended, finished = "cancelled", now, True
            elif now - batch.created < self.batch_seconds:
                if now - batch.created >= self.batch_seconds / 10:
                    batch.status = "in_progress"
                return
            else:
                finished = True
            expiring = self._expire(batch.number) if self._expire and not batch.cancel_at else None
        todo = [ln for ln in batch.lines if ln.outcome is None and not ln.canceled]
        if expiring is not None:
            answered = round(len(batch.lines) * expiring)
            for line in todo[answered:]:
                line.expired = True
            todo = todo[:answered]
        for line in todo:
            line.outcome = self._answer(batch.dialect, line.body)
        with self._lock:
            if finished and batch.ended is None:
                batch.ended = now
                batch.status = "expired" if expiring is not None else "completed"
        if batch.dialect is OPENAI:
            self._openai_files(batch)


def _openai_lines(data: bytes, endpoint: str) -> tuple[list[_Line], dict[str, Any] | None]:
    """The lines of an OpenAI batch input file, and the first problem with it, if any."""
    lines: list[_Line] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            return lines, _line_problem("invalid_json_line", "This line is not valid JSON.", number)
        if not isinstance(item, dict) or not isinstance(item.get("body"), dict):
            return lines, _line_problem("invalid_request", "The line has no body.", number)
        if item.get("method") != "POST" or item.get("url") != endpoint:
            problem = f"The url must be {endpoint} and the method POST."
            return lines, _line_problem("mismatched_endpoint", problem, number)
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or custom_id in seen:
            problem = "The custom_id must be a string, unique within the file."
            return lines, _line_problem("duplicate_custom_id", problem, number)
        seen.add(custom_id)
        lines.append(_Line(custom_id, item["body"]))
    if not lines:
        return lines, _line_problem("empty_file", "The input file has no requests.", None)
    return lines, None


def _line_problem(code: str, message: str, line: int | None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": line}


def _error(dialect: Dialect, status: int, message: str) -> web.Response:
    return web.json_response(dialect.error(status, message), status=status)


def _seconds(at: float | None) -> int | None:
    return None if at is None else int(at)


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
