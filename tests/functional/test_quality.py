"""Quality gates (synthc.quality): validators and filters, rejected slots drawn again.

The fake server's answers end with ``#`` and a hex digest of the request, so a
regular expression on that digit keeps a known share of the answers (``#[0-9]``:
10 in 16) and every outcome is fixed by the seed. The point of doing it in synthc
is incrementality, proven by request counts: a gate decides which rows are kept,
never what a node sends, so changing it sends only the draws that were never made.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import synthc
from synthc.testing._wire import default_reply, request_digest, response_schema
from synthc.testing.server import FakeLLMServer
from tests.conftest import run_cli
from tests.reliability.helpers import write_config

SAMPLES = 12


def _gated(path: Path, server: FakeLLMServer, gates: str, attempts: int = 4) -> Path:
    extra = f"synthc:\n  quality:\n    max_attempts: {attempts}\n{gates}"
    return write_config(path, server, samples=SAMPLES, extra=extra)


def _regex(pattern: str) -> str:
    return f"    validators:\n      - {{attribute: answer, regex: '{pattern}'}}\n"


def _bodies(server: FakeLLMServer, since: int = 0) -> Counter[str]:
    return Counter(json.dumps(b, sort_keys=True) for b in server.requests[since:])


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rejected_slots_are_drawn_again_until_a_row_passes(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, _regex("#[0-9]"))
        result = synthc.build(config)
        sent = server.count
    rejected = _rows(tmp_path / "out.rejected.jsonl")
    rows = _rows(tmp_path / "out.jsonl")
    assert rejected and all(not re.search("#[0-9]", r["row"]["answer"]) for r in rejected)
    assert all(r["gate"] == "answer: regex '#[0-9]'" for r in rejected)
    kept = SAMPLES - result.stats.slots_given_up
    assert len(rows) == kept == result.stats.samples_written
    assert all(re.search("#[0-9]", row["answer"]) for row in rows)
    # every attempt made its two requests: the kept rows' and the rejected ones'
    assert sent == 2 * (len(rows) + len(rejected))
    assert result.stats.rejected == {"answer: regex '#[0-9]'": len(rejected)}
    # slot order, and each later attempt draws anew: no rejected answer is repeated
    assert [r["slot"] for r in rejected] == sorted(r["slot"] for r in rejected)
    assert len({r["row"]["answer"] for r in rejected}) == len(rejected)


def test_the_same_seed_gives_the_same_rows_byte_for_byte(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        outputs = []
        for run in ("a", "b"):
            (tmp_path / run).mkdir()
            config = _gated(tmp_path / run / "qa.yaml", server, _regex("#[0-9]"))
            synthc.build(config, ["--output_path", str(tmp_path / run / "out.jsonl")])
            outputs.append((tmp_path / run / "out.jsonl").read_bytes())
    assert outputs[0] == outputs[1]


def test_loosening_a_gate_brings_rejected_rows_back_from_the_cache(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, _regex("#[0-9]"))
        synthc.build(config)
        first = _rows(tmp_path / "out.rejected.jsonl")
        before = server.count
        loose = _gated(tmp_path / "qa.yaml", server, _regex("#"))  # every answer passes
        result = synthc.build(loose)
        assert server.count == before  # 0 requests: each slot's first draw is cached
    rows = _rows(tmp_path / "out.jsonl")
    assert len(rows) == SAMPLES and result.stats.rejected == {}
    first_attempts = {r["slot"]: r["row"] for r in first if r["attempt"] == 0}
    assert all(rows[slot] == row for slot, row in first_attempts.items())


@dataclass
class Change:
    """A config built with one set of gates, then another; and the second alone, in a
    cache of its own: what each build sent (request bodies, counted)."""

    made: Counter[str]  # by the first build
    sent: Counter[str]  # by the second, on the first one's cache
    needed: Counter[str]  # by the second alone, from an empty cache
    fresh: Path  # the config of the build from an empty cache (its rows in out.jsonl beside)


def change_gates(
    tmp_path: Path, server: FakeLLMServer, before: str, after: str, attempts: int = 4
) -> Change:
    synthc.build(_gated(tmp_path / "qa.yaml", server, before, attempts))
    made = _bodies(server)
    since = server.count
    synthc.build(_gated(tmp_path / "qa.yaml", server, after, attempts))
    sent = _bodies(server, since)
    (tmp_path / "fresh").mkdir()
    fresh = _gated(tmp_path / "fresh" / "qa.yaml", server, after, attempts)
    since = server.count
    synthc.build(fresh, ["--output_path", str(tmp_path / "fresh" / "out.jsonl")])
    needed = _bodies(server, since)
    # the same rows, whichever way the build came to them
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "fresh" / "out.jsonl").read_bytes()
    return Change(made, sent, needed, fresh)


def test_tightening_a_gate_sends_only_the_draws_never_made(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        change = change_gates(tmp_path, server, _regex("#[0-9]"), _regex("#[0-4]"))
    assert change.sent == change.needed - change.made  # exactly the requests never made
    assert sum(change.sent.values()) < sum(change.needed.values())


def test_a_gate_that_never_passes_stops_at_max_attempts_and_says_so(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, _regex("never matches"), attempts=3)
        result = run_cli("build", str(config))
        assert server.count == 2 * 3 * SAMPLES  # three draws a slot, two requests a draw
    assert result.exit_code == 0, result.stderr
    assert (
        f"quality gates rejected {3 * SAMPLES} rows (answer: regex 'never matches': "
        f"{3 * SAMPLES}); {SAMPLES} slots gave up after their last attempt"
    ) in result.stdout
    assert (tmp_path / "out.jsonl").read_text() == ""
    assert len(_rows(tmp_path / "out.rejected.jsonl")) == 3 * SAMPLES
    exported = run_cli("export", str(config), "--format", "parquet", "-o", str(tmp_path / "x.pq"))
    assert exported.exit_code != 0 and "Traceback" not in exported.stderr
    assert f"the quality gates rejected every attempt of {SAMPLES} slot(s)" in exported.stderr


def test_filters_and_length_bounds_judge_the_row(tmp_path: Path) -> None:
    gates = (
        "    validators:\n      - {attribute: question, min_chars: 10, max_chars: 400}\n"
        "    filters: [\"item != 'item-3'\"]\n"
    )
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, gates, attempts=2)
        result = synthc.build(config)
    rows = _rows(tmp_path / "out.jsonl")
    # item-3's slot keeps its example row on every attempt: it can never pass
    assert [row["item"] for row in rows] == [f"item-{i}" for i in range(SAMPLES) if i != 3]
    assert result.stats.rejected == {"filter \"item != 'item-3'\"": 2}
    assert result.stats.slots_given_up == 1


def test_export_writes_the_kept_rows_and_sends_nothing(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, _regex("#[0-9]"))
        synthc.build(config)
        sent = server.count
        exported = synthc.export(config, format="parquet", output=tmp_path / "o.parquet")
        explained = synthc.explain(config)
        assert server.count == sent
    assert exported.rows == len(_rows(tmp_path / "out.jsonl"))
    assert explained.total("run") == 0 and explained.total("blocked") == 0


def test_bad_gates_are_located_errors(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        gates = (
            "    validators:\n      - {attribute: anser, regex: 'x'}\n"
            "    filters: ['answer >> 4', 'nothing here']\n"
        )
        config = _gated(tmp_path / "qa.yaml", server, gates)
        result = run_cli("build", str(config))
        assert server.count == 0
    assert result.exit_code != 0
    assert "qa.yaml:" in result.stderr and "no column 'anser' in the rows" in result.stderr
    assert "filters: '> 4' is not a value" in result.stderr
    assert "expected NAME OP VALUE" in result.stderr and "3 errors" in result.stderr
    assert "Traceback" not in result.stderr


def _grading(body: dict[str, Any]) -> str:
    """The server's answers, a judge's verdict scored 1-5 from the request's digest."""
    if response_schema(body) is None:
        return default_reply(body)
    score = int(request_digest(body)[0], 16) % 5 + 1
    return json.dumps({"score": score, "reason": f"scored {score}"})


def _judged(path: Path, server: FakeLLMServer, rubric: str, filters: str = "") -> Path:
    judge = f"    judges:\n      - {{id: verdict, rubric: '{rubric}'}}\n"
    return _gated(path, server, judge + filters)


def test_a_judge_grades_each_row_and_a_filter_keeps_the_good_ones(tmp_path: Path) -> None:
    with FakeLLMServer(reply=_grading) as server:
        config = _judged(tmp_path / "qa.yaml", server, "Grade: {answer}", FILTER)
        result = synthc.build(config)
        judged = [b for b in server.requests if response_schema(b) is not None]
    rows = _rows(tmp_path / "out.jsonl")
    assert len(rows) == SAMPLES - result.stats.slots_given_up
    assert all(json.loads(row["verdict"])["score"] >= 3 for row in rows)
    rejected = _rows(tmp_path / "out.rejected.jsonl")
    assert rejected and all(json.loads(r["row"]["verdict"])["score"] < 3 for r in rejected)
    assert len(judged) == len(rows) + len(rejected)  # one verdict a draw
    system = judged[0]["messages"][0]["content"]
    assert "integer from 1 to 5" in system and '{"score": <integer>' in system


FILTER = "    filters: ['verdict.score >= 3']\n"


def test_editing_the_rubric_reruns_the_judge_alone(tmp_path: Path) -> None:
    with FakeLLMServer(reply=_grading) as server:
        config = _judged(tmp_path / "qa.yaml", server, "Grade: {answer}")
        synthc.build(config)
        since = server.count
        edited = _judged(tmp_path / "qa.yaml", server, "Grade strictly: {answer}")
        synthc.build(edited)
        sent = server.requests[since:]
    assert len(sent) == SAMPLES  # no filter: one new verdict a slot, no generation
    assert all(response_schema(b) is not None for b in sent)


def test_raising_the_bar_sends_no_verdict_twice(tmp_path: Path) -> None:
    with FakeLLMServer(reply=_grading) as server:
        config = _judged(tmp_path / "qa.yaml", server, "Grade: {answer}", FILTER)
        synthc.build(config)
        made = _bodies(server)
        since = server.count
        higher = _judged(tmp_path / "qa.yaml", server, "Grade: {answer}", FILTER.replace("3", "4"))
        synthc.build(higher)
        sent = _bodies(server, since)
    assert not set(sent) & set(made)  # nothing asked twice: slots judged before send nothing
    assert sum(sent.values()) > 0


def test_a_judge_that_reads_an_unknown_attribute_is_a_located_error(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        config = _judged(tmp_path / "qa.yaml", server, "Grade: {answr}")
        result = run_cli("build", str(config))
    assert result.exit_code != 0 and "qa.yaml:" in result.stderr and "{answr}" in result.stderr
    assert "Traceback" not in result.stderr


def _few_answers(body: dict[str, Any]) -> str:
    """Answers from a set of four, spelled with varying case and spaces (the same text
    once normalised); questions as usual."""
    text = default_reply(body)
    if not text.startswith("reply to: reply to:"):
        return text
    digest = int(request_digest(body), 16)
    return f"{'Answer' if digest % 2 else 'answer'}  {digest // 2 % 4} "


DEDUP = "    dedup: [answer]\n"


def test_dedup_keeps_one_row_per_text_in_slot_order(tmp_path: Path) -> None:
    with FakeLLMServer(reply=_few_answers) as server:
        config = _gated(tmp_path / "qa.yaml", server, DEDUP, attempts=6)
        result = synthc.build(config)
    rows = _rows(tmp_path / "out.jsonl")
    normal = [" ".join(row["answer"].casefold().split()) for row in rows]
    assert len(set(normal)) == len(normal) == 4  # four texts: four rows, the rest give up
    assert result.stats.slots_given_up == SAMPLES - 4
    rejected = _rows(tmp_path / "out.rejected.jsonl")
    assert {r["gate"] for r in rejected} == {"dedup answer"}
    kept = {row["item"]: n for row, n in zip(rows, normal, strict=True)}
    for refused in rejected:  # each refused text was kept by an earlier slot
        text = " ".join(refused["row"]["answer"].casefold().split())
        earlier = [item for item, n in kept.items() if n == text]
        assert earlier and int(earlier[0].split("-")[1]) < refused["slot"]


def test_adding_dedup_redraws_only_the_duplicates(tmp_path: Path) -> None:
    with FakeLLMServer(reply=_few_answers) as server:
        change = change_gates(tmp_path, server, "", DEDUP, attempts=6)
        since = server.count
        exported = synthc.export(change.fresh, format="hf-dir", output=tmp_path / "pub")
        assert server.count == since  # export sends nothing
    assert change.sent == change.needed - change.made and sum(change.sent.values()) > 0
    # export follows the same decisions through the cache: the same rows, the same give-ups
    assert (tmp_path / "pub" / "data" / "train.jsonl").read_bytes() == (
        tmp_path / "fresh" / "out.jsonl"
    ).read_bytes()
    assert (exported.rows, exported.rejected) == (4, SAMPLES - 4)


def test_explain_reports_the_gates_and_counts_the_redraws_in_its_estimate(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        config = _gated(tmp_path / "qa.yaml", server, _regex("#[0-9]"))
        built = synthc.build(config)
        report = synthc.explain(config, ["--num_samples", str(2 * SAMPLES)]).to_json()
        quality, estimate = report["quality"], report["estimate"]
        text = run_cli("explain", str(config), "--num_samples", str(2 * SAMPLES)).stdout
        since = server.count
        synthc.build(config, ["--num_samples", str(2 * SAMPLES)])
        sent = server.count - since
    given_up = built.stats.slots_given_up
    rejected = sum(built.stats.rejected.values())
    assert quality["kept"] == SAMPLES - given_up and quality["given_up"] == given_up
    assert quality["open"] == SAMPLES and quality["rejected"] == built.stats.rejected
    assert quality["attempts"] == rejected + SAMPLES - given_up
    p = quality["acceptance"]
    expected = (1 - (1 - p) ** 4) / p
    assert quality["expected_attempts"] == round(expected, 3)
    # twelve open slots, two requests an attempt, about `expected` attempts each
    assert estimate["requests"] == 2 * round(SAMPLES * expected)
    assert abs(sent - estimate["requests"]) <= 0.4 * sent  # the redraws the build then made
    assert f"quality gates: {SAMPLES - given_up} of {SAMPLES} decided slots kept" in text


def test_a_reply_that_is_no_verdict_rejects_its_row_and_is_kept(tmp_path: Path) -> None:
    def wild(body: dict[str, Any]) -> str:  # some verdicts off the scale, some cut off
        if response_schema(body) is None:
            return default_reply(body)
        first = request_digest(body)[0]
        if first in "0123":
            return json.dumps({"score": 9, "reason": "off the scale"})
        return '{"score": 4, "rea' if first in "45" else json.dumps({"score": 4, "reason": "ok"})

    with FakeLLMServer(reply=wild) as server:
        config = _judged(tmp_path / "qa.yaml", server, "Grade: {answer}")
        result = synthc.build(config)
        first = server.count
        again = run_cli("build", str(config))
        asked_again = server.count - first
    gate = "verdict: usable verdict (score 1 to 5)"
    rejected = _rows(tmp_path / "out.rejected.jsonl")
    assert rejected and {r["gate"] for r in rejected} == {gate}
    assert result.stats.rejected == {gate: len(rejected)} and result.stats.failed == 0
    rows = _rows(tmp_path / "out.jsonl")
    assert len(rows) == SAMPLES - result.stats.slots_given_up
    assert all(json.loads(row["verdict"]) == {"score": 4, "reason": "ok"} for row in rows)
    # the replies were cached like any other: the rerun sends nothing, decides the same
    assert again.exit_code == 0 and asked_again == 0
    assert _rows(tmp_path / "out.rejected.jsonl") == rejected


def test_a_judge_may_have_a_model_and_a_budget_of_its_own(tmp_path: Path) -> None:
    judge = (
        "    judges:\n      - {id: verdict, rubric: 'Grade: {answer}', model: big-judge,"
        " max_new_tokens: 64}\n"
    )
    with FakeLLMServer(reply=_grading) as server:
        config = _gated(tmp_path / "qa.yaml", server, judge)
        synthc.build(config)
        judged = [b for b in server.requests if response_schema(b) is not None]
        made = [b for b in server.requests if response_schema(b) is None]
        since = server.count
        bigger = _gated(tmp_path / "qa.yaml", server, judge.replace("64", "96"))
        synthc.build(bigger)
        sent = server.requests[since:]
    assert len(judged) == len(made) // 2 == SAMPLES
    assert {b["model"] for b in judged} == {"big-judge"} and {b["model"] for b in made} == {"m"}
    assert {b["max_tokens"] for b in judged} == {64}
    assert all(b["max_tokens"] != 64 for b in made)
    # the judge's budget is in its nodes' keys, and in no other node's
    assert len(sent) == SAMPLES and all(b["max_tokens"] == 96 for b in sent)


def test_a_judge_model_on_an_in_process_engine_is_a_located_error(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        config = _gated(
            tmp_path / "qa.yaml",
            server,
            "    judges:\n      - id: verdict\n        rubric: 'Grade: {answer}'\n"
            "        model: other\n",
        )
        text = config.read_text().replace("engine: REMOTE", "engine: LLAMACPP")
        config.write_text(text)
        result = run_cli("build", str(config))
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "model: other" in t)
    assert f"qa.yaml:{line}:" in result.stderr and "runs the config's one model" in result.stderr


def test_explain_prices_a_judges_tokens_at_its_own_model(tmp_path: Path) -> None:
    def estimate(judge_model: str) -> dict[str, Any]:
        rubric = "rubric: 'Grade: {answer}'"
        judge = f"    judges:\n      - {{id: verdict, {rubric}, model: {judge_model}}}\n"
        config = _gated(tmp_path / "qa.yaml", server, judge)
        text = config.read_text().replace("engine: REMOTE", "engine: OPENAI")
        config.write_text(text.replace("model_name: m", "model_name: gpt-4o-mini"))
        return synthc.explain(config).to_json()["estimate"]

    with FakeLLMServer() as server:
        same, stronger, unknown = (estimate(m) for m in ("gpt-4o-mini", "gpt-4.1", "my-judge"))
        assert server.count == 0
    assert same["requests"] == stronger["requests"] == 3 * SAMPLES
    assert same["cost_usd"] is not None and stronger["cost_usd"] is not None
    assert stronger["cost_usd"] > same["cost_usd"]  # the verdicts' tokens at gpt-4.1's rate
    assert unknown["cost_usd"] is None  # a price the table does not have is not guessed


def test_raising_num_samples_keeps_the_first_rows_and_sends_only_for_new_slots(
    tmp_path: Path,
) -> None:
    def sixteen_answers(body: dict[str, Any]) -> str:  # duplicates now and then
        text = default_reply(body)
        if not text.startswith("reply to: reply to:"):
            return text
        return f"answer {int(request_digest(body), 16) % 16}"

    with FakeLLMServer(reply=sixteen_answers) as server:
        config = _gated(tmp_path / "qa.yaml", server, DEDUP, attempts=6)
        synthc.build(config, ["--num_samples", "6"])
        first = _rows(tmp_path / "out.jsonl")
        made = _bodies(server)
        since = server.count
        synthc.build(config)  # all twelve slots
        sent = _bodies(server, since)
    rows = _rows(tmp_path / "out.jsonl")
    assert rows[: len(first)] == first and len(rows) > len(first)
    rejected = _rows(tmp_path / "out.rejected.jsonl")
    assert {r["gate"] for r in rejected} == {"dedup answer"}  # duplicates were redrawn
    assert not set(sent) & set(made)  # the first six slots' draws are not asked again
    slots = {int(row["item"].split("-")[1]) for row in rows[len(first) :]}
    assert min(slots) >= 6  # the new rows are the new slots'
