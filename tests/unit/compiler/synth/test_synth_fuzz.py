"""Mutated .synth files either compile or raise a SynthError that says where: never
another exception, never a lark traceback."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthc.compiler.lower import lower
from synthc.compiler.overrides import apply_overrides
from synthc.compiler.resolve import resolve
from synthc.compiler.synth.source import parse_synth
from synthc.compiler.validate import validate
from synthc.core.errors import ConfigError, SynthError, UnsupportedFeature
from synthc.runtime.inputs import load_inputs

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
SOURCES = [p.read_text() for p in sorted(EXAMPLES.glob("*.synth"))]
TOKENS = [
    "{", "}", "[", "]", '"', '"""', "@", "->", "..", ",", ":", "#", "\t", "\n", " ",
    "sample", "generate", "user", "system", "tool", "chat", "model", "samples", "postprocess",
    "0.5", "-1", "1e9", "true", "null", "x", "{topic}", "{nope}", "\\", "'",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        cut = draw(st.integers(1, 12))
        token = draw(st.sampled_from(TOKENS) | st.text(max_size=3))
        if kind == "insert":
            text = text[:at] + token + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + cut :]
        else:
            text = text[:at] + token + text[at + cut :]
    return text


FUZZ = EXAMPLES / "fuzz.synth"  # never written: it only places relative paths in examples/


def _compile(text: str) -> None:
    document = parse_synth(text, str(FUZZ))
    data, source_map = apply_overrides(document.data, document.source_map, [])
    spec = validate(data, source_map, text, FUZZ)
    lower(spec, resolve(spec), load_inputs(spec))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_input_compiles_or_says_where(text: str) -> None:
    try:
        _compile(text)
    except ConfigError as exc:
        assert exc.diagnostics
        for diagnostic in exc.diagnostics:
            assert diagnostic.span is not None and diagnostic.span.line >= 1, diagnostic
        assert exc.render().startswith(f"{FUZZ}:")
    except UnsupportedFeature as exc:
        assert exc.span is not None
    except SynthError as exc:  # pragma: no cover - the assertion explains
        raise AssertionError(f"a SynthError without a position: {exc!r}") from None


def test_every_example_compiles_unmutated() -> None:
    for text in SOURCES:
        _compile(text)
