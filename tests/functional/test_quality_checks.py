"""Quality gates beyond the basics: token bounds, JSON Schema, Python predicates,
retries of one attribute, near-duplicate dedup (MinHash LSH).

Every answer comes from the fake server, shaped per test from the request's digest,
so what each gate keeps is fixed by the seed; incrementality is proven by counting
the requests the server saw.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import synthc
from synthc.testing._wire import default_reply, request_digest
from synthc.testing.server import FakeLLMServer
from tests.conftest import run_cli
from tests.functional.test_quality import (
    SAMPLES,
    _bodies,
    _gated,
    _grading,
    _rows,
    change_gates,
)

Reply = Callable[[dict[str, Any]], str]


def _answers(shape: Callable[[int], str]) -> Reply:
    """Questions as usual; each answer ``shape(n)`` of a number from its request's digest."""

    def reply(body: dict[str, Any]) -> str:
        text = default_reply(body)
        if not text.startswith("reply to: reply to:"):
            return text
        return shape(int(request_digest(body), 16))

    return reply


def _validator(fields: str, attempts: int = 4) -> tuple[str, int]:
    entry = fields if "attribute:" in fields else f"attribute: answer, {fields}"
    return f"    validators:\n      - {{{entry}}}\n", attempts


def _questions(server: FakeLLMServer) -> list[dict[str, Any]]:
    return [b for b in server.requests if b["messages"][-1]["content"].startswith("Ask")]


def test_token_bounds_count_the_tokens_the_engine_reported(tmp_path: Path) -> None:
    # long words: by characters / 4 every answer would pass; by the server's count
    # (a token a word) only those of four words or more do
    reply = _answers(lambda n: " ".join(["abcdefghijklmnop"] * (n % 7 + 1)))
    with FakeLLMServer(reply=reply) as server:
        config = _gated(tmp_path / "qa.yaml", server, *_validator("min_tokens: 4"))
        result = synthc.build(config)
    rows, rejected = _rows(tmp_path / "out.jsonl"), _rows(tmp_path / "out.rejected.jsonl")
    assert rows and all(len(row["answer"].split()) >= 4 for row in rows)
    assert rejected and all(len(r["row"]["answer"].split()) < 4 for r in rejected)
    assert result.stats.rejected == {"answer: min_tokens 4": len(rejected)}


def test_a_json_schema_validator_keeps_the_replies_that_validate(tmp_path: Path) -> None:
    reply = _answers(lambda n: json.dumps({"n": n % 10}) if n % 5 else "not json")
    schema = "{type: object, required: [n], properties: {n: {type: integer, minimum: 5}}}"
    with FakeLLMServer(reply=reply) as server:
        config = _gated(tmp_path / "qa.yaml", server, *_validator(f"json_schema: {schema}", 6))
        result = synthc.build(config)
    rows, rejected = _rows(tmp_path / "out.jsonl"), _rows(tmp_path / "out.rejected.jsonl")
    assert rows and all(json.loads(row["answer"])["n"] >= 5 for row in rows)
    assert rejected and {r["gate"] for r in rejected} == {"answer: json_schema"}
    assert result.stats.rejected == {"answer: json_schema": len(rejected)}
    for refused in rejected:
        answer = refused["row"]["answer"]
        assert answer == "not json" or json.loads(answer)["n"] < 5


CHECKS = """\
def ends_even(value, row):
    return value[-1] in "02468ace"


def broken(value, row):
    raise RuntimeError("oops " + row["item"])


def fine(value, row):
    return True
"""


def test_a_python_predicate_decides_and_a_raising_one_stops_the_build(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, *_validator("predicate: checks.ends_even"))
        result = synthc.build(config)
        rows, rejected = _rows(tmp_path / "out.jsonl"), _rows(tmp_path / "out.rejected.jsonl")
        assert rows and all(row["answer"][-1] in "02468ace" for row in rows)
        assert rejected and all(r["row"]["answer"][-1] in "13579bdf" for r in rejected)
        assert result.stats.rejected == {"answer: predicate checks.ends_even": len(rejected)}

        broken = _gated(tmp_path / "qa.yaml", server, *_validator("predicate: checks.broken"))
        failed = run_cli("build", str(broken))
        since = server.count
        fine = _gated(tmp_path / "qa.yaml", server, *_validator("predicate: checks.fine"))
        again = run_cli("build", str(fine))
        assert server.count == since  # what the broken run had cached is all there
    assert failed.exit_code != 0 and "Traceback" not in failed.stderr
    assert "predicate checks.broken raised RuntimeError: oops item-" in failed.stderr
    assert "qa.yaml:" in failed.stderr
    assert again.exit_code == 0 and len(_rows(tmp_path / "out.jsonl")) == SAMPLES


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ("json_schema: {type: 12}", "not a JSON Schema"),
        ("predicate: checks.nope", "defines no function 'nope'"),
        ("attribute: item, min_tokens: 3", "min_tokens needs an attribute a model generates"),
    ],
)
def test_bad_checks_are_located_errors(tmp_path: Path, fields: str, says: str) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, *_validator(fields))
        result = run_cli("build", str(config))
        assert server.count == 0
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "qa.yaml:" in result.stderr and says in result.stderr


def test_retries_draw_the_attribute_alone_before_rejecting_the_row(tmp_path: Path) -> None:
    gate = _validator("regex: '#[0-9]', retries: 3", attempts=2)
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, *gate)
        result = synthc.build(config)
        questions = _questions(server)
        answers = server.count - len(questions)
        made = _bodies(server)
        since = server.count
        run_cli("build", str(config))
        assert server.count == since  # a rerun decides the same from the cache
    rows, rejected = _rows(tmp_path / "out.jsonl"), _rows(tmp_path / "out.rejected.jsonl")
    retried = [r for r in rejected if r.get("retried")]
    assert retried and all("#" in r["row"]["answer"] for r in retried)
    # within an attempt only the answer is drawn again: one question an attempt (a slot's
    # first, and one for each rejection that was no retry, but at a slot's last attempt)
    redrawn = sum(1 for r in rejected if not r.get("retried")) - result.stats.slots_given_up
    assert len(questions) == SAMPLES + redrawn
    assert answers == len(rows) + len(rejected)
    for r in retried:  # the retried row's question is its slot's row's (or a later draw's)
        slot = [x for x in rejected if x["slot"] == r["slot"] and x["attempt"] == r["attempt"]]
        assert len({x["row"]["question"] for x in slot}) == 1
    assert sum(made.values()) == len(made)  # no request twice


NEAR = [
    "The quick brown fox jumps over the lazy dog near the river bank today",
    "A journey of a thousand miles begins with a single step on the road",
    "Knowledge is power, and power is knowledge, said the old librarian",
    "Rain in the plains of Spain falls mainly when the wind blows west",
]


def _near_answers(n: int) -> str:
    """One of four sentences, with a last word of its own: nearly the same text."""
    return f"{NEAR[n % 4]} w{n // 4 % 1000}"


@pytest.mark.parametrize("exact_too", [False, True])
def test_near_duplicates_keep_one_row_per_sentence(tmp_path: Path, exact_too: bool) -> None:
    dedup = "[{attribute: answer, near: 0.7}" + (", answer]" if exact_too else "]")
    with FakeLLMServer(reply=_answers(_near_answers)) as server:
        config = _gated(tmp_path / "qa.yaml", server, f"    dedup: {dedup}\n", attempts=6)
        result = synthc.build(config)
    rows, rejected = _rows(tmp_path / "out.jsonl"), _rows(tmp_path / "out.rejected.jsonl")
    sentences = [row["answer"].rsplit(" ", 1)[0] for row in rows]
    assert sorted(sentences) == sorted(NEAR)  # four sentences: four rows, the rest give up
    assert result.stats.slots_given_up == SAMPLES - 4
    assert {r["gate"] for r in rejected} == {"near-dup answer (0.7)"}
    first = {s: i for i, s in reversed(list(enumerate(sentences)))}
    kept_slot = {s: int(row["item"].split("-")[1]) for s, row in zip(sentences, rows, strict=True)}
    for refused in rejected:  # each refused sentence was kept by an earlier slot
        sentence = refused["row"]["answer"].rsplit(" ", 1)[0]
        assert kept_slot[sentence] < refused["slot"] and sentence in first


def test_adding_near_dedup_redraws_only_the_near_duplicates(tmp_path: Path) -> None:
    gate = "    dedup: [{attribute: answer, near: 0.7}]\n"
    with FakeLLMServer(reply=_answers(_near_answers)) as server:
        change = change_gates(tmp_path, server, "", gate, attempts=6)
        since = server.count
        explained = synthc.explain(change.fresh)
        assert server.count == since  # explain sends nothing
    assert change.sent == change.needed - change.made and sum(change.sent.values()) > 0
    assert explained.quality is not None and explained.quality.kept == 4


def test_the_synth_quality_block_builds_what_the_yaml_builds(tmp_path: Path) -> None:
    gates = (
        "    judges:\n      - {id: verdict, rubric: 'Grade: {answer}', max_new_tokens: 64}\n"
        "    validators:\n      - {attribute: answer, regex: '#[0-9]', retries: 1}\n"
        "    filters: ['verdict.score >= 2']\n"
        "    dedup: [question, {attribute: answer, near: 0.9, shingle: 4}]\n"
    )
    with FakeLLMServer(reply=_grading) as server:
        config = _gated(tmp_path / "qa.yaml", server, gates)
        synthc.build(config)
        sent = server.count
        converted = run_cli("convert", str(config))
        assert converted.exit_code == 0, converted.stderr
        synth = tmp_path / "qa.synth"
        synth.write_text(converted.stdout.replace('"out.jsonl"', '"synth.jsonl"'))
        result = run_cli("build", str(synth))
        assert result.exit_code == 0, result.stderr
        assert server.count == sent  # the same nodes, keyed alike: all in the cache
    text = synth.read_text()
    assert "\nquality {\n  max_attempts 4\n" in text
    assert "  dedup question, answer near 0.9 shingle 4\n" in text
    assert '  filter "verdict.score >= 2"\n' in text
    assert (tmp_path / "synth.jsonl").read_bytes() == (tmp_path / "out.jsonl").read_bytes()
    assert run_cli("fmt", "--check", str(synth)).exit_code == 0
    back = run_cli("convert", str(synth)).stdout
    assert yaml.safe_load(back) == yaml.safe_load(config.read_text().replace("out.", "synth."))


def test_cache_push_carries_the_rejected_draws_a_teammate_needs(tmp_path: Path) -> None:
    gate = _validator("regex: '#[0-9]', retries: 1", attempts=3)
    shared = tmp_path / "shared"
    with FakeLLMServer() as server:
        (tmp_path / "alice").mkdir()
        alice = _gated(tmp_path / "alice" / "qa.yaml", server, *gate)
        synthc.build(alice, ["--output_path", str(tmp_path / "alice" / "out.jsonl")])
        made = server.count
        pushed = run_cli("cache", "push", str(alice), "--remote-cache", str(shared))
        assert pushed.exit_code == 0, pushed.stderr
        assert f"{shared}: pushed {made}, already there 0, failed 0" in pushed.stdout
        (tmp_path / "bob").mkdir()
        bob = _gated(tmp_path / "bob" / "qa.yaml", server, *gate)
        out = ["--output_path", str(tmp_path / "bob" / "out.jsonl")]
        built = run_cli("build", str(bob), "--remote-cache", str(shared), *out)
        assert built.exit_code == 0, built.stderr
        assert server.count == made  # every draw, rejected ones too, came from the remote
    assert (tmp_path / "bob" / "out.jsonl").read_bytes() == (
        tmp_path / "alice" / "out.jsonl"
    ).read_bytes()
    assert _rows(tmp_path / "alice" / "out.rejected.jsonl")  # there were rejected draws


def test_an_edited_predicate_is_used_by_the_next_build_in_the_same_process(
    tmp_path: Path,
) -> None:
    checks = tmp_path / "checks.py"
    checks.write_text(CHECKS)
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, *_validator("predicate: checks.ends_even"))
        first = synthc.build(config)
        checks.write_text(CHECKS.replace('in "02468ace"', 'in "0123456789abcdef"'))
        stat = checks.stat()  # a later modification time, however coarse the clock
        os.utime(checks, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        since = server.count
        second = synthc.build(config)
        assert server.count == since  # the first draws are all cached: now all pass
    assert first.stats.rejected and second.stats.rejected == {}
    assert len(_rows(tmp_path / "out.jsonl")) == SAMPLES
