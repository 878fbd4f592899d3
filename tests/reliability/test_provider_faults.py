"""A misbehaving provider: every fault is retried or reported by node, never cached.

The server decides each fault from the request body and how many times that
body has been seen, so which requests fail does not depend on arrival order
and every request count below is exact.
"""

from __future__ import annotations

import statistics
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import xxhash

from synthc.cache.store import LocalStore
from synthc.testing._wire import default_reply
from synthc.testing.server import FakeLLMServer, Fault
from tests.conftest import run_cli
from tests.reliability.helpers import rows, write_config

SAMPLES = 10
REQUESTS = 2 * SAMPLES
EMPTY = {"choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]}

Plan = Callable[[dict[str, Any], int], "Fault | None"]  # (body, attempt of this body) -> fault


class PerBody:
    """A fault hook that sees each request as (body, attempt), attempt 0 first."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any], index: int) -> Fault | None:
        key = _body_key(body)
        with self._lock:
            attempt = self.seen[key]
            self.seen[key] += 1
        return self.plan(body, attempt)


def _body_key(body: dict[str, Any]) -> str:
    return f"{body['messages'][-1]['content']}#{body.get('seed')}"


def _chosen(body: dict[str, Any], percent: int) -> bool:
    """The same ``percent`` % of bodies on every run."""
    return xxhash.xxh64_intdigest(_body_key(body)) % 100 < percent


def _records(cache: Path) -> dict[str, str]:
    store = LocalStore(cache)
    try:
        return {key: record.text for key in store.iter_keys() if (record := store.get(key))}
    finally:
        store.close()


def _build(tmp_path: Path, server: FakeLLMServer, **kw: Any) -> Any:
    config = write_config(tmp_path / "faulty.yaml", server, samples=SAMPLES, **kw)
    return run_cli("build", str(config))


def _assert_complete(tmp_path: Path) -> None:
    built = rows(tmp_path / "out.jsonl")
    assert [row["item"] for row in built] == [f"item-{i}" for i in range(SAMPLES)]  # no duplicates
    assert all(row["question"] and row["answer"] for row in built)
    texts = _records(tmp_path / ".synthc" / "cache")
    assert len(texts) == REQUESTS and all(texts.values())


FAULTS: dict[str, Plan] = {
    "20% 5xx": lambda b, n: (
        Fault(status=(500, 502, 503)[n % 3]) if n < 2 and _chosen(b, 20) else None
    ),
    "connection resets": lambda b, n: Fault(reset=True) if n == 0 and _chosen(b, 30) else None,
    "truncated JSON": lambda b, n: (
        Fault(status=200, body='{"choices": [{"message": {"content": "hal')
        if n == 0 and _chosen(b, 30)
        else None
    ),
    "non-JSON body": lambda b, n: (
        Fault(status=200, body="<html>502 Bad Gateway</html>")
        if n == 0 and _chosen(b, 30)
        else None
    ),
    "empty completion": lambda b, n: (
        Fault(status=200, body=EMPTY) if n == 0 and _chosen(b, 30) else None
    ),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_transient_faults_are_retried_and_the_build_completes(tmp_path: Path, name: str) -> None:
    hook = PerBody(FAULTS[name])
    with FakeLLMServer(faults=hook) as server:
        result = _build(tmp_path, server)
        assert result.exit_code == 0, result.stderr
        retried = sum(1 for body_key, n in hook.seen.items() if n > 1)
        assert retried > 0  # the fault did happen
        faulted = sum(n - 1 for n in hook.seen.values())
        assert server.count == REQUESTS + faulted
        _assert_complete(tmp_path)
        server.reset()
        assert _build(tmp_path, server).exit_code == 0
        assert server.count == 0


def test_429_storm_with_retry_after_waits_as_told(tmp_path: Path) -> None:
    """Every request is refused twice with ``Retry-After: 0.2``; each retry waits it out."""
    hook = PerBody(lambda b, n: Fault(status=429, retry_after=0.2) if n < 2 else None)
    with FakeLLMServer(faults=hook) as server:
        assert _build(tmp_path, server).exit_code == 0
        assert server.count == 3 * REQUESTS
        gaps = _retry_gaps(server)
        assert min(gaps) >= 0.2, min(gaps)
    _assert_complete(tmp_path)


def test_429_storm_without_retry_after_backs_off(tmp_path: Path) -> None:
    hook = PerBody(lambda b, n: Fault(status=429) if n < 3 else None)
    with FakeLLMServer(faults=hook) as server:
        result = _build(tmp_path, server)
        assert result.exit_code == 0, result.stderr
        assert server.count == 4 * REQUESTS
        # half of retry_backoff_base is the least backoff; the server notes an arrival when its
        # loop gets to it, which can be late for one attempt and not the next: the median, not
        # the least, of the gaps is the robust sign that retries wait (a load only widens them)
        assert statistics.median(_retry_gaps(server)) >= 0.005
    _assert_complete(tmp_path)


def _retry_gaps(server: FakeLLMServer) -> list[float]:
    """Seconds between consecutive attempts of the same body."""
    last: dict[str, float] = {}
    gaps = []
    for body, at in zip(server.requests, server.arrivals, strict=True):
        key = _body_key(body)
        if key in last:
            gaps.append(at - last[key])
        last[key] = at
    return gaps


def test_slow_responses_past_connection_timeout_are_retried(tmp_path: Path) -> None:
    hook = PerBody(lambda b, n: Fault(delay=1.5) if n == 0 and _chosen(b, 30) else None)
    with FakeLLMServer(faults=hook) as server:
        result = _build(tmp_path, server, remote={"connection_timeout": 0.3})
        assert result.exit_code == 0, result.stderr
        slow = sum(1 for n in hook.seen.values() if n > 1)
        assert slow > 0 and server.count == REQUESTS + slow
    _assert_complete(tmp_path)


def test_permanent_faults_name_their_nodes_and_nothing_bad_is_cached(tmp_path: Path) -> None:
    """question[3] always answers empty, question[5] always 503s, answer[7] always times out
    (past connection_timeout): those fail by name, their answers are not cached, the
    rest is built, and the rerun (provider healthy) sends exactly what is missing."""
    broken = {"on": True}

    def plan(body: dict[str, Any], attempt: int) -> Fault | None:
        text = body["messages"][-1]["content"]
        if not broken["on"]:
            return None
        if text == "Ask something about item-3.":
            return Fault(status=200, body=EMPTY)
        if text == "Ask something about item-5.":
            return Fault(status=503, body="upstream overloaded")
        if "item-7" in text and not text.startswith("Ask"):
            return Fault(delay=0.6)
        return None

    with FakeLLMServer(faults=PerBody(plan)) as server:
        config = write_config(
            tmp_path / "faulty.yaml",
            server,
            samples=SAMPLES,
            retries=2,
            remote={"connection_timeout": 0.2},
        )
        result = run_cli("build", str(config))
        assert result.exit_code == 1
        assert "Traceback" not in result.stderr
        for node, why in [
            ("question[3]", "empty completion"),
            ("question[5]", "HTTP 503: upstream overloaded"),
            ("answer[7]", "request timed out"),
        ]:
            assert f"{node}: {why}" in result.stderr, result.stderr
        assert "3 failed" in result.stdout and "2 skipped" in result.stdout
        assert server.count == REQUESTS - 2 + 3 * 2  # 3 nodes tried 3 times; answer[3], [5] never
        built = rows(tmp_path / "out.jsonl")
        assert [r["item"] for r in built] == [
            f"item-{i}" for i in range(SAMPLES) if i not in (3, 5, 7)
        ]
        texts = _records(tmp_path / ".synthc" / "cache")
        assert len(texts) == REQUESTS - 5 and all(texts.values())  # 3 failed, 2 never sent

        broken["on"] = False
        server.reset()
        result = run_cli("build", str(config))
        assert result.exit_code == 0, result.stderr
        assert server.count == 5
    _assert_complete(tmp_path)


def test_requests_per_minute_holds_as_the_server_sees_it(tmp_path: Path) -> None:
    """rpm 300 (5 a second, at most ~5 at once), with 20 % of bodies failing once with a 5xx:
    retries are charged too. In every interval of arrivals, the count stays within the
    limiter's documented bound ``burst + rate * length``."""
    rpm = 300
    hook = PerBody(lambda b, n: Fault(status=500) if n == 0 and _chosen(b, 20) else None)
    with FakeLLMServer(faults=hook) as server:
        result = _build(tmp_path, server, workers=8, remote={"requests_per_minute": rpm})
        assert result.exit_code == 0, result.stderr
        arrivals = server.arrivals
    rate = rpm / 61  # per second (synthc.runtime.limits: limit / (window + burst))
    burst = rate * 1.0
    assert len(arrivals) > REQUESTS  # retries happened and were counted
    worst = 0.0
    for i, start in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            allowed = burst + rate * (arrivals[j] - start + 0.05)  # 50 ms of loop jitter
            worst = max(worst, (j - i + 1) / allowed)
    assert worst <= 1.0, worst
    assert len(arrivals) <= rpm  # and the whole run fits in one minute's budget
    _assert_complete(tmp_path)


def test_input_tokens_per_minute_hold_as_the_server_sees_it(tmp_path: Path) -> None:
    """itpm 1,200 (about 20 tokens a second): in every interval of arrivals, the input tokens
    the server counted (FakeLLMServer reports a prompt's words as its tokens, and the
    limiter settles with that usage) stay within ``burst + rate * length``, plus one request
    the limiter may let run into debt."""
    itpm = 1_200
    with FakeLLMServer() as server:
        result = _build(tmp_path, server, workers=8, remote={"input_tokens_per_minute": itpm})
        assert result.exit_code == 0, result.stderr
        bodies, arrivals = server.requests, server.arrivals
    tokens = [sum(len(str(m["content"]).split()) for m in body["messages"]) for body in bodies]
    rate = itpm / 61
    burst = rate * 1.0
    worst = 0.0
    for i, start in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            allowed = burst + rate * (arrivals[j] - start + 0.05) + max(tokens)
            worst = max(worst, sum(tokens[i : j + 1]) / allowed)
    assert worst <= 1.0, worst
    assert sum(tokens) > burst * 2  # the limit was actually exercised
    _assert_complete(tmp_path)


def test_output_tokens_per_minute_hold_as_the_server_sees_it(tmp_path: Path) -> None:
    """otpm 900 (about 15 tokens a second): a reply's size is known only once it is in, so
    each request is charged the running mean (at first max_new_tokens, capped at a burst)
    and what a reply used beyond that is charged when it arrives. In every interval of
    arrivals, the tokens the server replied with (a reply's words) stay within
    ``burst + rate * length``, plus one reply of debt, plus what the requests in flight or
    queued (at most num_workers) may have been under-charged."""
    otpm, workers = 900, 8
    with FakeLLMServer() as server:
        result = _build(
            tmp_path, server, workers=workers, remote={"output_tokens_per_minute": otpm}
        )
        assert result.exit_code == 0, result.stderr
        bodies, arrivals = server.requests, server.arrivals
    tokens = [len(default_reply(body).split()) for body in bodies]
    rate = otpm / 61
    burst = rate * 1.0
    owed = max(tokens) + workers * (max(tokens) - min(tokens))
    worst = 0.0
    for i, start in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            allowed = burst + rate * (arrivals[j] - start + 0.05) + owed
            worst = max(worst, sum(tokens[i : j + 1]) / allowed)
    assert worst <= 1.0, worst
    assert sum(tokens) > 2 * (burst + owed)  # the limit was actually exercised
    _assert_complete(tmp_path)
