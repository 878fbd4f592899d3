"""Shared fixtures for the unit tests: write a config, run the front half on it.

Helpers are fixtures (not importable functions) because tests/ has no packages.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from synthc.compiler.graph import Graph
from synthc.compiler.lower import lower
from synthc.compiler.overrides import apply_overrides, parse_overrides
from synthc.compiler.resolve import resolve
from synthc.compiler.source import load_yaml
from synthc.compiler.validate import Spec, validate
from synthc.core.errors import ConfigError

# A model section that lowering accepts; appended by tests that lower a config.
INFERENCE = """
inference_config:
  engine: OPENAI
  model:
    model_name: gpt-4o-mini
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented YAML text to ``tmp_path/name`` and return the path."""

    def _write(text: str, name: str = "config.yaml", *, model: bool = False) -> Path:
        body = textwrap.dedent(text).lstrip("\n")
        if model:
            body += INFERENCE
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        return path

    return _write


def _load(path: Path, overrides: Sequence[str] = ()) -> Spec:
    document = load_yaml(path)
    data, source_map = apply_overrides(
        document.data, document.source_map, parse_overrides(overrides)
    )
    return validate(data, source_map, document.text, path)


def _lower(spec: Spec) -> Graph:
    return lower(spec, resolve(spec))


@pytest.fixture
def load_spec() -> Callable[..., Spec]:
    """The chain ``pipeline.load`` runs: read, override, validate."""
    return _load


@pytest.fixture
def lower_spec() -> Callable[[Spec], Graph]:
    """Lower a spec as ``pipeline.compile`` does (the model resolved first)."""
    return _lower


@pytest.fixture
def config_error() -> Callable[..., ConfigError]:
    """The ConfigError that reading (and with ``lowered=True`` lowering) ``path`` raises."""

    def _error(path: Path, overrides: Sequence[str] = (), *, lowered: bool = False) -> ConfigError:
        with pytest.raises(ConfigError) as info:
            spec = _load(path, overrides)
            if lowered:
                _lower(spec)
        return info.value

    return _error


@pytest.fixture
def short() -> Callable[[ConfigError], list[str]]:
    """Each diagnostic as ``name:line:col: message`` with the file's name only."""

    def _short(error: ConfigError) -> list[str]:
        out = []
        for d in error.diagnostics:
            if d.span is None:
                out.append(d.message)
            elif d.span.line == 0:
                out.append(f"{d.span.file}: {d.message}")
            else:
                out.append(f"{Path(d.span.file).name}:{d.span.line}:{d.span.col}: {d.message}")
        return out

    return _short
