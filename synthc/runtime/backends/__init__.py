"""Turn an endpoint config (engine, model, URL, key) into a ready backend.

The registry is a table, not an if-chain: :data:`synthc.compiler.engines.ENGINES`
names, for each engine, the backend class that speaks its protocol
(``"module:Class"``, imported here only when used) and the engine's defaults
(endpoint URL, API-key variable, how it names the max-tokens field). Every
OpenAI-compatible service shares
:class:`~synthc.runtime.backends.openai_compat.OpenAICompatBackend`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from synthc.compiler.engines import ENGINES, Engine, EngineFacts
from synthc.core.errors import EngineError
from synthc.runtime.config import EndpointConfig, LocalModelConfig
from synthc.runtime.protocol import Backend

__all__ = [
    "create_backend",
    "create_local_backend",
    "resolve_api_key",
]


def create_local_backend(config: LocalModelConfig) -> Backend:
    """Load ``config``'s model into the engine that runs it in this process."""
    try:
        cls = _backend_class(config.engine)
    except ImportError as exc:
        raise EngineError(f"cannot load engine {config.engine}: {exc}") from None
    backend: Backend = cls(config)
    return backend


def local_max_batch(engine: Engine) -> int:
    """How many requests one call to ``engine``'s in-process backend takes (no model loaded)."""
    try:
        batch: int = _backend_class(engine).max_batch
    except ImportError as exc:
        raise EngineError(f"cannot load engine {engine}: {exc}") from None
    return batch


def create_backend(config: EndpointConfig, *, connections: int = 100) -> Backend:
    """The backend for ``config.engine``, with the engine's default URL and key filled in.

    ``config.engine`` may also be a name in any of oumi's spellings. ``connections``
    caps the backend's HTTP connection pool; the runtime sizes it to ``num_workers``.
    Raises :class:`EngineError` for an unknown or unusable engine.
    """
    engine, facts = _http_engine(config.engine)
    url = _endpoint_url(engine, config.api_url or facts.api_url)
    key = config.api_key or resolve_api_key(engine, None, None)
    if facts.key_required and not key:
        where = f"set {facts.api_key_env} or " if facts.api_key_env else ""
        raise EngineError(f"no API key for engine {engine}: {where}set remote_params.api_key")
    config = replace(config, engine=engine, api_url=url, api_key=key)
    try:
        cls = _backend_class(engine)
    except ImportError as exc:  # pragma: no cover - only with a broken install
        raise EngineError(f"cannot load the backend for engine {engine}: {exc}") from exc
    backend: Backend = cls(config, facts, connections=connections)
    return backend


def _http_engine(name: str) -> tuple[Engine, EngineFacts]:
    """The engine ``name`` spells and its facts, if synthc reaches it over HTTP."""
    try:
        engine: Engine | None = Engine(name)
    except ValueError:
        engine = None
    if engine is not None and ENGINES[engine].unsupported:
        raise EngineError(f"engine {engine} is not supported: {ENGINES[engine].unsupported}")
    if engine is None or ENGINES[engine].local:
        known = ", ".join(sorted(_http_spellings()))
        raise EngineError(f"unknown inference engine {name.upper()!r}; known engines: {known}")
    return engine, ENGINES[engine]


def _http_spellings() -> set[str]:
    return {
        spelling
        for engine, facts in ENGINES.items()
        if not facts.local and not facts.unsupported
        for spelling in (engine.name, engine.value)
    }


def _backend_class(engine: Engine) -> Any:
    """The class ``engine``'s row names, imported now."""
    facts = ENGINES[engine]
    if facts.backend is None:
        raise EngineError(f"engine {engine} is not supported: {facts.unsupported}")
    module_name, _, class_name = facts.backend.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def _endpoint_url(engine: Engine, url: str | None) -> str:
    if not url:
        raise EngineError(f"engine {engine} needs remote_params.api_url (the full endpoint URL)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EngineError(f"engine {engine}: api_url {url!r} is not an http(s) URL")
    if engine is Engine.SGLANG and parts.path.rstrip("/").endswith("/generate"):
        # oumi talks to SGLang's native /generate with a chat template applied
        # client-side; synthc uses the same server's OpenAI-compatible route.
        return urlunsplit(parts._replace(path="/v1/chat/completions"))
    return url


def resolve_api_key(
    engine: Engine, api_key: str | None, api_key_env_varname: str | None
) -> str | None:
    """The API key to use: given explicitly, else from the named variable, else the default one.

    Mirrors oumi: ``remote_params.api_key`` wins, then ``api_key_env_varname``,
    then the engine's own variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``...).
    """
    if api_key:
        return api_key
    if api_key_env_varname and os.environ.get(api_key_env_varname):
        return os.environ[api_key_env_varname]
    variable = ENGINES[engine].api_key_env
    return (os.environ.get(variable) or None) if variable else None
