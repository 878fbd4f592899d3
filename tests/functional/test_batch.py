"""Batch builds through both providers' batch APIs, counted at a real loopback server.

The fake server speaks OpenAI's files + batches and Anthropic's message batches
(time compressed), and answers each line exactly as it answers the same body
online. What it received proves each claim: the custom_ids submitted (a node's
key; a node submitted twice shows up twice), the lines it answered, the batches
created. Builds that are killed run as real ``synthc`` processes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from synthc.cache.batches import BatchJournal
from synthc.testing import Fault
from synthc.testing.server import FakeLLMServer
from tests.conftest import run_cli
from tests.reliability.helpers import run_synthc, synthc_command
from tests.reliability.helpers import write_config as two_step_config

KEY = "sk-batch-test"
PROVIDERS = {  # engine → the online route the config names
    "OPENAI": "/v1/chat/completions",
    "ANTHROPIC": "/v1/messages",
}


def write_config(
    path: Path,
    server: FakeLLMServer,
    engine: str,
    *,
    samples: int,
    output: str = "out.jsonl",
    key: str = KEY,
) -> Path:
    """Two attributes per sample, the second after the first: ``2 * samples`` nodes."""
    return two_step_config(
        path,
        server,
        samples=samples,
        output=output,
        retries=2,
        remote={"api_key": key},
        engine=engine,
        model="gpt-4o-mini" if engine == "OPENAI" else "claude-3-5-haiku-20241022",
        route=PROVIDERS[engine],
    )


def submitted(server: FakeLLMServer) -> Counter[str]:
    """How many times each custom_id (node key) was submitted in any batch."""
    return Counter(server.batches.custom_ids)


def journal_entries(cache: Path) -> list[Any]:
    journal = BatchJournal.open(cache)
    try:
        return journal.entries()
    finally:
        journal.close()


@pytest.mark.parametrize("engine", list(PROVIDERS))
def test_batch_build_sends_each_node_once_and_writes_the_online_rows(
    tmp_path: Path, engine: str
) -> None:
    with FakeLLMServer(api_key=KEY, batch_seconds=0.1) as server:
        config = write_config(tmp_path / "qa.yaml", server, engine, samples=500)
        batch = run_cli("build", str(config), "--batch", "-q", "--cache-dir", "batch-cache")
        assert batch.exit_code == 0, batch.stderr
        sent = submitted(server)
        assert len(sent) == 1000 and set(sent.values()) == {1}  # every node, once
        assert server.count == 1000  # lines answered
        assert server.batches.created == 2  # the questions, then the answers after them
        batch_rows = (tmp_path / "out.jsonl").read_bytes()

        server.reset()
        online = run_cli("build", str(config), "-q", "--cache-dir", "online-cache")
        assert online.exit_code == 0, online.stderr
        assert server.count == 1000
        assert (tmp_path / "out.jsonl").read_bytes() == batch_rows  # the same rows, byte for byte

        server.reset()  # the batch build's cache serves an online rebuild: the same nodes
        again = run_cli("build", str(config), "-q", "--cache-dir", "batch-cache")
        assert again.exit_code == 0, again.stderr
        assert server.count == 0 and server.batches.created == 2
    assert journal_entries(tmp_path / "batch-cache") == []  # every answer is in the cache


def _wait_for(condition: Any, build: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60  # a hang guard, not a timing claim
    while not condition():
        if build.poll() is not None:
            raise AssertionError(f"the build ended before {what}: {build.communicate()}")
        assert time.monotonic() < deadline, f"no {what} within a minute"
        time.sleep(0.01)


@pytest.mark.parametrize("engine", list(PROVIDERS))
@pytest.mark.parametrize("moment", ["submitted", "noted"])
def test_sigkill_after_submission_then_the_rerun_submits_nothing_again(
    tmp_path: Path, engine: str, moment: str
) -> None:
    """Killed the moment the provider accepted the batch (before or after synthc noted its
    id), the rerun finds the batch and downloads it: nothing is submitted twice."""
    with FakeLLMServer(api_key=KEY, batch_seconds=1.0) as server:
        write_config(tmp_path / "qa.yaml", server, engine, samples=200)
        cache = tmp_path / ".synthc" / "cache"
        server.batches.reply_delay = 30.0 if moment == "submitted" else 0.0
        build = subprocess.Popen(
            synthc_command("build", "qa.yaml", "--batch", "-q"),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            if moment == "submitted":  # the provider has it; synthc has not heard back
                _wait_for(lambda: server.batches.created == 1, build, "a batch")
                assert not any(e.batch_id for e in _entries_if_any(cache))
            else:
                noted = lambda: any(e.batch_id for e in _entries_if_any(cache))  # noqa: E731
                _wait_for(noted, build, "a noted batch")
        finally:
            build.send_signal(signal.SIGKILL)
            build.communicate()
        assert server.batches.created == 1 and server.count == 0  # paid for, not yet answered
        questions = set(submitted(server))
        assert len(questions) == 200
        server.batches.reply_delay = 0.0

        done = run_synthc("build", "qa.yaml", "--batch", "-q", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        sent = submitted(server)
        assert set(sent.values()) == {1} and len(sent) == 400  # the answers were all that was new
        assert server.batches.created == 2
        assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 200


def _entries_if_any(cache: Path) -> list[Any]:
    if not (cache / "batches.db").exists():
        return []
    return journal_entries(cache)


@pytest.mark.parametrize("engine", list(PROVIDERS))
def test_an_expired_batch_has_only_its_unfinished_lines_submitted_again(
    tmp_path: Path, engine: str
) -> None:
    expire = lambda number: 0.3 if number == 0 else None  # noqa: E731 - the first: 30 % done
    with FakeLLMServer(api_key=KEY, batch_seconds=0.1, expire=expire) as server:
        config = write_config(tmp_path / "qa.yaml", server, engine, samples=500)
        result = run_cli("build", str(config), "--batch", "-q")
        assert result.exit_code == 0, result.stderr
        sent = server.batches.custom_ids
        first, again = set(sent[:500]), sent[500:850]
        assert len(again) == 350 and set(again) < first  # the 70 % that expired, once more
        assert server.count == 1000  # and no line was answered twice
        assert len(sent) == 1000 + 350
        assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 500


@pytest.mark.parametrize("engine", list(PROVIDERS))
def test_two_builds_on_one_cache_submit_each_node_once(tmp_path: Path, engine: str) -> None:
    with FakeLLMServer(api_key=KEY, batch_seconds=0.5) as server:
        for name in ("a", "b"):
            write_config(
                tmp_path / f"{name}.yaml", server, engine, samples=300, output=f"{name}.jsonl"
            )
        builds = [
            subprocess.Popen(
                synthc_command("build", f"{name}.yaml", "--batch", "-q", "--cache-dir", "shared"),
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("a", "b")
        ]
        errors = [build.communicate(timeout=180)[1] for build in builds]  # both, then judge
        assert [build.returncode for build in builds] == [0, 0], errors
        sent = submitted(server)
        assert len(sent) == 600 and set(sent.values()) == {1}
        assert server.count == 600
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def _fail_item_7(body: dict[str, Any], index: int) -> Fault | None:
    text = json.dumps(body)
    return Fault(status=400) if "about item-7." in text else None


@pytest.mark.parametrize("engine", list(PROVIDERS))
def test_per_line_errors_fail_only_their_nodes_and_the_rerun_retries_only_those(
    tmp_path: Path, engine: str
) -> None:
    with FakeLLMServer(api_key=KEY, batch_seconds=0.05, faults=_fail_item_7) as server:
        config = write_config(tmp_path / "qa.yaml", server, engine, samples=20)
        failed = run_cli("build", str(config), "--batch", "-q")
        assert failed.exit_code == 1
        assert "question[7]" in failed.stdout + failed.stderr
        assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 19
        assert server.count == 20 + 19  # question[7] failed, so answer[7] was never sent

        server.faults = None
        server.reset()
        before = len(server.batches.custom_ids)
        fixed = run_cli("build", str(config), "--batch", "-q")
        assert fixed.exit_code == 0, fixed.stderr
        assert server.count == 2  # question[7], then answer[7]
        assert len(server.batches.custom_ids) - before == 2
        assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 20


def test_no_wait_submits_and_exits_then_reruns_collect_with_another_key(tmp_path: Path) -> None:
    """--no-wait leaves the output alone and says how to collect; the rerun may use another
    API key (the key is in no record), and nothing is submitted twice."""
    with FakeLLMServer(api_key="sk-first", batch_seconds=0.5) as server:
        config = write_config(tmp_path / "qa.yaml", server, "OPENAI", samples=50, key="sk-first")
        first = run_cli("build", str(config), "--batch", "--no-wait")
        assert first.exit_code == 0, first.stderr
        assert "50 requests are with the provider" in first.stdout
        (batch_id,) = server.batches.ids
        progress = f"batches: 50 requests submitted, 50 in progress, 0 downloaded ({batch_id})"
        assert progress in first.stderr and batch_id in first.stdout
        assert f"synthc build {config} --batch" in first.stdout
        assert not (tmp_path / "out.jsonl").exists()
        assert server.batches.created == 1

        server.api_key = "sk-second"  # the team rotated the key meanwhile
        write_config(tmp_path / "qa.yaml", server, "OPENAI", samples=50, key="sk-second")
        time.sleep(server.batches.batch_seconds)  # let the provider finish the first batch
        second = run_cli("build", str(config), "--batch", "--no-wait")
        assert second.exit_code == 0, second.stderr
        assert server.count == 50 and server.batches.created == 2  # collected; answers sent
        assert not (tmp_path / "out.jsonl").exists()

        done = run_cli("build", str(config), "--batch")
        assert done.exit_code == 0, done.stderr
        sent = submitted(server)
        assert len(sent) == 100 and set(sent.values()) == {1}
        assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 50
        assert not any("sk-" in line for line in _journal_text(tmp_path / ".synthc" / "cache"))


def _journal_text(cache: Path) -> list[str]:
    """Every string in the cache directory's files, as the SQLite pages hold them."""
    texts: list[str] = []
    for path in cache.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    return texts


def test_a_refused_batch_is_a_clear_error_and_nothing_is_recorded(tmp_path: Path) -> None:
    with FakeLLMServer(api_key=KEY, batch_seconds=0.05) as server:
        config = write_config(tmp_path / "qa.yaml", server, "OPENAI", samples=10)
        server.batches.refuse = (429, "Enqueued token limit reached for gpt-4o-mini")
        refused = run_cli("build", str(config), "--batch", "-q")
        assert refused.exit_code == 2
        assert "Enqueued token limit reached for gpt-4o-mini" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert journal_entries(tmp_path / ".synthc" / "cache") == []

        server.batches.refuse = None
        again = run_cli("build", str(config), "--batch", "-q")
        assert again.exit_code == 0, again.stderr
        assert len(server.batches.custom_ids) == 20


def test_explain_prices_a_batch_build_at_the_batch_price(tmp_path: Path) -> None:
    with FakeLLMServer(api_key=KEY) as server:
        config = write_config(tmp_path / "qa.yaml", server, "OPENAI", samples=10)
        online = json.loads(run_cli("explain", str(config), "--format", "json").stdout)
        batch = json.loads(run_cli("explain", str(config), "--format", "json", "--batch").stdout)
        text = run_cli("explain", str(config), "--batch").stdout
    assert online["estimate"]["batch"] is False and batch["estimate"]["batch"] is True
    assert batch["estimate"]["cost_usd_max"] == pytest.approx(
        online["estimate"]["cost_usd_max"] / 2
    )
    assert "at the batch price" in text


def test_the_config_setting_turns_batches_on(tmp_path: Path) -> None:
    with FakeLLMServer(api_key=KEY, batch_seconds=0.05) as server:
        config = write_config(tmp_path / "qa.yaml", server, "OPENAI", samples=5)
        config.write_text(config.read_text() + "synthc:\n  batch: true\n")
        result = run_cli("build", str(config), "-q")
        assert result.exit_code == 0, result.stderr
        assert len(server.batches.custom_ids) == 10
        assert server.count == 10


def test_a_local_engine_refuses_batch_with_the_config_line(tmp_path: Path) -> None:
    config = tmp_path / "local.yaml"
    config.write_text(
        "num_samples: 1\n"
        "strategy_params:\n"
        "  input_examples: [{examples: [{x: 1}]}]\n"
        "  generated_attributes:\n"
        "    - id: q\n"
        "      instruction_messages: [{role: USER, content: hi}]\n"
        "inference_config:\n"
        "  model: {model_name: m}\n"
        "  engine: LLAMACPP\n"
    )
    result = run_cli("build", str(config), "--batch")
    assert result.exit_code == 2
    assert "local.yaml:9:" in result.stderr and "batch API" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_journal_notes_keys_before_submission_and_never_twice(tmp_path: Path) -> None:
    journal = BatchJournal.open(tmp_path)
    first, taken = journal.intend("OPENAI u", ["a", "b"])
    assert first is not None and taken == {}
    second, taken = journal.intend("OPENAI u", ["b", "c"])
    assert second is not None and second.size == 1 and set(taken) == {"b"}
    assert taken["b"].intent == first.intent
    assert journal.live("ANTHROPIC u", ["a"]) == {}  # another endpoint's batches are its own
    journal.submitted(first.intent, "batch_1")
    assert journal.live("OPENAI u", ["a"])["a"].batch_id == "batch_1"
    journal.settle(["a", "b"])
    journal.prune(lambda keys: [k for k in keys if k == "c"])
    assert journal.entries() == []
    journal.close()
