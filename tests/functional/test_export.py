"""synthc export: a build's rows, from the cache, in the shapes trainers load.

Three kinds of conversation, built against a loopback server: a single-turn CHAT
transform (the geography example), a multiturn conversation (oumi's example) and
one with tools (the library agent). Export sends nothing (request counts); the
``messages`` rows load in TRL's SFT data path for real (a tiny model with the
embedded SmolLM2's tokenizer and chat template), skipped only where TRL is absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from synthc.testing.server import FakeLLMServer
from tests.conftest import REPO, build_and_count, copy_example, pointed_at, run_cli

CASES = {  # name: (config, its server route, the column holding the conversation)
    "single-turn": ("geography_qa.yaml", "/v1/messages", "conversation"),
    "multiturn": ("multiturn_conversation_synth.yaml", "/v1/messages", "support_conversation"),
    "tools": ("library_agent.yaml", "/v1/chat/completions", "dialog"),
}


def _built(tmp_path: Path, server: FakeLLMServer, case: str) -> list[str]:
    """The case's config built (3 samples) in ``tmp_path``: its command line."""
    name, route, _ = CASES[case]
    if (REPO / "examples" / name).exists():
        for each in (name, "library_tools.py"):
            shutil.copy(REPO / "examples" / each, tmp_path / each)
        config = tmp_path / name
    else:
        config = copy_example(name, tmp_path)
    command = [str(config), *pointed_at(server, route), "--num_samples", "3"]
    assert build_and_count(server, config, *command[1:], path=route) > 0
    return command


def _export(command: list[str], *args: str) -> tuple[Any, list[dict[str, Any]]]:
    result = run_cli("export", *command, *args)
    assert result.exit_code == 0, result.stderr
    path = Path(result.stdout.split(" written to ")[1].split(" as ")[0])
    lines = path.read_text().splitlines() if path.suffix == ".jsonl" else []
    return result, [json.loads(line) for line in lines]


@pytest.mark.parametrize("case", sorted(CASES))
def test_messages_rows_come_from_the_cache_and_keep_every_turn(tmp_path: Path, case: str) -> None:
    with FakeLLMServer() as server:
        command = _built(tmp_path, server, case)
        sent = server.count
        result, rows = _export(command, "--format", "messages")
        assert server.count == sent  # nothing sent
    column = CASES[case][2]
    assert f"3 rows written to out.messages.jsonl as messages (from {column})" in result.stdout
    built = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for row, source in zip(rows, built, strict=True):
        assert set(row) == ({"messages", "tools"} if case == "tools" else {"messages"})
        assert [m["role"] for m in row["messages"]] == [
            m["role"] for m in source[column]["messages"]
        ]
        assert all(isinstance(m["content"], str) for m in row["messages"])
    if case == "tools":
        assert any("tool_calls" in m for row in rows for m in row["messages"])
    hint = run_cli("build", *command).stdout  # cached: the hint names the export
    assert f"synthc export {command[0]}" in hint and "dataset_path: out.messages.jsonl" in hint


def test_sharegpt_parquet_and_provenance(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        command = _built(tmp_path, server, "single-turn")
        _, rows = _export(command, "--format", "sharegpt", "--provenance")
        assert [t["from"] for t in rows[0]["conversations"]] == ["human", "gpt"]
        nodes = rows[0]["synthc_nodes"]
        assert set(nodes) == {"question[0]", "answer[0]"} and all(
            len(k) == 32 for k in nodes.values()
        )
        result, _ = _export(command, "--format", "parquet", "-o", "data/train.parquet")
        assert "3 rows written to data/train.parquet as parquet" in result.stdout
    datasets = pytest.importorskip("datasets", reason="the datasets library is not installed")
    table = datasets.Dataset.from_parquet(str(tmp_path / "data" / "train.parquet"))
    assert table.num_rows == 3 and "conversation" in table.column_names


def test_samples_not_built_yet_are_counted_not_sent(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        command = _built(tmp_path, server, "single-turn")
        sent = server.count
        result, rows = _export(command, "--num_samples", "5")
        assert server.count == sent and len(rows) == 3
    assert "warning: 2 samples are not in the cache and were left out" in result.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_messages_rows_load_in_trls_sft_data_path(tmp_path: Path, case: str) -> None:
    trl = pytest.importorskip("trl", reason="TRL is not installed")
    datasets = pytest.importorskip("datasets", reason="the datasets library is not installed")
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    from synthc.runtime.documents import load_tokenizer

    with FakeLLMServer() as server:
        command = _built(tmp_path, server, case)
        _export(command)
    tokenizer = load_tokenizer("smollm2", str(tmp_path))
    tiny = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
    )
    model = transformers.LlamaForCausalLM(tiny)
    dataset = datasets.load_dataset("json", data_files=str(tmp_path / "out.messages.jsonl"))
    trainer = trl.SFTTrainer(
        model=model,
        args=trl.SFTConfig(
            output_dir=str(tmp_path / "sft"), report_to=[], max_steps=1, use_cpu=True, bf16=False
        ),
        train_dataset=dataset["train"],
        processing_class=tokenizer,
    )
    prepared = trainer.train_dataset
    assert prepared.num_rows == 3 and "input_ids" in prepared.column_names
    assert all(len(ids) > 10 for ids in prepared["input_ids"])


def test_nothing_built_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "geography_qa.yaml", tmp_path / "geography_qa.yaml")
    result = run_cli("export", str(tmp_path / "geography_qa.yaml"))
    assert result.exit_code == 1
    assert "nothing to export: no sample is in the cache yet (build first)" in result.stderr
    assert not list(tmp_path.glob("*.jsonl")) and not list(tmp_path.glob(".*.tmp"))
