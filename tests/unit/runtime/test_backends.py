"""HTTP backends against a real local server: request bodies, reply parsing, failure mapping."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest

from synthc.compiler.engines import ENGINES, Engine, Wire
from synthc.core.errors import EngineError
from synthc.core.messages import Completion, Message, Outcome, Request, RequestFailure
from synthc.runtime.backends import create_backend, create_local_backend, resolve_api_key
from synthc.runtime.backends._http import parse_retry_after
from synthc.runtime.backends.anthropic import AnthropicBackend
from synthc.runtime.backends.openai_compat import OpenAICompatBackend
from synthc.runtime.config import EndpointConfig, LocalModelConfig
from synthc.runtime.protocol import Backend
from synthc.testing import FakeLLMServer, Fault

KEY = "sk-secret-do-not-print"
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
HTTP = sorted(e for e, f in ENGINES.items() if not f.local and not f.unsupported)
LOCAL = sorted(e for e, f in ENGINES.items() if f.local)
UNSUPPORTED = sorted(e for e, f in ENGINES.items() if f.unsupported)


@pytest.fixture
def srv() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


def _request(**params: Any) -> Request:
    messages = (Message("system", "Be brief."), Message("user", "Name a river."))
    return Request("m-1", messages, params, seed=params.pop("_seed", None))


def _generate(
    engine: str, url: str, request: Request, timeout: float = 5.0, **settings: Any
) -> Outcome:
    async def go() -> Outcome:
        config = EndpointConfig(engine, "m-1", url, KEY, connection_timeout=timeout, **settings)
        backend = create_backend(config)
        try:
            return (await backend.generate([request]))[0]
        finally:
            await backend.aclose()

    return asyncio.run(go())


# --- registry: the rows of compiler.engines.ENGINES agree with what backends do ----------


@pytest.mark.parametrize("engine", HTTP)
def test_hosted_engines_build_the_http_backend_their_row_names(engine: Engine) -> None:
    facts = ENGINES[engine]
    url = facts.api_url or "http://127.0.0.1:9/v1/chat/completions"
    backend: Backend = create_backend(
        EndpointConfig(engine, "m", url if not facts.api_url else None, "k")
    )
    expected = AnthropicBackend if facts.wire is Wire.ANTHROPIC else OpenAICompatBackend
    assert facts.backend == f"{expected.__module__}:{expected.__name__}"
    assert type(backend) is expected
    assert f"url={url!r}" in repr(backend)  # the row's default URL when the config names none


@pytest.mark.parametrize("engine", HTTP)
def test_hosted_engines_want_the_key_their_row_names(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = ENGINES[engine]
    url = facts.api_url or "http://127.0.0.1:9/v1/chat/completions"
    if facts.api_key_env:
        monkeypatch.setenv(facts.api_key_env, "from-env")
        assert resolve_api_key(engine, None, None) == "from-env"
        monkeypatch.delenv(facts.api_key_env)
    assert resolve_api_key(engine, None, None) is None
    if facts.key_required:
        with pytest.raises(EngineError, match=f"no API key for engine {engine}"):
            create_backend(EndpointConfig(engine, "m", url))
    else:
        assert create_backend(EndpointConfig(engine, "m", url)) is not None


@pytest.mark.parametrize("engine", [e for e in HTTP if ENGINES[e].wire is Wire.OPENAI])
def test_openai_compatible_bodies_follow_the_row(engine: Engine) -> None:
    facts = ENGINES[engine]
    url = facts.api_url or "http://127.0.0.1:9/v1/chat/completions"
    backend = create_backend(EndpointConfig(engine, "m", url, "k"))
    assert isinstance(backend, OpenAICompatBackend)
    body = backend.build_body(_request(max_new_tokens=7, min_p=0.1))
    assert body[facts.max_tokens_field] == 7
    assert ("min_p" in body) is facts.min_p


@pytest.mark.parametrize("engine", LOCAL)
def test_local_engines_load_the_in_process_backend_their_row_names(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = ENGINES[engine]
    assert facts.backend is not None
    module_name, _, class_name = facts.backend.partition(":")
    module = importlib.import_module(module_name)
    assert isinstance(getattr(module, class_name), type)
    loaded: list[LocalModelConfig] = []

    class Loaded:
        def __init__(self, config: LocalModelConfig):
            loaded.append(config)

    monkeypatch.setattr(module, class_name, Loaded)
    config = LocalModelConfig(engine, "m", None)
    assert isinstance(create_local_backend(config), Loaded)
    assert loaded == [config]


@pytest.mark.parametrize("engine", LOCAL)
def test_local_engines_have_no_http_backend(engine: Engine) -> None:
    with pytest.raises(EngineError, match=f"unknown inference engine '{engine}'"):
        create_backend(EndpointConfig(engine, "m", "http://x/v1/chat/completions", "k"))


def test_unknown_engine_names_it_and_lists_known_ones() -> None:
    with pytest.raises(EngineError) as info:
        create_backend(EndpointConfig("openay", "m", None, "k"))
    assert str(info.value) == (
        "unknown inference engine 'OPENAY'; known engines: ANTHROPIC, CEREBRAS, DEEPSEEK, "
        "FIREWORKS, GEMINI, GOOGLE_GEMINI, GOOGLE_VERTEX, HUGGING_FACE_ROUTER, LAMBDA, OPENAI, "
        "OPENROUTER, PARASAIL, REMOTE, REMOTE_VLLM, SAMBANOVA, SGLANG, TOGETHER"
    )


@pytest.mark.parametrize("spelling", ["gemini", "GEMINI", "google_gemini", "GOOGLE_GEMINI"])
def test_any_oumi_spelling_reaches_the_engine(spelling: str) -> None:
    backend = create_backend(EndpointConfig(spelling, "m", None, "k"))
    url = ENGINES[Engine.GOOGLE_GEMINI].api_url
    assert repr(backend) == f"OpenAICompatBackend(engine='GOOGLE_GEMINI', url={url!r})"


@pytest.mark.parametrize("engine", UNSUPPORTED)
def test_unsupported_engines_are_refused_with_the_reason(engine: Engine) -> None:
    reason = ENGINES[engine].unsupported
    with pytest.raises(EngineError) as info:
        create_backend(EndpointConfig(engine, "m", "http://x/v1/chat/completions"))
    assert str(info.value) == f"engine {engine} is not supported: {reason}"


def test_hosted_engine_without_key_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EngineError, match=r"set OPENAI_API_KEY or set remote_params\.api_key"):
        create_backend(EndpointConfig(Engine.OPENAI, "gpt-4o"))


def test_remote_needs_a_url() -> None:
    with pytest.raises(EngineError, match=r"REMOTE needs remote_params\.api_url"):
        create_backend(EndpointConfig(Engine.REMOTE, "m"))


def test_api_key_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-default-var")
    monkeypatch.setenv("MY_KEY", "from-named-var")
    assert resolve_api_key(Engine.OPENAI, "explicit", "MY_KEY") == "explicit"
    assert resolve_api_key(Engine.OPENAI, None, "MY_KEY") == "from-named-var"
    assert resolve_api_key(Engine.OPENAI, None, "UNSET_VAR_X") == "from-default-var"
    assert resolve_api_key(Engine.REMOTE, None, None) is None


def test_sglang_native_url_is_sent_to_its_openai_route(srv: FakeLLMServer) -> None:
    outcome = _generate("SGLANG", srv.url("/generate"), _request())
    assert isinstance(outcome, Completion)
    assert srv.count == 1


# --- request bodies -------------------------------------------------------------


def test_openai_body_uses_wire_names(srv: FakeLLMServer) -> None:
    request = _request(
        max_new_tokens=64,
        temperature=0.7,
        top_p=0.9,
        stop_strings=["\n\n"],
        frequency_penalty=0.1,
        presence_penalty=0.2,
        min_p=0.05,
        guided_decoding={"json": {"type": "object"}},
        _seed=42,
    )
    assert isinstance(_generate("OPENAI", srv.url(CHAT), request), Completion)
    assert srv.requests == [
        {
            "model": "m-1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Name a river."},
            ],
            "max_completion_tokens": 64,
            "temperature": 0.7,
            "top_p": 0.9,
            "frequency_penalty": 0.1,
            "presence_penalty": 0.2,
            "stop": ["\n\n"],
            "seed": 42,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "Response", "schema": {"type": "object"}},
            },
        }
    ]


def test_self_hosted_server_gets_max_tokens_min_p_and_params_seed(srv: FakeLLMServer) -> None:
    request = _request(max_new_tokens=8, min_p=0.1, seed=7)
    _generate("REMOTE_VLLM", srv.url(CHAT), request)
    body = srv.requests[0]
    assert (body["max_tokens"], body["min_p"], body["seed"]) == (8, 0.1, 7)
    assert "max_completion_tokens" not in body


def test_anthropic_body_has_top_level_system_and_required_max_tokens(srv: FakeLLMServer) -> None:
    request = Request(
        "claude-x",
        (Message("system", "A."), Message("system", "B."), Message("user", "Hi")),
        {"temperature": 0.5, "stop_strings": ["END"]},
    )
    outcome = _generate("ANTHROPIC", srv.url(MESSAGES), request)
    assert isinstance(outcome, Completion) and outcome.finish_reason == "end_turn"
    assert srv.requests == [
        {
            "model": "claude-x",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 256,
            "system": "A.\n\nB.",
            "temperature": 0.5,
            "stop_sequences": ["END"],
        }
    ]


def test_anthropic_sends_top_p_instead_of_temperature_like_oumi(srv: FakeLLMServer) -> None:
    _generate("ANTHROPIC", srv.url(MESSAGES), _request(temperature=0.5, top_p=0.8))
    body = srv.requests[0]
    assert body["top_p"] == 0.8 and "temperature" not in body


def test_openai_strict_schemas_close_every_object(srv: FakeLLMServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "object"}}}
    _generate("OPENAI", srv.url(CHAT), _request(guided_decoding={"json": schema, "strict": True}))
    assert srv.requests[0]["response_format"]["json_schema"] == {
        "name": "Response",
        "schema": {
            "type": "object",
            "properties": {"a": {"type": "object", "additionalProperties": False}},
            "additionalProperties": False,
        },
        "strict": True,
    }


PLAN = {"type": "object", "properties": {"turns": {"type": "array"}}}


@pytest.mark.parametrize(
    ("model", "structured", "sampled"),
    [
        ("claude-3-5-sonnet-20240620", False, True),
        ("claude-sonnet-4-20250514", False, True),  # 4.0: the date is no minor version
        ("claude-sonnet-4-5", True, True),
        ("claude-haiku-4-5-20251001", True, True),
        ("claude-opus-4-7", True, False),
        ("claude-sonnet-5", True, False),
        ("claude-haiku-5", True, True),
        ("claude-fable-1", True, False),
        ("some-proxy-model", False, True),
    ],
)
def test_anthropic_sends_what_each_claude_version_accepts(
    srv: FakeLLMServer, model: str, structured: bool, sampled: bool
) -> None:
    """oumi 0.9's table: structured outputs from Claude 4.5 on, no sampling parameters
    for the reasoning-first models."""
    request = Request(
        model,
        (Message("user", "Plan."),),
        {"temperature": 0.5, "guided_decoding": {"json": PLAN}},
    )
    _generate("ANTHROPIC", srv.url(MESSAGES), request)
    body = srv.requests[0]
    closed = {**PLAN, "additionalProperties": False}
    expected = {"format": {"type": "json_schema", "schema": closed}} if structured else None
    assert body.get("output_config") == expected
    assert ("temperature" in body) == sampled


def test_anthropic_user_id_and_prompt_cache(srv: FakeLLMServer) -> None:
    request = _request(temperature=0.0)
    _generate("ANTHROPIC", srv.url(MESSAGES), request, user_id="u-7", prompt_cache_ttl="1h")
    body = srv.requests[0]
    assert body["metadata"] == {"user_id": "u-7"}
    assert body["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


# --- replies --------------------------------------------------------------------


@pytest.mark.parametrize(("engine", "path"), [("OPENAI", CHAT), ("ANTHROPIC", MESSAGES)])
def test_reply_text_usage_model_and_finish_reason(
    srv: FakeLLMServer, engine: str, path: str
) -> None:
    srv.reply = lambda body: "the Danube flows east"
    outcome = _generate(engine, srv.url(path), _request(max_new_tokens=3))
    assert isinstance(outcome, Completion)
    assert outcome.text == "the Danube flows"
    assert outcome.model == "m-1"
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (5, 3)
    assert outcome.finish_reason in ("length", "max_tokens")


# --- failures -------------------------------------------------------------------

FAILURES: list[tuple[Fault, bool, int | None, str]] = [
    (Fault(status=429, retry_after=0.25), True, 429, "HTTP 429"),
    (Fault(status=500), True, 500, "HTTP 500"),
    (Fault(status=503), True, 503, "HTTP 503"),
    (Fault(status=529), True, 529, "HTTP 529"),
    (Fault(status=408), True, 408, "HTTP 408"),
    (Fault(status=400, body={"error": {"message": "bad temperature"}}), False, 400, "bad temp"),
    (Fault(status=404, body="x" * 5000), False, 404, "HTTP 404: xxx"),
    (Fault(status=200, body="<html>gateway</html>"), True, 200, "not JSON"),
    (Fault(status=200, body={"unexpected": True}), True, None, "malformed reply"),
    (Fault(reset=True), True, None, "connection error"),
]


@pytest.mark.parametrize(("engine", "path"), [("OPENAI", CHAT), ("ANTHROPIC", MESSAGES)])
@pytest.mark.parametrize(("fault", "retryable", "status", "text"), FAILURES)
def test_failures_are_mapped(  # noqa: PLR0917 - pytest passes parameters positionally
    srv: FakeLLMServer,
    engine: str,
    path: str,
    fault: Fault,
    retryable: bool,
    status: int | None,
    text: str,
) -> None:
    srv.faults = lambda body, index: fault
    outcome = _generate(engine, srv.url(path), _request())
    assert isinstance(outcome, RequestFailure)
    assert (outcome.retryable, outcome.status) == (retryable, status)
    assert text in outcome.message
    assert len(outcome.message) < 400
    assert outcome.retry_after == (0.25 if status == 429 else None)


def test_timeout_is_retryable(srv: FakeLLMServer) -> None:
    srv.faults = lambda body, index: Fault(delay=2.0)
    outcome = _generate("OPENAI", srv.url(CHAT), _request(), timeout=0.2)
    assert isinstance(outcome, RequestFailure) and outcome.retryable
    assert outcome.message == "request timed out"


def test_nothing_listening_is_a_retryable_connection_error() -> None:
    outcome = _generate("REMOTE", "http://127.0.0.1:9/v1/chat/completions", _request())
    assert isinstance(outcome, RequestFailure) and outcome.retryable
    assert outcome.message.startswith("connection error")


@pytest.mark.parametrize(("engine", "path"), [("OPENAI", CHAT), ("ANTHROPIC", MESSAGES)])
def test_empty_completion_is_retryable(srv: FakeLLMServer, engine: str, path: str) -> None:
    srv.reply = lambda body: ""
    outcome = _generate(engine, srv.url(path), _request())
    assert outcome == RequestFailure("empty completion", retryable=True)


def test_wrong_key_is_final_and_never_echoes_the_key(srv: FakeLLMServer) -> None:
    srv.api_key = "another-key"
    outcome = _generate("OPENAI", srv.url(CHAT), _request())
    assert isinstance(outcome, RequestFailure)
    assert (outcome.retryable, outcome.status) == (False, 401)
    backend = create_backend(EndpointConfig("OPENAI", "m", srv.url(CHAT), KEY))
    for text in (repr(outcome), repr(backend), repr(EndpointConfig("OPENAI", "m", None, KEY))):
        assert KEY not in text


def test_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"Retry-After": "0.5"}) == 0.5
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-3"}) is None
    assert parse_retry_after({}) is None
    date = formatdate(timeval=__import__("time").time() + 30, usegmt=True)
    after = parse_retry_after({"Retry-After": date})
    assert after is not None and 28 <= after <= 31


def test_public_api_is_pinned() -> None:
    from synthc.runtime import backends

    assert backends.__all__ == [
        "create_backend",
        "create_local_backend",
        "resolve_api_key",
    ]
