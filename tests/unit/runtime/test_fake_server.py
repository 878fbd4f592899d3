"""FakeLLMServer itself: deterministic replies, bookkeeping, validation, script mode, real SDKs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import synthc.testing
from synthc.testing import FakeLLMServer, Fault

CHAT = "/v1/chat/completions"


@pytest.fixture
def srv() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data, {"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def _chat(seed: int | None = None, temperature: float = 1.0) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": "Tell me about the Rhine please"}],
        "seed": seed,
        "temperature": temperature,
    }


def _text(reply: Any) -> str:
    return str(reply["choices"][0]["message"]["content"])


def test_same_body_same_reply_other_seed_other_reply(srv: FakeLLMServer) -> None:
    first = _text(_post(srv.url(CHAT), _chat(seed=1)))
    assert first.startswith("reply to: Tell me about the Rhine please #")
    assert _text(_post(srv.url(CHAT), _chat(seed=1))) == first
    assert _text(_post(srv.url(CHAT), _chat(seed=2))) != first
    assert _text(_post(srv.url(CHAT), _chat(seed=1, temperature=0.5))) != first


def test_reply_shape_is_openai_chat_completion(srv: FakeLLMServer) -> None:
    srv.reply = lambda body: "one two three"
    reply = _post(srv.url(CHAT), _chat())
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert reply["usage"] == {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}


def test_counts_records_and_resets(srv: FakeLLMServer) -> None:
    for seed in range(3):
        _post(srv.url(CHAT), _chat(seed=seed))
    assert srv.count == 3
    assert [r["seed"] for r in srv.requests] == [0, 1, 2]
    assert len(srv.arrivals) == 3 and srv.max_concurrency == 1
    srv.reset()
    assert (srv.count, srv.requests, srv.arrivals) == (0, [], [])


def test_fault_hook_sees_body_and_index(srv: FakeLLMServer) -> None:
    seen: list[tuple[int, int]] = []

    def faults(body: dict[str, Any], index: int) -> Fault | None:
        seen.append((index, body["seed"]))
        return Fault(status=503, retry_after="7") if index == 1 else None

    srv.faults = faults
    _post(srv.url(CHAT), _chat(seed=10))
    with pytest.raises(urllib.error.HTTPError) as info:
        _post(srv.url(CHAT), _chat(seed=11))
    assert info.value.code == 503 and info.value.headers["Retry-After"] == "7"
    info.value.close()
    assert seen == [(0, 10), (1, 11)]


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (CHAT, {"messages": []}, "model: Field required"),
        ("/v1/messages", {"model": "c", "messages": []}, "max_tokens: Field required"),
    ],
)
def test_missing_fields_are_400_in_the_providers_shape(
    srv: FakeLLMServer, path: str, body: dict[str, Any], expected: str
) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        _post(srv.url(path), body)
    error = json.loads(info.value.read())
    info.value.close()
    assert info.value.code == 400
    assert error["error"]["message"] == expected


def test_api_key_is_checked_when_set() -> None:
    with FakeLLMServer(api_key="k1") as srv:
        assert _post(srv.url(CHAT), _chat(), {"Authorization": "Bearer k1"})
        with pytest.raises(urllib.error.HTTPError) as info:
            _post(srv.url(CHAT), _chat(), {"Authorization": "Bearer k2"})
        info.value.close()
        assert info.value.code == 401


def test_runs_inside_an_existing_event_loop() -> None:
    async def go() -> int:
        async with FakeLLMServer() as srv:
            await asyncio.to_thread(_post, srv.url(CHAT), _chat())
            return srv.count

    assert asyncio.run(go()) == 1


def test_script_mode_prints_its_port_and_serves() -> None:
    root = Path(synthc.testing.__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "synthc.testing.server", "--port", "0", "--latency", "0.01"],
        stdout=subprocess.PIPE,
        cwd=root,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        reply = _post(f"http://127.0.0.1:{port}{CHAT}", _chat(seed=3))
        assert _text(reply).startswith("reply to: Tell me")
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def test_official_openai_sdk_parses_the_fake_replies(srv: FakeLLMServer) -> None:
    openai = pytest.importorskip("openai", reason="the openai SDK is not installed (dev extra)")

    async def go() -> Any:
        async with openai.AsyncOpenAI(base_url=srv.url("/v1"), api_key="x", max_retries=0) as c:
            return await c.chat.completions.create(
                model="gpt-x",
                messages=[{"role": "user", "content": "Hello SDK"}],
                max_completion_tokens=50,
                seed=5,
            )

    completion = asyncio.run(go())
    assert completion.choices[0].message.content.startswith("reply to: Hello SDK #")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 2 and completion.model == "gpt-x"
    assert srv.requests[0]["seed"] == 5


def test_official_anthropic_sdk_parses_the_fake_replies(srv: FakeLLMServer) -> None:
    anthropic = pytest.importorskip(
        "anthropic", reason="the anthropic SDK is not installed (dev extra)"
    )

    async def go() -> Any:
        client = anthropic.AsyncAnthropic(base_url=srv.url(), api_key="x", max_retries=0)
        async with client as c:
            return await c.messages.create(
                model="claude-x",
                max_tokens=50,
                system="Be terse.",
                messages=[{"role": "user", "content": "Hello SDK"}],
            )

    message = asyncio.run(go())
    assert message.content[0].text.startswith("reply to: Hello SDK #")
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 5)
    assert srv.requests[0]["system"] == "Be terse."


def test_public_api_is_pinned() -> None:
    assert synthc.testing.__all__ == [
        "FakeHub",
        "FakeLLMServer",
        "Fault",
        "LocalAzurite",
        "LocalS3",
        "default_reply",
    ]
    assert all(getattr(synthc.testing, name) for name in synthc.testing.__all__)
