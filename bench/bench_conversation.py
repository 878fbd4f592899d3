"""CPU time of one tool conversation as it grows: linear in its steps, not quadratic.

    python bench/bench_conversation.py               # 20 steps against 60
    python bench/bench_conversation.py --rounds 10 30 90

A one-sample config whose assistant turn calls a stateful executor round after
round (each round one model request and one executor call, two steps) and then
answers. The loopback model runs in its own process (this script with
``--serve``), so the figures are synthc's own: CPU seconds (user + sys) of
``synthc.build`` in this process, cold, and of a fully cached rebuild, and the
executor calls each made. A conversation that advanced by replaying itself from
the start would cost the square of its length; the ratio of the long build to the
short one says which it is (3.0 for 20 against 60 steps is linear, 9.0 quadratic).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CONFIG = """\
num_samples: 1
output_path: out.jsonl
environment_config:
  environments:
    - id: counter
      env_type: simulated
      tools:
        - id: add
          name: add
          description: Add one to the counter.
          read_only: false
          executor: counter.add
      env_kwargs:
        tool_persona: A counter.
        cache_by_input: false
        state_params: {{initial_state: {{value: 0}}}}
strategy_params:
  input_examples: [{{examples: [{{who: Ann}}]}}]
  multiturn_attributes:
    - id: chat
      min_turns: 1
      max_turns: 1
      max_consecutive_tool_turns: {limit}
      role_instruction_messages:
        USER: "You are {{who}}; ask for the counter."
        ASSISTANT: "You count up to {rounds}."
inference_config:
  engine: OPENAI
  model: {{model_name: bench-model}}
  remote_params: {{api_url: "{url}", api_key: bench, politeness_policy: 0}}
"""

EXECUTOR = """\
from synthc import ToolResult

CALLS = []


def add(arguments, state):
    CALLS.append(1)
    value = state["value"] + 1
    return ToolResult({"value": value}, {"value": value})
"""


def reply(body: dict[str, Any]) -> str | dict[str, Any]:
    """Calls ``add`` until the results since the user's message reach the count the
    assistant persona names, then answers."""
    if not body.get("tools"):
        return "Hello."
    messages = body["messages"]
    goal = int(messages[0]["content"].split()[-1].rstrip("."))
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    done = sum(1 for m in messages[last_user:] if m["role"] == "tool")
    if done < goal:
        return {"tool_calls": [{"name": "add", "arguments": {}}]}
    return "Done."


def serve() -> None:
    from synthc.testing.server import FakeLLMServer

    with FakeLLMServer(reply=reply, record=False) as server:
        print(server.url("/v1/chat/completions"), flush=True)
        sys.stdin.read()  # until the bench closes it


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(rounds: int, url: str, root: Path, repeats: int) -> dict[str, float]:
    """The median CPU of ``repeats`` cold builds (each with a fresh cache) and of a cached
    rebuild after each, with the executor calls each made."""
    import statistics

    import synthc

    work = root / f"r{rounds}"
    work.mkdir(parents=True)
    (work / "counter.py").write_text(EXECUTOR)
    config = work / "conversation.yaml"
    config.write_text(CONFIG.format(rounds=rounds, limit=rounds + 1, url=url))
    synthc.compile(config)  # imports outside the timing
    samples: dict[str, list[float]] = {"cold": [], "cached": []}
    calls: dict[str, float] = {}
    for attempt in range(repeats):
        for label in ("cold", "cached"):
            started = cpu()
            result = synthc.build(config, cache_dir=str(work / f"cache{attempt}"))
            samples[label].append(cpu() - started)
            calls[f"{label}_executor_calls"] = result.stats.tool_calls
            assert result.ok, result.stats.failures
    return {**{k: statistics.median(v) for k, v in samples.items()}, **calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--repeats", type=int, default=7, help="builds per size (median)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory() as root:
            measure(3, url, Path(root) / "warm-up", 1)  # a first build loads what builds use
            results = {r: measure(r, url, Path(root), args.repeats) for r in args.rounds}
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait()
    base = args.rounds[0]
    for rounds, figures in results.items():
        steps = 2 * rounds
        ratio = figures["cold"] / results[base]["cold"]
        print(
            f"{steps:4d} steps: cold {figures['cold']:.3f} s CPU "
            f"({figures['cold'] / steps * 1000:.2f} ms/step, "
            f"{figures['cold_executor_calls']:.0f} executor calls), "
            f"cached {figures['cached']:.3f} s ({figures['cached_executor_calls']:.0f} calls); "
            f"x{ratio:.2f} the {2 * base}-step build for x{rounds / base:.1f} the steps"
        )
    print(json.dumps({str(2 * r): f for r, f in results.items()}))


if __name__ == "__main__":
    main()
