"""Write a case's files, run oumi and synthc on them in this process, collect the rows.

Each case gets its own directory: ``config.yaml`` (pointed at the loopback server),
the data files and executor modules beside it, ``oumi.jsonl`` and ``synthc.jsonl``,
and synthc's cache under ``synthc-cache/`` (fresh, so nothing is reused). Both tools
run with the case directory as the working directory, where oumi looks for
relative paths.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cases import Case

API_KEY = "sk-parity"
NOISE = ("Entering warmup state",)  # oumi's adaptive-concurrency chatter


@dataclass
class Outcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # the exception that ended the run, as "Type: message"
    note: str = ""  # e.g. samples synthc failed but still wrote around
    warnings: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0


class Capture(logging.Handler):
    """Keeps WARNING and above of the loggers it is attached to, for one case at a time."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not any(noise in message for noise in NOISE):
            self.messages.append(f"{record.name}: {message}")

    def take(self) -> list[str]:
        messages, self.messages = self.messages, []
        return list(dict.fromkeys(messages))


def quiet_logging(capture: Capture) -> None:
    """Route oumi's and synthc's records to ``capture`` only (INFO and tqdm bars go away)."""
    for name in ("oumi", "synthc"):
        logger = logging.getLogger(name)
        logger.handlers = [capture]
        logger.setLevel(logging.WARNING)
        logger.propagate = False


# --- preparing a case ------------------------------------------------------------------


def prepare(case: Case, case_dir: Path, url: str) -> tuple[Path, dict[str, Any]]:
    """Write the case's config and files into a fresh ``case_dir`` (an earlier run's outputs
    and synthc cache are removed); return the config path and the config data."""
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    if case.source is not None:
        data = yaml.safe_load(case.source.read_text())
    else:
        data = copy.deepcopy(case.config or {})
    if case.num_samples is not None:
        data["num_samples"] = case.num_samples
    data["output_path"] = str(case_dir / "oumi.jsonl")
    inference = data.setdefault("inference_config", {})
    remote = inference.get("remote_params") or {}
    remote.update({"api_url": url, "api_key": API_KEY, "politeness_policy": 0})
    inference["remote_params"] = remote
    for name, text in case.files.items():
        _write(case_dir / name, text)
    for name, source in case.copies.items():
        shutil.copy(source, case_dir / name)
    path = case_dir / "config.yaml"
    _write(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
    return path, data


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


# --- running each tool ------------------------------------------------------------------


def run_oumi(config_path: Path) -> Outcome:
    from oumi.core.configs.synthesis_config import SynthesisConfig
    from oumi.core.synthesis.synthesis_pipeline import SynthesisPipeline

    config = SynthesisConfig.from_yaml(config_path)
    config.finalize_and_validate()  # as `oumi synth` does
    SynthesisPipeline(config).synthesize()
    return Outcome(rows=read_rows(config_path.parent / "oumi.jsonl"))


def run_synthc(config_path: Path) -> Outcome:
    import synthc

    out = config_path.parent / "synthc.jsonl"
    cache = config_path.parent / "synthc-cache"
    result = synthc.build(config_path, ["--output_path", str(out)], cache_dir=str(cache))
    stats = result.stats
    note = ""
    if stats.failed or stats.samples_failed:
        first = "; ".join(f"{node}: {why}" for node, why in stats.failures[:2])
        note = f"{stats.samples_failed} samples / {stats.failed} nodes failed: {first}"
    return Outcome(rows=read_rows(out), note=note)


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_side(
    run: Callable[[Path], Outcome], config_path: Path, capture: Capture, count: Callable[[], int]
) -> Outcome:
    """Run one tool on the case; any exception is recorded, never raised."""
    before, started = count(), time.monotonic()
    chatter = io.StringIO()  # progress bars and prints; the warnings go to ``capture``
    try:
        with (
            working_directory(config_path.parent),
            contextlib.redirect_stderr(chatter),
            contextlib.redirect_stdout(chatter),
        ):
            outcome = run(config_path)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        outcome = Outcome(error=describe(exc))
    outcome.warnings = capture.take()
    outcome.requests = count() - before
    outcome.seconds = time.monotonic() - started
    return outcome


def describe(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = " / ".join(lines[:3]) if lines else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."
