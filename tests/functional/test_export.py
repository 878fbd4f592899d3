"""synthc export: a build's rows, from the cache, in the shapes trainers load.

Three kinds of conversation, built against a loopback server: a single-turn CHAT
transform (the geography example), a multiturn conversation (oumi's example) and
one with tools (the library agent). Export sends nothing (request counts); the
``messages`` rows load in TRL's SFT data path for real (a tiny model with the
embedded SmolLM2's tokenizer and chat template) and in oumi 0.9's ``text_sft_jsonl``
dataset (tokenized with the same tokenizer), each skipped only where it is absent.
oumi 0.9 pins torch, transformers and TRL below what synthc's test environment
holds, so it lives in a Python of its own: ``SYNTHC_OUMI_PYTHON`` names it
(``.ci/run`` builds one), or oumi is imported beside synthc where it is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
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
    assert f"synthc push {command[0]}" in hint


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


OUMI_LOADS = """
import json, sys
from transformers import AutoTokenizer
from oumi.core.registry import REGISTRY

path, tokenizer = sys.argv[1], AutoTokenizer.from_pretrained(sys.argv[2])
dataset = REGISTRY.get_dataset("text_sft_jsonl")(dataset_path=path, tokenizer=tokenizer)
rows = []
for index in range(len(dataset)):
    conversation = dataset.conversation(index)
    rows.append({
        "roles": [message.role.value for message in conversation.messages],
        "tool_calls": sum(len(message.tool_calls or []) for message in conversation.messages),
        "tools": len(conversation.tools or []),
        "input_ids": len(dataset[index]["input_ids"]),
    })
print(json.dumps(rows))
"""


def _oumi_python() -> str:
    """A Python with oumi 0.9: ``SYNTHC_OUMI_PYTHON``, or this one if it has oumi."""
    named = os.environ.get("SYNTHC_OUMI_PYTHON")
    if named:
        return named
    if importlib.util.find_spec("oumi") is None:
        pytest.skip("oumi is not installed: set SYNTHC_OUMI_PYTHON to a Python with oumi 0.9")
    return sys.executable


@pytest.mark.parametrize("case", sorted(CASES))
def test_messages_rows_load_in_oumis_text_sft_jsonl(tmp_path: Path, case: str) -> None:
    python = _oumi_python()
    pytest.importorskip("transformers", reason="transformers is not installed")
    from synthc.runtime.documents import load_tokenizer

    with FakeLLMServer() as server:
        command = _built(tmp_path, server, case)
        _, rows = _export(command)
    data, tokenizer = tmp_path / "out.messages.jsonl", tmp_path / "tokenizer"
    saved = load_tokenizer("smollm2", str(tmp_path))
    saved.model_max_length = 8192  # SmolLM2's context; a GGUF file does not say (oumi truncates)
    saved.save_pretrained(tokenizer)
    env = {**os.environ, "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    loaded = subprocess.run(
        [python, "-c", OUMI_LOADS, str(data), str(tokenizer)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    conversations = json.loads(loaded.stdout.splitlines()[-1])
    assert len(conversations) == len(rows) == 3
    for seen, row in zip(conversations, rows, strict=True):
        assert seen["roles"] == [m["role"] for m in row["messages"]]
        assert seen["tool_calls"] == sum(len(m.get("tool_calls", [])) for m in row["messages"])
        assert seen["tools"] == len(row.get("tools", []))
        assert seen["input_ids"] > 10
    if case == "tools":
        assert all(seen["tools"] > 0 for seen in conversations)


def test_nothing_built_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "geography_qa.yaml", tmp_path / "geography_qa.yaml")
    result = run_cli("export", str(tmp_path / "geography_qa.yaml"))
    assert result.exit_code == 1
    assert "nothing to export: no sample is in the cache yet (build first)" in result.stderr
    assert not list(tmp_path.glob("*.jsonl")) and not list(tmp_path.glob(".*.tmp"))


def test_hf_dir_holds_the_rows_their_messages_and_a_card_naming_both(tmp_path: Path) -> None:
    hub = pytest.importorskip("huggingface_hub", reason="huggingface_hub is not installed")
    with FakeLLMServer() as server:
        command = _built(tmp_path, server, "multiturn")
        sent = server.count
        result = run_cli("export", *command, "--format", "hf-dir")
        assert server.count == sent  # from the cache
    assert result.exit_code == 0, result.stderr
    assert "3 rows written to out-hf as hf-dir (from support_conversation)" in result.stdout
    folder = tmp_path / "out-hf"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "README.md",
        "data/train.jsonl",
        "messages/train.jsonl",
    ]
    assert (folder / "data" / "train.jsonl").read_bytes() == (tmp_path / "out.jsonl").read_bytes()
    lines = (folder / "messages" / "train.jsonl").read_text().splitlines()
    messages = [json.loads(line) for line in lines]
    assert len(messages) == 3 and all(set(row) == {"messages"} for row in messages)
    card = hub.DatasetCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert data["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train.jsonl"}]},
        {
            "config_name": "messages",
            "data_files": [{"split": "train", "path": "messages/train.jsonl"}],
        },
    ]
    assert [info["config_name"] for info in data["dataset_info"]] == ["default", "messages"]
    assert [f["name"] for f in data["dataset_info"][1]["features"]] == ["messages"]
    assert "3 of 3 samples (0 failed or not built)" in card.text
    tokens = re.search(r"\| tokens \| ([\d,]+) input", card.text)
    assert tokens is not None and int(tokens[1].replace(",", "")) > 0  # from the records
    datasets = pytest.importorskip("datasets", reason="the datasets library is not installed")
    loaded = datasets.load_dataset(str(folder), "messages", split="train")
    assert loaded.num_rows == 3 and loaded[0]["messages"] == messages[0]["messages"]


def test_hf_dir_refuses_a_file_where_the_folder_goes(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        command = _built(tmp_path, server, "single-turn")
        (tmp_path / "taken").write_text("mine")
        refused = run_cli("export", *command, "--format", "hf-dir", "-o", str(tmp_path / "taken"))
    assert refused.exit_code == 1
    assert "hf-dir writes a folder and this is a file" in refused.stderr
    assert (tmp_path / "taken").read_text() == "mine"
