"""oumi's shipped configs: all validate; the runnable ones build against a loopback server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import synthc
from synthc.testing.server import FakeLLMServer
from tests.conftest import OUMI_EXAMPLES, copy_example, pointed_at, run_cli

ALL = sorted(p.name for p in OUMI_EXAMPLES.glob("*.yaml"))
RUNNABLE = {  # each with its passthrough columns, in the order the config lists them
    "question_answer_synth.yaml": [
        "conversation",
        "cleaned_question",
        "cleaned_answer",
        "difficulty",
        "topic",
    ],
    "instruction_following_synth.yaml": [
        "conversation",
        "cleaned_instruction",
        "cleaned_response",
        "domain",
        "complexity",
        "task_format",
    ],
    "conversation_synth.yaml": [  # lists an undefined "resolution", which oumi also skips
        "conversation",
        "scenario",
        "customer_type",
        "customer_interaction",
        "cleaned_opener",
        "cleaned_agent_response",
        "cleaned_followup",
        "cleaned_final_response",
    ],
    "data_augmentation_synth.yaml": [
        "conversation",
        "cleaned_instruction",
        "cleaned_response",
        "augmentation_type",
        "phrasing_style",
        "specificity_level",
        "original_instruction",
        "original_input",
        "original_response",
    ],
    "dynamic_few_shot_synth.yaml": [
        "conversation",
        "few_shot_examples[0].task_type",
        "few_shot_examples[0].example_input",
        "few_shot_examples[1].task_type",
        "few_shot_examples[1].example_input",
        "few_shot_examples[2].task_type",
        "few_shot_examples[2].example_input",
    ],
    "multiturn_conversation_synth.yaml": ["support_conversation", "support_conversation_plan"],
    "domain_qa_synth.yaml": [
        "conversation",
        "cleaned_question",
        "cleaned_answer",
        "specialty",
        "context_type",
        "complexity_level",
    ],
}
# Tool-use examples: passthrough columns, and the executor modules oumi ships beside them
# (registered through OUMI_EXTRA_DEPS_FILE there; imported from the config's directory here).
TOOL_USE = {
    "library_tool_use_synth.yaml": (["user_persona", "library_dialog", "library_dialog_plan"], []),
    "ehr_database_synth.yaml": (
        ["clinician_persona", "ehr_dialog", "ehr_dialog_plan"],
        ["ehr_db.py"],
    ),
    "ehr_stateful_synth.yaml": (["ehr_conversation", "ehr_conversation_plan"], ["ehr.py"]),
    "mcp_docs_lookup_synth.yaml": (
        ["docs_lookup_conversation", "docs_lookup_conversation_plan"],
        [],
    ),
}


def test_every_example_is_accounted_for() -> None:
    assert sorted([*RUNNABLE, *TOOL_USE]) == ALL


@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_runnable_example_builds(name: str, tmp_path: Path, llm_server: FakeLLMServer) -> None:
    config = copy_example(name, tmp_path)
    _write_alpaca_rows(tmp_path / "data" / "dataset_examples" / "alpaca_format.jsonl")
    overrides = pointed_at(llm_server, "/v1/messages")
    result = run_cli("build", str(config), *overrides)
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == synthc.load(config).config.num_samples
    assert all(list(row) == RUNNABLE[name] for row in rows)
    conversation = next(c for c in RUNNABLE[name] if c.endswith("conversation"))
    assert all(row[conversation]["messages"][0]["content"] for row in rows)
    generated_first = llm_server.count
    assert generated_first > 0
    assert run_cli("build", str(config), *overrides).exit_code == 0
    assert llm_server.count == generated_first


def _write_alpaca_rows(path: Path) -> None:
    """The dataset data_augmentation_synth.yaml reads (oumi ships it beside the config)."""
    path.parent.mkdir(parents=True)
    rows = [
        {"instruction": f"Explain idea {i}.", "input": f"context {i}", "output": f"Answer {i}."}
        for i in range(4)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.mark.parametrize("name", sorted(TOOL_USE))
def test_tool_use_example_builds(name: str, tmp_path: Path, llm_server: FakeLLMServer) -> None:
    columns, executors = TOOL_USE[name]
    config = copy_example(name, tmp_path)
    for module in executors:
        shutil.copy(OUMI_EXAMPLES / "executors" / module, tmp_path / module)
    overrides = [*pointed_at(llm_server, "/v1/chat/completions"), "--num_samples", "6"]
    result = run_cli("build", str(config), *overrides)
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert all(list(row) == columns for row in rows)
    conversation = columns[-2]
    for row in rows:
        messages = row[conversation]["messages"]
        assert messages[0]["role"] == "system"
        assert [
            m["role"]
            for m in messages
            if m["role"] in ("user", "assistant") and "tool_calls" not in m
        ][-1] == "assistant"
        assert isinstance(row[columns[-1]], str)
    sent = llm_server.count
    assert sent > 0
    assert run_cli("build", str(config), *overrides).exit_code == 0
    assert llm_server.count == sent


def test_a_passthrough_name_nothing_produces_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = copy_example("conversation_synth.yaml", tmp_path)
    assert run_cli("explain", str(config)).exit_code == 0
    line = config.read_text().splitlines().index("    - resolution") + 1
    expected = f"{config}:{line}:7: passthrough_attributes names 'resolution'"
    assert [r.getMessage() for r in caplog.records if expected in r.getMessage()]
    caplog.clear()
    for name in RUNNABLE:
        if name != "conversation_synth.yaml":
            run_cli("explain", str(copy_example(name, tmp_path)))
    assert not [r for r in caplog.records if "passthrough_attributes" in r.getMessage()]
