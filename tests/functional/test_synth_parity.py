"""A config and its .synth conversion compile to the same thing.

For every example and every oumi example: convert to .synth, compile both, and the graphs
have the same rules (ids, dependencies, digests) and the same node keys for a few samples;
configs that need a later synthc compare their validated specs. Converting back and forth
is stable: .synth -> YAML -> .synth gives the canonical text again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import synthc
from synthc.compiler.graph import Graph
from synthc.compiler.synth.emit import convert, formatted, to_synth
from synthc.compiler.synth.source import load_synth
from synthc.core.errors import SynthError
from synthc.core.records import Record
from synthc.planning.plan import advance, answer, start
from tests.conftest import OUMI_EXAMPLES, REPO, run_cli

CONFIGS = sorted(OUMI_EXAMPLES.glob("*.yaml")) + sorted((REPO / "examples").glob("*.yaml"))


class _Empty:
    def get(self, key: str) -> Record | None:
        return None

    def put(self, key: str, record: Record) -> None:
        raise AssertionError("nothing is stored while planning")

    def contains(self, key: str) -> bool:
        return False

    def close(self) -> None:
        pass


def _node_keys(graph: Graph, samples: int = 3) -> list[tuple[str, str]]:
    """Every node's id and key for the first samples, answering each request with its id."""
    keys: list[tuple[str, str]] = []
    for index in range(min(samples, graph.num_samples)):
        state = start(graph, index)
        keys.append((f"sample[{index}]", state.sample_key))
        while nodes := advance(graph, state, _Empty()):
            for node in nodes:
                keys.append((node.id, node.key))
                answer(state, node, f"answer of {node.id}")
    return keys


def _rules(graph: Graph) -> list[tuple[Any, ...]]:
    return [(type(r).__name__, r.id, tuple(r.deps), r.digest) for r in graph.rules]


def _twin(config: Path, tmp_path: Path) -> Path:
    """The config converted to .synth, in a copy of its directory (its data files and
    executors resolve beside it)."""
    home = tmp_path / "home"
    shutil.copytree(config.parent, home, dirs_exist_ok=True)
    twin = home / f"{config.stem}.converted.synth"
    twin.write_text(convert(config))
    return twin


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_converted_config_compiles_to_the_same_graph(config: Path, tmp_path: Path) -> None:
    twin = _twin(config, tmp_path)
    try:
        graph = synthc.compile(config)
    except SynthError as exc:  # a later feature, or input files that are not shipped
        assert synthc.load(twin).config.model_dump() == synthc.load(config).config.model_dump()
        with pytest.raises(type(exc)):
            synthc.compile(twin)
        return
    other = synthc.compile(twin)
    assert _rules(other) == _rules(graph)
    assert _node_keys(other) == _node_keys(graph)
    assert other.inference.identity == graph.inference.identity


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_round_trip_is_stable_under_fmt(config: Path, tmp_path: Path) -> None:
    twin = _twin(config, tmp_path)
    text, canonical = formatted(twin)
    assert text == canonical  # convert writes the canonical layout
    back = tmp_path / f"{config.stem}.yaml"
    back.write_text(convert(twin))
    again = tmp_path / "again.synth"
    again.write_text(convert(back))
    # YAML keeps comments only before top-level keys, so compare the layout without them
    assert to_synth(load_synth(again).data) == to_synth(load_synth(twin).data)
    assert formatted(again)[0] == formatted(again)[1]
    assert synthc.load(again).config.model_dump() == synthc.load(config).config.model_dump()


@pytest.mark.parametrize("name", ["geography_qa", "quickstart"])
def test_examples_have_synth_twins(name: str) -> None:
    yaml_spec = synthc.load(REPO / "examples" / f"{name}.yaml").config.model_dump()
    assert synthc.load(REPO / "examples" / f"{name}.synth").config.model_dump() == yaml_spec
    assert run_cli("fmt", "--check", str(REPO / "examples" / f"{name}.synth")).exit_code == 0
