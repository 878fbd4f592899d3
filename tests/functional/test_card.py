"""The dataset card a build writes beside its output (``out.card.md``): Hugging Face's
format, parsed by ``huggingface_hub.DatasetCard``, with the build's provenance.

Token counts come from the records of every node the rows are made of, so a rebuild
from the cache (0 tokens spent) writes the same card figures as the build that paid
for them; a node several samples share counts once.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import synthc
from synthc.testing.server import FakeLLMServer
from tests.reliability.helpers import write_config

huggingface_hub = pytest.importorskip(
    "huggingface_hub", reason="huggingface_hub is not installed (it comes with datasets)"
)


def _tokens(card: Path) -> tuple[int, int]:
    found = re.search(r"\| tokens \| ([\d,]+) input, ([\d,]+) output \|", card.read_text())
    assert found is not None
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))


def test_a_build_writes_a_card_the_hub_library_reads(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        secret = {"api_key": "sk-live-9"}
        config = write_config(tmp_path / "qa.yaml", server, samples=6, remote=secret)
        built = synthc.build(config)
        rebuilt = synthc.build(config)  # every node cached: nothing spent now
    card_file = tmp_path / "out.card.md"
    card = huggingface_hub.DatasetCard.load(card_file)
    data = card.data.to_dict()
    known = set(inspect.signature(huggingface_hub.DatasetCardData).parameters)
    assert set(data) <= known | {"configs", "dataset_info", "tags"}  # the Hub's keys only
    assert data["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "out.jsonl"}]}
    ]
    assert data["size_categories"] == ["n<1K"] and "synthetic" in data["tags"]
    features = data["dataset_info"]["features"]
    assert [f["name"] for f in features] == list(rebuilt.rows[0])
    assert built.stats.input_tokens > 0 and rebuilt.stats.input_tokens == 0
    assert _tokens(card_file) == (built.stats.input_tokens, built.stats.output_tokens)
    assert "sha256 `" in card.text and "num_samples: 6" in card.text
    assert "sk-live-9" not in card_file.read_text()


def test_a_node_shared_by_samples_counts_once(tmp_path: Path) -> None:
    with FakeLLMServer() as server:  # temperature 0: the same item, the same request
        config = write_config(tmp_path / "qa.yaml", server, samples=4, temperature=0.0)
        config.write_text(re.sub(r"examples: \[.*\]", "examples: [{item: a}]", config.read_text()))
        built = synthc.build(config)
        assert server.count == 2  # one question, one answer, for all four samples
    assert built.stats.samples_written == 4
    assert _tokens(tmp_path / "out.card.md") == (
        built.stats.input_tokens,
        built.stats.output_tokens,
    )
