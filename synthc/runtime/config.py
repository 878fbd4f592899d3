"""Runtime settings derived from a spec: which endpoint to talk to and how politely.

Nothing here enters a node key: these decide how requests are sent, not what
comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EndpointConfig:
    """Where and how to reach one inference engine."""

    engine: str  # oumi engine name: OPENAI, ANTHROPIC, REMOTE, REMOTE_VLLM, SGLANG, ...
    model: str
    api_url: str | None = None  # the full endpoint URL, as oumi writes it
    api_key: str | None = field(default=None, repr=False)
    connection_timeout: float = 300.0


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
