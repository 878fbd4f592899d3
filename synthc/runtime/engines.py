"""Set up the engine a build talks to: a Spec and its Graph in, a lazily started runner out.

The runner creates its backend on the first request, so a fully cached build
needs no API key and loads no model. In-process engines (llama.cpp,
transformers, vLLM) load in a worker thread while the progress display says
what is loading; they get one worker and whole batches, HTTP engines get
``num_workers`` concurrent requests under the config's rate limits.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any, Protocol

from synthc.compiler.engines import ENGINES, Engine
from synthc.compiler.graph import Graph
from synthc.compiler.validate import Spec
from synthc.core.errors import ConfigError, UnsupportedFeature
from synthc.core.messages import Outcome, Request, RequestFailure
from synthc.runtime.config import EndpointConfig, Limits, LocalModelConfig
from synthc.runtime.dispatch import Breaker, Dispatcher
from synthc.runtime.limits import Limiter
from synthc.runtime.protocol import Backend

MODEL_OPTIONS = (
    "torch_dtype_str",
    "model_max_length",
    "trust_remote_code",
    "tokenizer_name",
    "chat_template",
    "model_revision",
)


LOCAL_LIMITS = Limits(num_workers=1, max_retries=0)  # in-process engines: one batch at a time


class LoadReporter(Protocol):
    def loading(self, what: str) -> None: ...

    def loaded(self) -> None: ...


class LazyRunner:
    """A Dispatcher whose backend is created on first use.

    A shard of a build spread over several processes sends with ``num_workers`` of
    the endpoint's workers (its share) and the ``limiter`` every shard shares; for an
    in-process engine it is given the ``backend`` (a handle on a model loaded
    elsewhere, once for every shard) instead of loading the model itself.
    """

    def __init__(
        self,
        spec: Spec,
        graph: Graph,
        reporter: Any = None,
        *,
        num_workers: int | None = None,
        limiter: Limiter | None = None,
        backend: Backend | None = None,
    ):
        self._spec = spec
        self._graph = graph
        self._reporter = reporter
        self._num_workers = num_workers
        self._limiter = limiter
        self._backend = backend
        self._dispatcher: Dispatcher | None = None
        self._lock = asyncio.Lock()
        self.load_seconds = 0.0

    async def run(self, request: Request, key: str = "") -> Outcome:
        dispatcher = self._dispatcher or await self._start()
        return await dispatcher.run(request)

    async def _start(self) -> Dispatcher:
        async with self._lock:
            if self._dispatcher is None:
                self._dispatcher = await self._create()
            return self._dispatcher

    async def _create(self) -> Dispatcher:
        inference = self._graph.inference
        if not ENGINES[inference.engine].local:
            limits = endpoint_limits(self._spec)
            if self._num_workers is not None:
                limits = replace(limits, num_workers=self._num_workers)
            backend = _http_backend(self._spec, inference.engine, limits.num_workers)
            breaker = Breaker(lambda failure: endpoint_fault(self._spec, inference.engine, failure))
            return Dispatcher(backend, limits, limiter=self._limiter, breaker=breaker)
        if self._backend is not None:
            return Dispatcher(self._backend, LOCAL_LIMITS)
        config = local_config(self._spec, self._graph)
        _report(self._reporter, "loading", f"Loading {config.name} with {inference.engine}")
        started = time.perf_counter()
        try:
            backend = await asyncio.to_thread(load_local_backend, config)
        finally:
            self.load_seconds = time.perf_counter() - started
            _report(self._reporter, "loaded")
        return Dispatcher(backend, LOCAL_LIMITS)

    async def aclose(self) -> None:
        if self._dispatcher is not None:
            await self._dispatcher.aclose()


def _report(reporter: Any, event: str, *args: str) -> None:
    method = getattr(reporter, event, None)
    if method is not None:
        method(*args)


def check_engine(spec: Spec, graph: Graph) -> None:
    """Refuse, before any request, an engine synthc cannot drive."""
    engine = graph.inference.engine
    reason = ENGINES[engine].unsupported
    if reason:
        raise UnsupportedFeature(
            f"engine {engine} ({reason})", spec.span("inference_config", "engine")
        )


def check_batch_engine(spec: Spec, graph: Graph) -> None:
    """Refuse a batch build for an engine without a batch API (an in-process model)."""
    engine = graph.inference.engine
    if ENGINES[engine].local:
        raise UnsupportedFeature(
            f"batch builds go through a provider's batch API; engine {engine} runs in "
            "this process (use OPENAI, ANTHROPIC or an OpenAI-compatible server)",
            spec.span("inference_config", "engine"),
        )


def local_config(spec: Spec, graph: Graph) -> LocalModelConfig:
    model = spec.config.inference_config.model
    options: dict[str, Any] = {}
    if model is not None:
        options.update({k: getattr(model, k) for k in MODEL_OPTIONS if getattr(model, k)})
        options.update(model.model_kwargs)
    inference = graph.inference
    return LocalModelConfig(inference.engine, inference.model, inference.path, options)


def load_local_backend(config: LocalModelConfig) -> Backend:
    """Load ``config``'s model into this process (a build's, or a sharded build's engine
    actor's)."""
    from synthc.runtime.backends import create_local_backend

    return create_local_backend(config)


def endpoint_fault(spec: Spec, engine: Engine, failure: RequestFailure) -> ConfigError:
    """The error that stops a build whose endpoint fails every request alike, pointing at
    the config key at fault (the model, the key, the URL)."""
    endpoint = endpoint_config(spec, engine)
    stopped = "; stopped sending (answers received so far are cached)"
    if failure.status == 404:
        message = (
            f"inference_config.model.model_name: {endpoint.model!r} was not found by {engine} "
            f"at {endpoint.api_url} ({failure.message}){stopped}"
        )
        where: tuple[str, ...] = ("inference_config", "model", "model_name")
    elif failure.status in (401, 403):
        variable = ENGINES[engine].api_key_env
        source = "remote_params.api_key" + (f" or {variable}" if variable else "")
        message = f"{engine} refused the API key ({failure.message}): check {source}{stopped}"
        where = ("inference_config", "remote_params", "api_key")
    else:
        message = (
            f"inference_config.remote_params.api_url: {endpoint.api_url!r} cannot be reached "
            f"({failure.message}){stopped}"
        )
        where = ("inference_config", "remote_params", "api_url")
    span = spec.span(*where) or spec.span(*where[:-1]) or spec.span(where[0])
    return ConfigError.at(message, span).with_source(spec.text, spec.name)


def _http_backend(spec: Spec, engine: Engine, connections: int) -> Backend:
    from synthc.runtime.backends import create_backend

    return create_backend(endpoint_config(spec, engine), connections=connections)


def endpoint_config(spec: Spec, engine: Engine) -> EndpointConfig:
    """Where and as whom ``spec`` talks to ``engine`` over HTTP: its URL (the engine's
    default when the config gives none), model, key and connection settings."""
    from synthc.runtime.backends import resolve_api_key

    inference = spec.config.inference_config
    remote = inference.remote_params
    return EndpointConfig(
        engine=engine,
        model=inference.model.model_name if inference.model else "",
        api_url=remote.api_url or ENGINES[engine].api_url,
        api_key=resolve_api_key(engine, remote.api_key, remote.api_key_env_varname),
        connection_timeout=remote.connection_timeout,
        user_id=remote.user_id,
        prompt_cache_ttl=inference.generation.prompt_cache_ttl,
    )


def endpoint_limits(spec: Spec) -> Limits:
    """The endpoint's concurrency, pacing, retry and rate settings (oumi's remote_params)."""
    remote = spec.config.inference_config.remote_params
    return Limits(
        num_workers=remote.num_workers,
        politeness_policy=remote.politeness_policy,
        max_retries=remote.max_retries,
        retry_backoff_base=remote.retry_backoff_base,
        retry_backoff_max=remote.retry_backoff_max,
        requests_per_minute=remote.requests_per_minute,
        input_tokens_per_minute=remote.input_tokens_per_minute,
        output_tokens_per_minute=remote.output_tokens_per_minute,
    )
