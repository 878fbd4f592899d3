"""The fake server's batch APIs, driven by the official SDKs: OpenAI's files and batches,
Anthropic's message batches. A line gets the reply the same body gets online."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest

from synthc.testing.server import FakeLLMServer, Fault

BODIES = [
    {
        "model": "m",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": f"question {i}"}],
    }
    for i in range(4)
]


def _wait(look: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """Poll ``look`` until ``done`` holds of what it returns (the server's clock is fast)."""
    deadline = time.monotonic() + 10
    while True:
        seen = look()
        if done(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def _openai_file(bodies: list[dict[str, Any]], url: str = "/v1/chat/completions") -> bytes:
    lines = [
        {"custom_id": f"n{i}", "method": "POST", "url": url, "body": body}
        for i, body in enumerate(bodies)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _openai_batch(client: openai.OpenAI, data: bytes) -> Any:
    uploaded = client.files.create(file=("in.jsonl", data), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


def _lines(client: openai.OpenAI, file_id: str | None) -> dict[str, Any]:
    if file_id is None:
        return {}
    text = client.files.content(file_id).text
    return {entry["custom_id"]: entry for entry in map(json.loads, text.splitlines())}


def _openai(server: FakeLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url("/v1"), api_key="sk-test", max_retries=0)


def _anthropic(server: FakeLLMServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url(), api_key="k", max_retries=0)


def test_an_openai_batch_answers_each_line_as_the_same_request_online() -> None:
    with FakeLLMServer() as server, _openai(server) as client:
        batch = _openai_batch(client, _openai_file(BODIES))
        assert batch.status == "validating" and batch.request_counts.total == 4
        assert server.count == 0  # nothing is answered before the batch runs
        ended = _wait(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
        assert ended.status == "completed", ended
        assert (ended.request_counts.completed, ended.request_counts.failed) == (4, 0)
        assert ended.error_file_id is None
        output = _lines(client, ended.output_file_id)
        assert server.count == 4
        for i, body in enumerate(BODIES):
            online = client.chat.completions.create(**body)
            line = output[f"n{i}"]
            assert line["response"]["status_code"] == 200 and line["error"] is None
            reply = line["response"]["body"]["choices"][0]["message"]["content"]
            assert reply == online.choices[0].message.content
        assert [b.id for b in client.batches.list()] == [batch.id]


def test_an_expired_openai_batch_returns_what_it_finished() -> None:
    with FakeLLMServer(expire=lambda n: 0.5) as server, _openai(server) as client:
        batch = _openai_batch(client, _openai_file(BODIES))
        ended = _wait(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "expired")
        assert ended.status == "expired"
        assert (ended.request_counts.completed, ended.request_counts.failed) == (2, 2)
        assert sorted(_lines(client, ended.output_file_id)) == ["n0", "n1"]
        errors = _lines(client, ended.error_file_id)
        assert sorted(errors) == ["n2", "n3"]
        assert errors["n2"]["error"]["code"] == "batch_expired"
        assert server.count == 2


def test_a_failing_line_fails_alone_and_a_bad_file_fails_the_batch() -> None:
    def fault(body: dict[str, Any], index: int) -> Fault | None:
        return Fault(status=400) if body["messages"][0]["content"] == "question 1" else None

    with FakeLLMServer(faults=fault) as server, _openai(server) as client:
        batch = _openai_batch(client, _openai_file(BODIES))
        ended = _wait(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
        assert (ended.request_counts.completed, ended.request_counts.failed) == (3, 1)
        errors = _lines(client, ended.error_file_id)
        assert list(errors) == ["n1"] and errors["n1"]["response"]["status_code"] == 400

        wrong = _openai_batch(client, _openai_file(BODIES, url="/v1/embeddings"))
        assert wrong.status == "failed"
        assert wrong.errors is not None and wrong.errors.data[0].code == "mismatched_endpoint"


def test_a_cancelled_openai_batch_answers_nothing_more() -> None:
    with FakeLLMServer(batch_seconds=30) as server, _openai(server) as client:
        batch = _openai_batch(client, _openai_file(BODIES))
        assert client.batches.cancel(batch.id).status == "cancelling"
        assert client.batches.retrieve(batch.id).status == "cancelled"
        assert server.count == 0
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_nope")


def _anthropic_requests(bodies: list[dict[str, Any]]) -> list[Any]:
    return [{"custom_id": f"n{i}", "params": body} for i, body in enumerate(bodies)]


def test_an_anthropic_batch_answers_each_request_as_online() -> None:
    with FakeLLMServer() as server, _anthropic(server) as client:
        batch = client.messages.batches.create(requests=_anthropic_requests(BODIES))
        assert batch.processing_status == "in_progress"
        assert batch.request_counts.processing == 4 and batch.results_url is None
        ended = _wait(
            lambda: client.messages.batches.retrieve(batch.id),
            lambda b: b.processing_status == "ended",
        )
        assert ended.request_counts.succeeded == 4
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
        for i, body in enumerate(BODIES):
            online = client.messages.create(**body)
            result = results[f"n{i}"]
            assert result.type == "succeeded"
            assert result.message.content[0].text == online.content[0].text  # type: ignore[union-attr]


def test_anthropic_results_say_errored_expired_and_canceled() -> None:
    def fault(body: dict[str, Any], index: int) -> Fault | None:
        return Fault(status=400) if body["messages"][0]["content"] == "question 0" else None

    def expire(batch: int) -> float | None:  # the first batch expires half done
        return 0.5 if batch == 0 else None

    with FakeLLMServer(faults=fault, expire=expire) as server, _anthropic(server) as client:
        batch = client.messages.batches.create(requests=_anthropic_requests(BODIES))
        _wait(
            lambda: client.messages.batches.retrieve(batch.id),
            lambda b: b.processing_status == "ended",
        )
        kinds = {r.custom_id: r.result.type for r in client.messages.batches.results(batch.id)}
        assert kinds == {"n0": "errored", "n1": "succeeded", "n2": "expired", "n3": "expired"}

        server.batches.batch_seconds = 30
        slow = client.messages.batches.create(requests=_anthropic_requests(BODIES[:2]))
        assert client.messages.batches.cancel(slow.id).processing_status == "canceling"
        ended = client.messages.batches.retrieve(slow.id)
        assert ended.processing_status == "ended" and ended.request_counts.canceled == 2
        kinds = {r.custom_id: r.result.type for r in client.messages.batches.results(slow.id)}
        assert kinds == {"n0": "canceled", "n1": "canceled"}
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.create(requests=[{"custom_id": "bad id!", "params": {}}])


def test_the_batch_endpoints_want_the_servers_api_key() -> None:
    with FakeLLMServer(api_key="right") as server:
        wrong = openai.OpenAI(base_url=server.url("/v1"), api_key="wrong", max_retries=0)
        with wrong, pytest.raises(openai.AuthenticationError):
            wrong.files.create(file=("in.jsonl", _openai_file(BODIES)), purpose="batch")
        right = openai.OpenAI(base_url=server.url("/v1"), api_key="right", max_retries=0)
        with right:
            assert _openai_batch(right, _openai_file(BODIES)).status == "validating"
        other = anthropic.Anthropic(base_url=server.url(), api_key="wrong", max_retries=0)
        with other, pytest.raises(anthropic.AuthenticationError):
            other.messages.batches.create(requests=_anthropic_requests(BODIES))
        good = anthropic.Anthropic(base_url=server.url(), api_key="right", max_retries=0)
        with good:
            created = good.messages.batches.create(requests=_anthropic_requests(BODIES))
            assert created.processing_status == "in_progress"
