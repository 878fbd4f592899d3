"""The parts of a sharded build that need no cluster: cutting samples into shards, the
record stamp that tells a build's own nodes from cached ones, the assembly's runner and
its counts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import synthc
from synthc.cache.store import LocalStore
from synthc.cluster.shards import ShardAnswers, plan_shards, request_digest
from synthc.core.errors import ClusterError
from synthc.core.messages import Message, Request, RequestFailure
from synthc.core.records import Record
from synthc.planning.plan import Status, advance, samples_share_nodes, start
from synthc.testing.server import FakeLLMServer
from tests.conftest import REPO
from tests.reliability.helpers import write_config


@given(samples=st.integers(1, 5000), count=st.integers(1, 64), workers=st.integers(1, 300))
def test_shards_cover_every_sample_once_in_order_and_split_the_workers(
    samples: int, count: int, workers: int
) -> None:
    shards = plan_shards(samples, count, workers)
    assert [i for shard in shards for i in shard.samples] == list(range(samples))
    assert sum(shard.num_workers for shard in shards) == workers  # the endpoint's, not each's
    assert all(shard.num_workers >= 1 and len(shard.samples) >= 1 for shard in shards)
    assert len(shards) == min(count, samples, workers)
    sizes = [len(shard.samples) for shard in shards]
    assert max(sizes) - min(sizes) <= 1


def test_a_records_build_id_survives_storage_and_old_records_keep_their_bytes() -> None:
    plain = Record(key="k", text="t", request={"a": 1})
    assert b"build" not in plain.to_bytes()
    stamped = Record(key="k", text="t", request={"a": 1}, build="b1")
    assert Record.from_bytes(stamped.to_bytes()) == stamped
    with pytest.raises(ValueError, match="build id"):
        Record.from_bytes(stamped.to_bytes().replace(b'"b1"', b"7"))


def test_nodes_a_build_made_are_generated_for_it_and_cached_for_any_other(
    tmp_path: Path,
) -> None:
    with FakeLLMServer() as server:
        config = write_config(tmp_path / "qa.yaml", server, samples=3)
        graph = synthc.compile(config)
    store = LocalStore(tmp_path / "cache")
    state = start(graph, 0, build="this")
    (question,) = advance(graph, state, store)
    store.put(question.key, Record(question.key, "q?", {}, build="this"))
    other = start(graph, 0, build="another")
    advance(graph, other, store)
    fresh = start(graph, 0, build="this")
    advance(graph, fresh, store)
    assert (fresh.status["question"], fresh.reused) == (Status.GENERATED, 1)
    assert (other.status["question"], other.reused) == (Status.CACHED, 0)


def test_the_assembly_answers_a_shards_failures_and_stops_on_anything_else() -> None:
    request = Request("m", (Message("user", "hi"),), {"temperature": 0.5}, seed=3)
    failure = RequestFailure("401 bad key", retryable=False, status=401)
    answers = ShardAnswers({request_digest(request): failure})
    same = Request("m", (Message("user", "hi"),), {"temperature": 0.5}, seed=3)
    assert asyncio.run(answers.run(same)) == failure
    other = Request("m", (Message("user", "hi"),), {"temperature": 0.5}, seed=4)
    with pytest.raises(ClusterError, match="Run the same command again"):
        asyncio.run(answers.run(other))


def test_only_temperature_zero_and_tools_let_samples_share_nodes(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        drawn = synthc.compile(write_config(tmp_path / "a.yaml", server, samples=2))
        greedy = synthc.compile(
            write_config(tmp_path / "b.yaml", server, samples=2, temperature=0.0)
        )
    tools = synthc.compile(REPO / "examples" / "library_agent.yaml")
    assert not samples_share_nodes(drawn)
    assert samples_share_nodes(greedy)
    assert samples_share_nodes(tools)
