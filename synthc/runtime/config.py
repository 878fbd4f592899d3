"""Runtime settings derived from a spec: which endpoint to talk to and how politely.

Nothing here enters a node key: these decide how requests are sent, not what
comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthc.compiler.engines import Engine


@dataclass(frozen=True)
class EndpointConfig:
    """Where and how to reach one inference engine."""

    engine: Engine  # OPENAI, ANTHROPIC, REMOTE, REMOTE_VLLM, SGLANG, ...
    model: str
    api_url: str | None = None  # the full endpoint URL, as oumi writes it
    api_key: str | None = field(default=None, repr=False)
    connection_timeout: float = 300.0
    user_id: str | None = None  # Anthropic's metadata.user_id
    prompt_cache_ttl: str | None = None  # Anthropic's prompt cache lifetime


@dataclass(frozen=True)
class Limits:
    """Concurrency, pacing and retry policy for one endpoint (oumi's remote_params)."""

    num_workers: int = 1
    politeness_policy: float = 0.0  # seconds each worker waits after a request
    max_retries: int = 3
    retry_backoff_base: float = 1.0
    retry_backoff_max: float = 30.0
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None


@dataclass(frozen=True)
class LocalModelConfig:
    """An in-process engine and the weights it loads.

    ``options`` carries oumi's model knobs (``torch_dtype_str``,
    ``model_max_length``, ``trust_remote_code``, ``tokenizer_name``,
    ``chat_template``) and engine-specific ones from ``model_kwargs``
    (``n_ctx``, ``n_threads``, ``gpu_memory_utilization``, ``tensor_parallel_size``...).
    """

    engine: Engine  # LLAMACPP, NATIVE or VLLM
    name: str  # as the config wrote it
    path: Path | None  # local weights; None: a hub name the engine resolves itself
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else self.name
