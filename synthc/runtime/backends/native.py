"""Run chat requests in-process with transformers and torch: Requests in, Completions out.

This is oumi's ``NATIVE`` engine. Requests in a batch are generated together
(left-padded, one forward pass per step for the whole batch), and each row
samples with its own ``torch.Generator`` seeded with the request's draw seed,
so a request's draw depends on its seed, not on the global RNG. Weights load
from a local directory, a GGUF file (dequantised by transformers) or a hub name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synthc.core.errors import EngineError
from synthc.core.messages import Completion, Outcome, Request, Usage
from synthc.runtime.config import LocalModelConfig

DTYPES = {"auto": None, "float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def load_model(config: LocalModelConfig) -> tuple[Any, Any]:
    """(tokenizer, model) for ``config``: a directory, a GGUF file, or a hub name.

    The last model loaded stays in memory, so building again in the same process
    (a notebook, a test suite) does not dequantise the same weights twice.
    """
    key = json.dumps([config.name, str(config.path), config.options], sort_keys=True, default=str)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = _load(config)
    return _LOADED[key]


_LOADED: dict[str, tuple[Any, Any]] = {}


def _load(config: LocalModelConfig) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    options = config.options
    kwargs: dict[str, Any] = {"trust_remote_code": bool(options.get("trust_remote_code", False))}
    if options.get("model_revision"):
        kwargs["revision"] = options["model_revision"]
    source: str | Path = config.path or config.name
    if config.path is not None and config.path.suffix == ".gguf":
        source, kwargs["gguf_file"] = config.path.parent, config.path.name
    tokenizer_source = options.get("tokenizer_name") or source
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=_dtype(options), **kwargs)
    except (OSError, ValueError) as exc:
        raise EngineError(f"transformers cannot load {config.name}: {exc}") from None
    if options.get("chat_template"):
        tokenizer.chat_template = options["chat_template"]
    return tokenizer, model


def _dtype(options: dict[str, Any]) -> Any:
    import torch

    name = DTYPES.get(str(options.get("torch_dtype_str", "auto")))
    return getattr(torch, name) if name else torch.float32


class TransformersBackend:
    max_batch = 8

    def __init__(self, config: LocalModelConfig):
        import torch

        self.torch = torch
        self.tokenizer, self.model = load_model(config)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.name = config.name

    async def generate(self, requests: Sequence[Request]) -> list[Outcome]:
        return await asyncio.to_thread(self._generate, list(requests))

    def _generate(self, requests: list[Request]) -> list[Outcome]:
        torch = self.torch
        prompts = [
            self.tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in r.messages],
                tokenize=False,
                add_generation_prompt=True,
            )
            for r in requests
        ]
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            tokens = _SamplingLoop(self, requests, batch).run()
        outcomes: list[Outcome] = []
        for request, row, prompt_len in zip(
            requests, tokens, batch["attention_mask"].sum(1).tolist(), strict=True
        ):
            text, reason = _finish(
                self.tokenizer.decode(row, skip_special_tokens=True), request, len(row)
            )
            outcomes.append(Completion(text, self.name, Usage(int(prompt_len), len(row)), reason))
        return outcomes

    async def aclose(self) -> None:
        pass  # the model stays loaded for the next build in this process (see load_model)


def _finish(text: str, request: Request, produced: int) -> tuple[str, str]:
    """Cut ``text`` at the first stop string; say why generation ended."""
    for stop in request.params.get("stop_strings") or ():
        at = text.find(stop)
        if at != -1:
            return text[:at], "stop"
    limit = int(request.params.get("max_new_tokens", 1024))
    return text, "length" if produced >= limit else "stop"


class _SamplingLoop:
    """Token-by-token generation for a batch, each row with its own generator and limits."""

    def __init__(self, backend: TransformersBackend, requests: list[Request], batch: Any):
        torch = backend.torch
        self.torch = torch
        self.model = backend.model
        self.eos = _eos_ids(backend)
        self.requests = requests
        self.ids = batch["input_ids"].to(backend.device)
        self.mask = batch["attention_mask"].to(backend.device)
        self.limits = [int(r.params.get("max_new_tokens", 1024)) for r in requests]
        self.generators = [
            torch.Generator(device=backend.device).manual_seed(
                int(r.seed or r.params.get("seed") or 0)
            )
            for r in requests
        ]
        self.out: list[list[int]] = [[] for _ in requests]
        self.done = [False] * len(requests)

    def run(self) -> list[list[int]]:
        torch = self.torch
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        step_ids, past = self.ids, None
        for _ in range(max(self.limits)):
            out = self.model(
                input_ids=step_ids,
                attention_mask=self.mask,
                position_ids=positions,
                past_key_values=past,
                use_cache=True,
            )
            past = out.past_key_values
            chosen = [
                self._pick(i, out.logits[i, -1, :].float()) for i in range(len(self.requests))
            ]
            if all(self.done):
                break
            step_ids = torch.tensor(chosen, device=self.ids.device).unsqueeze(1)
            self.mask = torch.cat([self.mask, torch.ones_like(step_ids)], dim=1)
            positions = positions[:, -1:] + 1
        return self.out

    def _pick(self, row: int, logits: Any) -> int:
        if self.done[row]:
            return self.eos[0]
        token = _sample(self.torch, logits, self.requests[row].params, self.generators[row])
        if token in self.eos:
            self.done[row] = True
        else:
            self.out[row].append(token)
            self.done[row] = len(self.out[row]) >= self.limits[row]
        return token


def _eos_ids(backend: TransformersBackend) -> list[int]:
    eos = backend.model.generation_config.eos_token_id
    if eos is None:
        eos = backend.tokenizer.eos_token_id
    return list(eos) if isinstance(eos, (list, tuple)) else [int(eos)]


def _sample(torch: Any, logits: Any, params: dict[str, Any], generator: Any) -> int:
    """Greedy at temperature 0; else temperature, then top_p and min_p, then one draw."""
    temperature = float(params.get("temperature", 0.0))
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    top_p = float(params.get("top_p", 1.0))
    if top_p < 1.0:
        ordered, order = torch.sort(probs, descending=True)
        outside = ordered.cumsum(-1) - ordered > top_p
        probs[order[outside]] = 0.0
    min_p = float(params.get("min_p", 0.0))
    if min_p > 0:
        probs[probs < min_p * probs.max()] = 0.0
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
