"""resolve: a batch of samples advanced against the cache with one lookup per round, to the
same state sample-by-sample ``advance`` reaches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import synthc
from synthc.cache.store import LocalStore
from synthc.compiler.graph import Graph
from synthc.core.records import Record
from synthc.planning.plan import SampleState, advance, resolve, start
from synthc.testing.server import FakeLLMServer
from tests.conftest import build_and_count, copy_example, pointed_at

SAMPLES = 12


class Counting:
    """The local store, counting how it is asked."""

    def __init__(self, store: LocalStore):
        self.store = store
        self.gets = 0
        self.batches: list[int] = []

    def get(self, key: str) -> Record | None:
        self.gets += 1
        return self.store.get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Record]:
        self.batches.append(len(keys))
        return self.store.get_many(keys)


def _built(
    tmp_path: Path, server: FakeLLMServer, example: str, path: str
) -> tuple[Graph, LocalStore]:
    """``example`` built with SAMPLES samples, then every fourth of its records dropped."""
    config = copy_example(example, tmp_path)
    overrides = [*pointed_at(server, path), "--num_samples", str(SAMPLES)]
    assert build_and_count(server, config, *overrides, path=path) > 0
    store = LocalStore(tmp_path / ".synthc" / "cache")
    for key in sorted(store.iter_keys())[::4]:
        store.delete(key)
    return synthc.compile(config, overrides), store


def _facts(state: SampleState) -> tuple[object, ...]:
    return (dict(state.status), dict(state.values), sorted(state.nodes), state.running)


@pytest.mark.parametrize(
    ("example", "path"),
    [
        ("question_answer_synth.yaml", "/v1/messages"),
        ("multiturn_conversation_synth.yaml", "/v1/messages"),
        ("library_tool_use_synth.yaml", "/v1/chat/completions"),
    ],
)
def test_resolve_reaches_what_advance_reaches_in_a_few_queries(
    tmp_path: Path, llm_server: FakeLLMServer, example: str, path: str
) -> None:
    graph, store = _built(tmp_path, llm_server, example, path)
    try:
        one_by_one = Counting(store)
        expected = []
        for index in range(SAMPLES):
            state = start(graph, index)
            nodes = advance(graph, state, one_by_one)
            expected.append((_facts(state), [node.key for node in nodes]))

        batched = Counting(store)
        states = [start(graph, index) for index in range(SAMPLES)]
        to_run = resolve(graph, states, batched)
        got = [
            (_facts(state), [node.key for node in nodes])
            for state, nodes in zip(states, to_run, strict=True)
        ]
        assert got == expected
        assert any(keys for _, keys in expected)  # some nodes were dropped and must run
        assert batched.gets == 0 and all(batched.batches)  # no query asks for nothing
        # one query per round, each for every sample still advancing: far fewer than gets
        assert len(batched.batches) < one_by_one.gets / 4
        assert batched.batches[0] >= SAMPLES
    finally:
        store.close()
