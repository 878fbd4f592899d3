"""Run chat requests on a GGUF model in-process with llama.cpp: Requests in, Completions out.

The chat template comes from the GGUF file itself. Each request carries its
own sampling seed (the node's draw seed), so two samples with identical
prompts at temperature > 0 get separate draws and a request reproduces.
Generation runs in a worker thread; llama.cpp releases the GIL while it computes.
``guided_decoding: {json: schema}`` (the multiturn planner's) constrains the
output to the schema with llama.cpp's JSON grammar. :func:`prompt_counter` counts a
prompt's tokens as the model will, for explain's estimates.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synthc.core.errors import EngineError
from synthc.core.messages import Completion, Message, Outcome, Request, RequestFailure, Usage
from synthc.runtime.config import LocalModelConfig

DEFAULT_CONTEXT = 2048
DEFAULT_TOP_K = 40


class LlamaCppBackend:
    """One ``llama_cpp.Llama`` instance; requests in a batch run one after another."""

    max_batch = 16

    def __init__(self, config: LocalModelConfig):
        import llama_cpp

        if config.path is None or not config.path.is_file():
            raise EngineError(f"engine LLAMACPP needs a local .gguf file, got {config.name!r}")
        options = config.options
        threads = options.get("n_threads") or max(1, (os.cpu_count() or 2))
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(config.path),
                n_ctx=int(
                    options.get("n_ctx") or options.get("model_max_length") or DEFAULT_CONTEXT
                ),
                n_threads=int(threads),
                n_batch=int(options.get("n_batch", 512)),
                chat_format=options.get("chat_format"),
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise EngineError(f"llama.cpp cannot load {config.path.name}: {exc}") from None
        self.name = config.name

    async def generate(self, requests: Sequence[Request]) -> list[Outcome]:
        return await asyncio.to_thread(self._generate_all, list(requests))

    def _generate_all(self, requests: list[Request]) -> list[Outcome]:
        return [self._generate(request) for request in requests]

    def _generate(self, request: Request) -> Outcome:
        params = request.params
        # Evaluate the whole prompt afresh: llama.cpp would reuse the previous request's
        # prefix, and the same prompt computed in other pieces gives other logits, so an
        # answer would depend on which request ran before it, not on its key alone.
        self.llm.reset()
        try:
            reply: Any = self.llm.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in request.messages],
                temperature=float(params.get("temperature", 0.0)),
                top_p=float(params.get("top_p", 1.0)),
                # oumi has no top_k; llama.cpp's default of 40 keeps sampling fast (the whole
                # vocabulary, top_k 0, is several times slower). model_kwargs.top_k overrides.
                top_k=int(params.get("top_k", DEFAULT_TOP_K)),
                min_p=float(params.get("min_p", 0.0)),
                max_tokens=int(params.get("max_new_tokens", 1024)),
                stop=list(params.get("stop_strings") or []),
                seed=request.seed if request.seed is not None else params.get("seed", 0),
                frequency_penalty=float(params.get("frequency_penalty", 0.0)),
                presence_penalty=float(params.get("presence_penalty", 0.0)),
                repeat_penalty=float(params.get("repeat_penalty", 1.0)),
                response_format=_response_format(params.get("guided_decoding")),
            )
        except (ValueError, RuntimeError) as exc:  # e.g. the prompt exceeds n_ctx
            return RequestFailure(f"llama.cpp: {exc}", retryable=False)
        choice = reply["choices"][0]
        usage = reply.get("usage") or {}
        return Completion(
            text=choice["message"]["content"] or "",
            model=self.name,
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
        )

    async def aclose(self) -> None:
        close = getattr(self.llm, "close", None)
        if close is not None:
            close()


def _response_format(guided: Any) -> dict[str, Any] | None:
    """oumi's ``guided_decoding: {json: <schema>}`` as llama.cpp's grammar-constrained JSON."""
    if not isinstance(guided, dict) or guided.get("json") is None:
        return None
    schema = guided["json"]
    return {"type": "json_object", **({"schema": schema} if isinstance(schema, dict) else {})}


def prompt_counter(path: Path) -> Callable[[Sequence[Message]], int]:
    """How many tokens a request's prompt takes on the GGUF model at ``path``, chat
    template included, as llama.cpp counts them when it answers; reads the file's
    vocabulary and template only (a fraction of a second), not its weights."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    with suppress_stdout_stderr(disable=False):  # llama.cpp's C logging about the context
        vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    template = vocab.metadata.get("tokenizer.chat_template")
    if not template:
        raise EngineError(f"{path.name} has no chat template")
    token = vocab._model.token_get_text

    def text(token_id: int) -> str:
        return token(token_id) if token_id != -1 else ""

    formatter = Jinja2ChatFormatter(
        template=template, eos_token=text(vocab.token_eos()), bos_token=text(vocab.token_bos())
    )

    def count(messages: Sequence[Message]) -> int:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        formatted = formatter(messages=chat)
        prompt = formatted.prompt.encode("utf-8")
        return len(vocab.tokenize(prompt, add_bos=not formatted.added_special, special=True))

    return count
