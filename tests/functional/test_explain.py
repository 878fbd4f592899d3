"""`synthc explain` predicts exactly what the next build sends, with the right reasons.

After a build, each kind of edit is made in turn; the JSON explanation's
nodes to run (plus those blocked behind them) must equal the requests the
next build sends to a loopback server, every such node must carry the
expected reason, and after that build nothing is left to run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthc.testing.server import FakeLLMServer, Fault
from tests.conftest import run_cli

CONFIG = """\
num_samples: 10
output_path: qa.jsonl
seed: 5
strategy_params:
  sampled_attributes:
    - id: topic
      name: Topic
      description: What the question is about
      possible_values:
        - {id: rivers, name: Rivers, description: Rivers of the world}
        - {id: capitals, name: Capitals, description: Capital cities}
        - {id: deserts, name: Deserts, description: Hot and cold deserts}
  generated_attributes:
    - id: question
      instruction_messages:
        - {role: SYSTEM, content: "You write quiz questions."}
        - {role: USER, content: "Write one question about {topic}."}
    - id: answer
      instruction_messages:
        - {role: SYSTEM, content: "You answer quiz questions."}
        - {role: USER, content: "{question}"}
inference_config:
  model: {model_name: quiz-model}
  engine: REMOTE
  generation: {temperature: 0.7, max_new_tokens: 64}
  remote_params: {num_workers: 4}
"""


class Session:
    def __init__(self, server: FakeLLMServer, config: Path):
        self.server = server
        self.config = config
        self.url = ["--inference_config.remote_params.api_url", server.url("/v1/chat/completions")]

    def explain(self, *overrides: str) -> dict[str, Any]:
        result = run_cli(
            "explain", str(self.config), "--format", "json", "--all", *self.url, *overrides
        )
        assert result.exit_code == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def build(self, *overrides: str) -> int:
        before = self.server.count
        result = run_cli("build", str(self.config), *self.url, *overrides)
        assert result.exit_code in (0, 1), result.stderr
        return self.server.count - before

    def edit(self, old: str, new: str) -> None:
        text = self.config.read_text()
        assert old in text
        self.config.write_text(text.replace(old, new))


@pytest.fixture
def session(llm_server: FakeLLMServer, tmp_path: Path) -> Session:
    config = tmp_path / "qa.yaml"
    config.write_text(CONFIG)
    s = Session(llm_server, config)
    first = s.explain()
    assert first["totals"]["run"] == 10 and first["totals"]["blocked"] == 10
    assert {r["check"] for n in first["nodes"] for r in n["reasons"]} == {"new"}
    assert s.build() == 20
    return s


def _checks(data: dict[str, Any], rule: str) -> set[str]:
    return {r["check"] for n in data["nodes"] if n["rule"] == rule for r in n["reasons"]}


def _predict_then_build(s: Session, *overrides: str) -> dict[str, Any]:
    data = s.explain(*overrides)
    to_send = data["totals"]["run"] + data["totals"]["blocked"]
    assert data["estimate"]["requests"] == to_send
    assert s.build(*overrides) == to_send
    after = s.explain(*overrides)
    assert after["totals"]["run"] == after["totals"]["blocked"] == 0
    assert after["nodes"] == []
    return data


def test_nothing_changed(session: Session) -> None:
    data = _predict_then_build(session)
    assert data["totals"] == {"cached": 20, "run": 0, "blocked": 0, "failed": 0, "nodes": 20}


def test_template_edit(session: Session) -> None:
    session.edit("You answer quiz questions.", "You answer quiz questions briefly.")
    data = _predict_then_build(session)
    assert data["totals"]["run"] == 10 and data["totals"]["blocked"] == 0
    assert _checks(data, "answer") == {"modified.template"}
    detail = data["nodes"][0]["reasons"][0]["detail"]
    assert "- system: You answer quiz questions." in detail
    assert "+ system: You answer quiz questions briefly." in detail


def test_param_override(session: Session) -> None:
    data = _predict_then_build(session, "--inference_config.generation.temperature", "0.5")
    assert data["totals"]["run"] == 10 and data["totals"]["blocked"] == 10
    assert _checks(data, "question") == {"modified.params"}
    assert _checks(data, "answer") == {"modified.params", "modified.upstream"}
    reason = data["nodes"][0]["reasons"][0]
    assert reason == {"check": "modified.params", "detail": "temperature 0.7 → 0.5"}


def test_model_edit(session: Session) -> None:
    session.edit("model_name: quiz-model", "model_name: quiz-model-2")
    data = _predict_then_build(session)
    assert data["totals"]["run"] == 10 and data["totals"]["blocked"] == 10
    assert _checks(data, "question") == {"modified.model"}
    assert data["nodes"][0]["reasons"][0]["detail"] == (
        "model REMOTE quiz-model → REMOTE quiz-model-2"
    )


def test_sampled_attribute_edit(session: Session) -> None:
    session.edit("{id: deserts, name: Deserts,", "{id: deserts, name: Deserts, sample_rate: 0.6,")
    data = _predict_then_build(session)
    moved = data["totals"]["run"]
    assert 0 < moved < 10 and data["totals"]["blocked"] == moved
    assert _checks(data, "question") == {"modified.sampling"}
    assert all(
        "topic " in r["detail"] and " → " in r["detail"]
        for n in data["nodes"]
        if n["rule"] == "question"
        for r in n["reasons"]
    )


def test_sampled_value_renamed(session: Session) -> None:
    session.edit("name: Rivers,", "name: Lakes and rivers,")
    data = _predict_then_build(session)
    assert data["totals"]["run"] > 0
    assert _checks(data, "question") == {"modified.sampling"}
    assert "was redefined" in data["nodes"][0]["reasons"][0]["detail"]


def test_more_samples(session: Session) -> None:
    data = _predict_then_build(session, "--num_samples", "15")
    assert data["totals"]["run"] == 5 and data["totals"]["blocked"] == 5
    assert {n["id"] for n in data["nodes"]} == {
        f"{rule}[{i}]" for rule in ("question", "answer") for i in range(10, 15)
    }
    assert _checks(data, "question") == _checks(data, "answer") == {"new"}


def test_failed_last_time(tmp_path: Path) -> None:
    broken = {"on": True}

    def faults(body: dict[str, Any], index: int) -> Fault | None:
        if broken["on"] and "capitals" in json.dumps(body).lower():
            return Fault(status=400, body={"error": {"message": "rejected"}})
        return None

    with FakeLLMServer(faults=faults) as server:
        config = tmp_path / "qa.yaml"
        config.write_text(CONFIG)
        s = Session(server, config)
        s.build()
        broken["on"] = False
        data = s.explain()
        failed = data["rules"][0]["failed_last_time"]
        assert failed > 0 and data["totals"]["run"] == failed
        assert _checks(data, "question") == {"failed"}
        assert s.build() == data["totals"]["run"] + data["totals"]["blocked"]


def test_why_shows_one_node(session: Session) -> None:
    result = run_cli(
        "explain", str(session.config), "--why", "answer[2]", "--format", "json", *session.url
    )
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["status"] == "cached" and len(info["key"]) == 32
    assert info["inputs"]["question"]["status"] == "cached"
    assert info["messages"][1]["content"] == info["inputs"]["question"]["value"]
    assert info["output"]
    missing = run_cli("explain", str(session.config), "--why", "answer[99]", *session.url)
    assert missing.exit_code == 2
    assert "samples run 0..9" in missing.stderr


def test_dry_run_prints_the_summary_and_sends_nothing(session: Session) -> None:
    before = session.server.count
    result = run_cli("build", str(session.config), "--dry-run", "--num_samples", "12", *session.url)
    assert result.exit_code == 0
    assert result.stdout.startswith("24 nodes: 20 cached, 2 to run, 2 blocked")
    assert session.server.count == before


def test_a_huge_plan_is_counted_from_samples_spread_over_it(session: Session) -> None:
    """10^8 samples: the dry run and explain answer (walking 40,000 samples, not 10^8),
    say they estimated, and count the cached first samples exactly."""
    huge = ("--num_samples", str(10**8))
    result = run_cli("build", str(session.config), "--dry-run", *huge, *session.url)
    assert result.exit_code == 0, result.stderr
    total = 2 * 10**8
    assert result.stdout.startswith(f"{total} nodes: 20 cached, {10**8 - 10} to run")
    counted = "(counted from 40,000 of 100,000,000 samples: the first 20,000, then one in 4,999;"
    assert counted in result.stdout
    result = run_cli("explain", str(session.config), "--format", "json", *huge, *session.url)
    data = json.loads(result.stdout)
    assert data["sampled"] == {"exact_samples": 20_000, "every": 4999, "samples_walked": 40_000}
    assert data["totals"]["nodes"] == total and data["estimate"]["requests"] == total - 20
    assert len(data["nodes"]) == 50 and data["nodes_omitted"] == total - 20 - 50


def test_an_estimate_is_within_a_stride_of_the_count(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted from every 7th sample past the first 3 (the walk made small so that the
    estimated part holds cached samples): each rule's cached count is off by less than
    one stride, where the cached samples end."""
    from synthc.planning import explain

    monkeypatch.setattr(explain, "EXACT_SAMPLES", 3)
    monkeypatch.setattr(explain, "SPREAD_SAMPLES", 5)
    estimated = session.explain("--num_samples", "40")  # the --all of session.explain...
    assert estimated["sampled"] is None  # ... counts every sample
    result = run_cli("explain", str(session.config), "--format", "json", "--num_samples", "40")
    data = json.loads(result.stdout)
    assert data["sampled"] == {"exact_samples": 3, "every": 8, "samples_walked": 8}
    for rule, exact in zip(data["rules"], estimated["rules"], strict=True):
        if "counts" in rule:
            assert abs(rule["counts"]["cached"] - exact["counts"]["cached"]) < 8
            assert sum(rule["counts"].values()) == 40
    assert data["totals"]["nodes"] == estimated["totals"]["nodes"] == 80


@pytest.mark.parametrize(
    ("spelling", "name", "keys"),
    [
        (
            "GEMINI",
            "GOOGLE_GEMINI",
            ["4bc9bf3654b8069a84ca922ea596316f", "5f7591661eaf027a90de724c0a920f88"],
        ),
        (
            "google_gemini",
            "GOOGLE_GEMINI",
            ["4bc9bf3654b8069a84ca922ea596316f", "5f7591661eaf027a90de724c0a920f88"],
        ),
        (
            "openai",
            "OPENAI",
            ["939e22848508ac0c12b310f212c45024", "20b5d428fef187cabf68040d6780498c"],
        ),
    ],
)
def test_keys_hash_the_engine_name_whatever_the_spelling(
    tmp_path: Path, spelling: str, name: str, keys: list[str]
) -> None:
    """Pinned: node keys and the JSON name an engine by its enum name (oumi spells Gemini
    ``GEMINI``); a change here would invalidate every cached result of that engine."""
    config = tmp_path / "qa.yaml"
    config.write_text(CONFIG)
    result = run_cli(
        "explain", str(config), "--format", "json", "--all", "--inference_config.engine", spelling
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"]["engine"] == name
    assert [n["key"] for n in data["nodes"] if n["key"]][:2] == keys
