"""Turn an endpoint config (oumi engine name, model, URL, key) into a ready backend.

The registry is a table, not an if-chain: each oumi engine name maps to the
backend class that speaks its protocol (``"module:Class"``, imported only when
used) and to the engine's defaults (endpoint URL, API-key variable, how it
names the max-tokens field). Every OpenAI-compatible service shares
:class:`~synthc.runtime.backends.openai_compat.OpenAICompatBackend`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from synthc.core.errors import EngineError
from synthc.runtime.config import EndpointConfig, LocalModelConfig
from synthc.runtime.protocol import Backend

__all__ = [
    "BACKENDS",
    "ENGINE_DEFAULTS",
    "LOCAL_BACKENDS",
    "UNSUPPORTED_ENGINES",
    "EngineDefaults",
    "create_backend",
    "create_local_backend",
    "resolve_api_key",
]

_OPENAI = "synthc.runtime.backends.openai_compat:OpenAICompatBackend"
_ANTHROPIC = "synthc.runtime.backends.anthropic:AnthropicBackend"


@dataclass(frozen=True)
class EngineDefaults:
    """What an engine needs when the config does not say."""

    backend: str  # "module:Class", imported on first use
    api_url: str | None  # default full endpoint URL; None: the config must give one
    api_key_env: str | None  # environment variable holding the key
    key_required: bool = False  # hosted APIs refuse requests without a key
    max_tokens_field: str = "max_tokens"  # OpenAI itself wants "max_completion_tokens"
    min_p: bool = False  # whether the server accepts ``min_p``


def _hosted(url: str | None, env: str | None, **kw: Any) -> EngineDefaults:
    return EngineDefaults(_OPENAI, url, env, key_required=True, **kw)


def _server(url: str | None) -> EngineDefaults:
    return EngineDefaults(_OPENAI, url, None, min_p=True)


_GEMINI = _hosted(
    "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
    "GEMINI_API_KEY",
    max_tokens_field="max_completion_tokens",
)

ENGINE_DEFAULTS: dict[str, EngineDefaults] = {
    "OPENAI": _hosted(
        "https://api.openai.com/v1/chat/completions",
        "OPENAI_API_KEY",
        max_tokens_field="max_completion_tokens",
    ),
    "ANTHROPIC": EngineDefaults(
        _ANTHROPIC, "https://api.anthropic.com/v1/messages", "ANTHROPIC_API_KEY", True
    ),
    "GOOGLE_GEMINI": _GEMINI,
    "GEMINI": _GEMINI,  # the enum's value; oumi YAML usually spells the name
    # Vertex AI's OpenAI-compatible endpoint: the URL names project and region,
    # and the key is an access token (``gcloud auth print-access-token``).
    "GOOGLE_VERTEX": _hosted(None, None, max_tokens_field="max_completion_tokens"),
    "DEEPSEEK": _hosted("https://api.deepseek.com/v1/chat/completions", "DEEPSEEK_API_KEY"),
    "FIREWORKS": _hosted(
        "https://api.fireworks.ai/inference/v1/chat/completions", "FIREWORKS_API_KEY", min_p=True
    ),
    "LAMBDA": _hosted("https://api.lambda.ai/v1/chat/completions", "LAMBDA_API_KEY"),
    "OPENROUTER": _hosted("https://openrouter.ai/api/v1/chat/completions", "OPENROUTER_API_KEY"),
    "CEREBRAS": _hosted("https://api.cerebras.ai/v1/chat/completions", "CEREBRAS_API_KEY"),
    "HUGGING_FACE_ROUTER": _hosted("https://router.huggingface.co/v1/chat/completions", "HF_TOKEN"),
    "PARASAIL": _hosted("https://api.parasail.com/v1/chat/completions", "PARASAIL_API_KEY"),
    "SAMBANOVA": _hosted("https://api.sambanova.ai/v1/chat/completions", "SAMBANOVA_API_KEY"),
    "TOGETHER": _hosted(
        "https://api.together.xyz/v1/chat/completions", "TOGETHER_API_KEY", min_p=True
    ),
    "REMOTE": _server(None),
    "REMOTE_VLLM": _server("http://localhost:8000/v1/chat/completions"),
    "SGLANG": _server("http://localhost:30000/v1/chat/completions"),
}

BACKENDS: dict[str, str] = {name: d.backend for name, d in ENGINE_DEFAULTS.items()}

UNSUPPORTED_ENGINES: dict[str, str] = {
    "BEDROCK": "AWS request signing is not implemented",
}

# In-process engines: the model runs inside synthc; imported only when used.
LOCAL_BACKENDS: dict[str, str] = {
    "LLAMACPP": "synthc.runtime.backends.llamacpp:LlamaCppBackend",
    "NATIVE": "synthc.runtime.backends.native:TransformersBackend",
    "VLLM": "synthc.runtime.backends.vllm_local:VLLMBackend",
}


def create_local_backend(config: LocalModelConfig) -> Backend:
    """Load ``config``'s model into the engine that runs it in this process."""
    module_name, _, class_name = LOCAL_BACKENDS[config.engine].partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise EngineError(f"cannot load engine {config.engine}: {exc}") from None
    backend: Backend = cls(config)
    return backend


def create_backend(config: EndpointConfig, *, connections: int = 100) -> Backend:
    """The backend for ``config.engine``, with the engine's default URL and key filled in.

    ``connections`` caps the backend's HTTP connection pool; the runtime sizes it
    to ``num_workers``. Raises :class:`EngineError` for an unknown or unusable engine.
    """
    engine = config.engine.upper()
    defaults = _defaults(engine)
    url = _endpoint_url(engine, config.api_url or defaults.api_url)
    key = config.api_key or resolve_api_key(engine, None, None)
    if defaults.key_required and not key:
        where = f"set {defaults.api_key_env} or " if defaults.api_key_env else ""
        raise EngineError(f"no API key for engine {engine}: {where}set remote_params.api_key")
    config = replace(config, engine=engine, api_url=url, api_key=key)
    module_name, _, class_name = defaults.backend.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:  # pragma: no cover - only with a broken install
        raise EngineError(f"cannot load the backend for engine {engine}: {exc}") from exc
    backend: Backend = cls(config, defaults, connections=connections)
    return backend


def _defaults(engine: str) -> EngineDefaults:
    if engine in UNSUPPORTED_ENGINES:
        raise EngineError(f"engine {engine} is not supported: {UNSUPPORTED_ENGINES[engine]}")
    defaults = ENGINE_DEFAULTS.get(engine)
    if defaults is None:
        known = ", ".join(sorted(ENGINE_DEFAULTS))
        raise EngineError(f"unknown inference engine {engine!r}; known engines: {known}")
    return defaults


def _endpoint_url(engine: str, url: str | None) -> str:
    if not url:
        raise EngineError(f"engine {engine} needs remote_params.api_url (the full endpoint URL)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EngineError(f"engine {engine}: api_url {url!r} is not an http(s) URL")
    if engine == "SGLANG" and parts.path.rstrip("/").endswith("/generate"):
        # oumi talks to SGLang's native /generate with a chat template applied
        # client-side; synthc uses the same server's OpenAI-compatible route.
        return urlunsplit(parts._replace(path="/v1/chat/completions"))
    return url


def resolve_api_key(
    engine: str, api_key: str | None, api_key_env_varname: str | None
) -> str | None:
    """The API key to use: given explicitly, else from the named variable, else the default one.

    Mirrors oumi: ``remote_params.api_key`` wins, then ``api_key_env_varname``,
    then the engine's own variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``...).
    """
    if api_key:
        return api_key
    if api_key_env_varname and os.environ.get(api_key_env_varname):
        return os.environ[api_key_env_varname]
    defaults = ENGINE_DEFAULTS.get(engine.upper())
    if defaults is not None and defaults.api_key_env:
        return os.environ.get(defaults.api_key_env) or None
    return None
