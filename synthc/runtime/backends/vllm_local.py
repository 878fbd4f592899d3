"""Run chat requests in-process with vLLM: a wave of Requests in, one ``LLM.chat``, Completions out.

The dispatcher hands this backend every request that is ready at once (up to
``max_batch``); they go to vLLM in a single ``LLM.chat`` call with one
``SamplingParams`` per request, carrying the node's draw seed. vLLM wants
Hugging Face-format weights: a GGUF file (the embedded default model) is
first written out as a Hugging Face copy by transformers, cached under
``~/.cache/synthc/models`` keyed by the file's content hash.

Tools: ``LLM.chat`` takes one ``tools`` list per call, so a wave is one call per
distinct tool list (one call when no request has tools). Messages go to the
chat template in OpenAI's format, tool calls and tool results included. When a
request offers tools, the generated text is read for Hermes-style calls
(``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, the format of
the Qwen, Hermes and SmolLM3 templates); the text outside the tags is the reply.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xxhash

from synthc.core.errors import EngineError
from synthc.core.messages import Completion, Message, Outcome, Request, ToolCall, Usage
from synthc.runtime.config import LocalModelConfig

log = logging.getLogger("synthc.engine.vllm")

ENGINE_OPTIONS = (
    "max_model_len",
    "tensor_parallel_size",
    "gpu_memory_utilization",
    "enforce_eager",
    "max_num_seqs",
    "swap_space",
    "cpu_offload_gb",
    "quantization",
)


class VLLMBackend:
    max_batch = 4096

    def __init__(self, config: LocalModelConfig):
        self.llm = engine_for(config)
        self.name = config.name
        self.chat_calls = 0  # one per wave: what tests and benchmarks check

    async def generate(self, requests: Sequence[Request]) -> list[Outcome]:
        return await asyncio.to_thread(self._generate, list(requests))

    def _generate(self, requests: list[Request]) -> list[Outcome]:
        """One ``LLM.chat`` call per distinct tool list, outcomes back in request order."""
        groups: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            key = json.dumps(request.params.get("tools") or None, sort_keys=True)
            groups.setdefault(key, []).append(i)
        outcomes: list[Outcome | None] = [None] * len(requests)
        for indexes in groups.values():
            batch = [requests[i] for i in indexes]
            for i, outcome in zip(indexes, self._chat(batch), strict=True):
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def _chat(self, requests: list[Request]) -> list[Outcome]:
        """One ``LLM.chat`` call for requests that offer the same tools (or none)."""
        conversations = [[chat_message(m) for m in r.messages] for r in requests]
        params = [sampling_params(r) for r in requests]
        tools = requests[0].params.get("tools") or None
        self.chat_calls += 1
        log.info("LLM.chat: %d requests, seeds %s", len(requests), [p.seed for p in params])
        started = time.perf_counter()
        extra = {"tools": tools} if tools else {}
        results = self.llm.chat(conversations, sampling_params=params, use_tqdm=False, **extra)
        log.debug("LLM.chat took %.2f s", time.perf_counter() - started)
        outcomes: list[Outcome] = []
        for result in results:
            output = result.outputs[0]
            usage = Usage(len(result.prompt_token_ids or ()), len(output.token_ids))
            context = json.dumps(conversations[len(outcomes)])
            text, calls = parse_tool_calls(output.text, context) if tools else (output.text, ())
            reason = "tool_calls" if calls else output.finish_reason
            outcomes.append(Completion(text, self.name, usage, reason, tool_calls=calls))
        return outcomes

    async def aclose(self) -> None:
        pass  # the engine stays up for the next build in this process (see engine_for)


def chat_message(message: Message) -> dict[str, Any]:
    """A message in the OpenAI chat format ``LLM.chat`` renders with the model's template.

    Content stays a string even beside tool calls: templates that know nothing of
    tools concatenate it (``'...' + message['content']``) and fail on ``None``.
    """
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wired: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wired["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return wired


_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


def parse_tool_calls(text: str, context: str = "") -> tuple[str, tuple[ToolCall, ...]]:
    """The reply text outside ``<tool_call>`` tags, and the calls inside them.

    Each tag holds ``{"name": ..., "arguments": {...}}`` (``parameters`` is read too);
    an unclosed last tag (generation stopped) counts. If any tag does not hold such
    an object, nothing is a call and the whole text is the reply, as vLLM's own Hermes
    parser does. Ids are ``call_<index>_<hash of context and text>`` (``context``: the
    conversation the text answers): the same generation gets the same ids, so a cached
    conversation replays identically, and a call repeated later in it gets new ones.
    """
    bodies = _TOOL_CALL.findall(text)
    if not bodies:
        return text, ()
    digest = xxhash.xxh64_hexdigest((context + text).encode())[:8]
    calls = []
    for index, body in enumerate(bodies):
        call = _hermes_call(body)
        if call is None:
            return text, ()
        name, arguments = call
        calls.append(ToolCall(f"call_{index}_{digest}", name, arguments))
    return _TOOL_CALL.sub("", text).strip(), tuple(calls)


def _hermes_call(body: str) -> tuple[str, str] | None:
    """``(name, JSON arguments)`` from one tag's JSON, or None if it is not a call."""
    try:
        value = json.loads(body.strip())
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", value.get("parameters"))
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        return value["name"], arguments
    return value["name"], json.dumps(arguments, ensure_ascii=False)


_ENGINES: dict[str, Any] = {}


def shutdown_engines() -> None:
    """Stop the engine kept for reuse (it would otherwise stop at interpreter exit)."""
    while _ENGINES:
        _, llm = _ENGINES.popitem()
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()  # vLLM's client to its engine-core process
        del llm


def engine_for(config: LocalModelConfig) -> Any:
    """The ``vllm.LLM`` for ``config``, started once per process: a second build in the
    same process (a notebook, a test suite) reuses it instead of paying start-up and
    shutdown again. It shuts down with the process."""
    from vllm import LLM

    key = json.dumps([config.name, str(config.path), config.options], sort_keys=True, default=str)
    if key in _ENGINES:
        return _ENGINES[key]
    shutdown_engines()
    atexit.register(shutdown_engines)  # before logging's own exit handler runs
    options = config.options
    kwargs: dict[str, Any] = {k: options[k] for k in ENGINE_OPTIONS if k in options}
    if options.get("model_max_length") and "max_model_len" not in kwargs:
        kwargs["max_model_len"] = int(options["model_max_length"])
    try:
        _ENGINES[key] = LLM(
            model=str(hf_weights(config)),
            dtype=str(options.get("torch_dtype_str", "auto")),
            trust_remote_code=bool(options.get("trust_remote_code")),
            revision=options.get("model_revision"),
            seed=0,
            **kwargs,
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise EngineError(f"vLLM cannot load {config.name}: {exc}") from None
    return _ENGINES[key]


def sampling_params(request: Request) -> Any:
    """vLLM's SamplingParams for one request: its seed, temperature, top_p, limits, stops."""
    from vllm import SamplingParams

    p = request.params
    kwargs: dict[str, Any] = {
        "n": 1,
        "temperature": float(p.get("temperature", 0.0)),
        "top_p": float(p.get("top_p", 1.0)),
        "min_p": float(p.get("min_p", 0.0)),
        "max_tokens": int(p.get("max_new_tokens", 1024)),
        "stop": list(p.get("stop_strings") or []) or None,
        "seed": request.seed if request.seed is not None else p.get("seed"),
        "frequency_penalty": float(p.get("frequency_penalty", 0.0)),
        "presence_penalty": float(p.get("presence_penalty", 0.0)),
    }
    guided = (p.get("guided_decoding") or {}).get("json")
    if guided is not None:
        kwargs.update(_json_constraint(guided))
    return SamplingParams(**kwargs)


def _json_constraint(schema: Any) -> dict[str, Any]:
    try:  # vLLM >= 0.11
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


def hf_weights(config: LocalModelConfig) -> Path | str:
    """A Hugging Face-format model vLLM can load: as given, or written from a GGUF file."""
    if config.path is None:
        return config.name
    if config.path.suffix != ".gguf":
        return config.path
    from synthc.compiler.resolve import content_hash

    target = models_dir() / f"{config.path.stem}-{content_hash(config.path)[:16]}"
    if not (target / "config.json").exists():
        write_hf_copy(config, target)
    return target


def models_dir() -> Path:
    from synthc.compiler.resolve import user_cache_dir

    return user_cache_dir() / "models"


def write_hf_copy(config: LocalModelConfig, target: Path) -> None:
    """Dequantise a GGUF model with transformers and save it in Hugging Face format."""
    from synthc.runtime.backends.native import load_model

    tokenizer, model = load_model(config)
    # transformers dequantised the GGUF tensors on load, but still marks the model as
    # GGUF-quantised, which it refuses to save; the weights in memory are plain floats.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    os.replace(partial, target)
