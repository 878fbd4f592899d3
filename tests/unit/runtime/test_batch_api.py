"""Batch clients for OpenAI and Anthropic, through the official SDKs, against the fake
server's batch APIs: a batch answer is the online answer to the same request."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

from synthc.compiler.engines import Engine
from synthc.core.errors import EngineError
from synthc.core.messages import Completion, Message, Outcome, Request, RequestFailure
from synthc.runtime.backends import create_backend
from synthc.runtime.backends._http import HttpBackend
from synthc.runtime.backends.batch_api import BatchClient, BatchState, batch_client
from synthc.runtime.config import EndpointConfig
from synthc.testing.server import FakeLLMServer, Fault

PROVIDERS = {Engine.OPENAI: "/v1/chat/completions", Engine.ANTHROPIC: "/v1/messages"}
REQUESTS = [
    Request("m", (Message("user", f"question {i}"),), {"max_new_tokens": 16}, seed=i)
    for i in range(4)
]


def _endpoint(server: FakeLLMServer, engine: Engine) -> EndpointConfig:
    return EndpointConfig(engine, "m", api_url=server.url(PROVIDERS[engine]), api_key="k")


def _clients(server: FakeLLMServer, engine: Engine) -> tuple[HttpBackend, BatchClient]:
    endpoint = _endpoint(server, engine)
    backend = create_backend(endpoint)
    assert isinstance(backend, HttpBackend)
    return backend, batch_client(create_backend(endpoint), endpoint)


async def _collect(client: BatchClient, batch_id: str) -> dict[str, Outcome | None]:
    deadline = time.monotonic() + 10
    state = await client.state(batch_id)
    while not state.ended and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        state = await client.state(batch_id)
    assert state.ended and state.refused is None, state
    return await client.results(batch_id)


@pytest.mark.parametrize("engine", list(PROVIDERS))
def test_batch_answers_are_the_online_answers(engine: Engine) -> None:
    async def run(server: FakeLLMServer) -> None:
        backend, client = _clients(server, engine)
        try:
            batch_id = await client.submit(
                [(f"n{i}", r) for i, r in enumerate(REQUESTS)], "intent-1"
            )
            assert not (await client.state(batch_id)).ended
            found = await _collect(client, batch_id)
            online = await backend.generate(REQUESTS)
        finally:
            await client.aclose()
            await backend.aclose()
        assert len(found) == 4
        for i, outcome in enumerate(online):
            batched = found[f"n{i}"]
            assert isinstance(batched, Completion) and isinstance(outcome, Completion)
            assert (batched.text, batched.usage) == (outcome.text, outcome.usage)

    with FakeLLMServer() as server:
        asyncio.run(run(server))
        bodies = server.requests
    assert bodies[:4] == bodies[4:]  # the batch's lines are the online bodies


@pytest.mark.parametrize("engine", list(PROVIDERS))
def test_expired_lines_are_none_and_failed_lines_fail_alone(engine: Engine) -> None:
    def fault(body: dict[str, Any], index: int) -> Fault | None:
        return Fault(status=400) if body["messages"][0]["content"] == "question 0" else None

    async def run(server: FakeLLMServer) -> dict[str, Outcome | None]:
        _, client = _clients(server, engine)
        try:
            batch_id = await client.submit(
                [(f"n{i}", r) for i, r in enumerate(REQUESTS)], "intent-1"
            )
            return await _collect(client, batch_id)
        finally:
            await client.aclose()

    with FakeLLMServer(faults=fault, expire=lambda n: 0.5) as server:
        found = asyncio.run(run(server))
    failed = found["n0"]
    assert isinstance(failed, RequestFailure) and not failed.retryable
    assert isinstance(found["n1"], Completion)
    assert found["n2"] is None and found["n3"] is None  # to be submitted again


def test_a_batch_the_provider_refuses_says_why() -> None:
    async def run(server: FakeLLMServer) -> BatchState:
        _, client = _clients(server, Engine.OPENAI)
        sdk = openai.AsyncOpenAI(base_url=server.url("/v1"), api_key="k")
        try:
            bad = await sdk.files.create(file=("bad.jsonl", b"not json\n"), purpose="batch")
            batch = await sdk.batches.create(
                input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            return await client.state(batch.id)
        finally:
            await sdk.close()
            await client.aclose()

    with FakeLLMServer() as server:
        state = asyncio.run(run(server))
    assert state.ended and state.status == "failed"
    assert state.refused == "This line is not valid JSON. (line 1)"


def test_an_endpoint_without_the_batch_route_is_refused() -> None:
    url = "http://127.0.0.1:9/v1/completions"
    endpoint = EndpointConfig(Engine.OPENAI, "m", api_url=url, api_key="k")
    with pytest.raises(EngineError, match="ending in /chat/completions"):
        batch_client(create_backend(endpoint), endpoint)
