"""What the reliability tests share: configs sized for them, the real CLI in a subprocess,
and a look at the cache directory from outside synthc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import diskcache

from synthc.testing.server import FakeLLMServer

CONFIG = """\
num_samples: {samples}
output_path: {output}
strategy_params:
  input_examples:
    - examples: [{items}]
  generated_attributes:
    - id: question
      instruction_messages:
        - {{role: USER, content: "Ask something about {{item}}."}}
    - id: answer
      instruction_messages:
        - {{role: USER, content: "{{question}}"}}
inference_config:
  model: {{model_name: {model}}}
  engine: {engine}
  generation: {{temperature: {temperature}}}
  remote_params:
    num_workers: {workers}
    max_retries: {retries}
    retry_backoff_base: 0.01
    retry_backoff_max: 0.05
{remote}    api_url: {url}
{extra}"""


def write_config(
    path: Path,
    server: FakeLLMServer,
    *,
    samples: int,
    workers: int = 8,
    retries: int = 4,
    output: str = "out.jsonl",
    first_item: int = 0,
    extra: str = "",
    remote: dict[str, Any] | None = None,
    temperature: float = 0.7,
    engine: str = "REMOTE",
    model: str = "m",
    route: str = "/v1/chat/completions",
) -> Path:
    """A two-step config (question, then answer): ``2 * samples`` LLM requests, to
    ``engine`` at ``server``'s ``route``."""
    items = ", ".join(f"{{item: item-{i}}}" for i in range(first_item, first_item + samples))
    path.write_text(
        CONFIG.format(
            samples=samples,
            output=output,
            items=items,
            workers=workers,
            retries=retries,
            url=server.url(route),
            extra=extra,
            temperature=temperature,
            engine=engine,
            model=model,
            remote="".join(f"    {name}: {value}\n" for name, value in (remote or {}).items()),
        )
    )
    return path


def synthc_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "synthc", *args]


def interruptible_command(*args: str) -> list[str]:
    """``synthc ARGS`` for a build a test will Ctrl-C: a shell's background job (``cmd &``)
    starts its children with SIGINT ignored, and Python then never raises
    KeyboardInterrupt; this build hears SIGINT as a user's terminal sends it."""
    start = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('synthc', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", start, *args]


def run_synthc(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``synthc ARGS`` in a fresh process, as a user runs it."""
    return subprocess.run(
        synthc_command(*args),
        cwd=cwd,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cached_keys(directory: Path) -> set[str]:
    """The keys the diskcache at ``directory`` holds, read without synthc."""
    with diskcache.Cache(str(directory)) as cache:
        return {key for key in cache.iterkeys() if isinstance(key, str)}


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def leftovers(directory: Path, name: str) -> list[str]:
    """Temporary files an interrupted write of ``name`` left in ``directory``."""
    return sorted(p.name for p in directory.glob(f".{name}.*.tmp"))
