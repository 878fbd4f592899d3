"""Hostile and malformed input: every config compiles or is refused with a SynthError that
says where; nothing else escapes, through the library or the CLI. YAML bombs are refused
in bounded memory; templates cannot reach files or Python attributes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import synthc
from synthc.core.errors import ConfigError, SynthError
from tests.conftest import REPO, run_cli

EXAMPLES = REPO / "examples"
YAMLS = [p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))]
SYNTHS = [p.read_text() for p in sorted(EXAMPLES.glob("*.synth"))]
YAML_TOKENS = [
    ":", "- ", "[", "]", "{", "}", "&a ", "*a", "<<: *a", "!!python/object:os.system ", "!!binary ",
    "? ", "|", ">", "---\n", "...\n", "%YAML 1.1\n", "\t", "\n", "  ", "#", '"', "'", "\\",
    "null", "~", "true", "-1", "0.5", ".nan", "0x1F", "1_000", "{x}", "{nope}", "{x.__class__}",
    "id: x", "role: TOOL", "engine: VLLM", "num_samples: 0", "\u202e", "\x00", "\ufeff",
]  # fmt: skip
SYNTH_TOKENS = [
    "{", "}", "[", "]", '"', '"""', "@", "->", ",", ":", "#", "\n", "sample", "generate",
    "user", "chat", "model", "samples", "0.5", "-1", "{topic}", "{nope}", "{topic.__class__}",
]  # fmt: skip
OVERRIDE_KEYS = [
    "num_samples", "seed", "output_path", "strategy_params.sampled_attributes[0].id",
    "strategy_params.sampled_attributes[0].possible_values[0].sample_rate",
    "strategy_params.sampled_attributes.9.id", "strategy_params.generated_attributes[0]",
    "inference_config.generation.temperature", "inference_config.engine",
    "inference_config.remote_params.num_workers", "nope.deeper", "strategy_params..x", "[0]",
    "inference_config.generation", "strategy_params.generated_attributes[-1].id",
]  # fmt: skip
OVERRIDE_VALUES = st.sampled_from(
    ["5", "-3", "0", "0.5", "1e3", "null", "[1, 2]", "{a: 1}", "", "'x", "x: [", "{x.__init__}"]
) | st.text(max_size=8)


@st.composite
def mutated(draw: st.DrawFn, sources: list[str], tokens: list[str]) -> str:
    text = draw(st.sampled_from(sources))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(1, 16))
        token = draw(st.sampled_from(tokens) | st.text(max_size=3))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        if kind == "insert":
            text = text[:at] + token + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + cut :]
        else:
            text = text[:at] + token + text[at + cut :]
    return text


def _compiles_or_says_where(path: Path) -> None:
    try:
        synthc.compile(path)
    except ConfigError as exc:
        assert exc.diagnostics
        for diagnostic in exc.diagnostics:
            assert diagnostic.span is not None, diagnostic
            assert diagnostic.span.file == str(path)
    except SynthError as exc:  # unsupported feature or engine: still names the file or engine
        assert str(exc)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated(YAMLS, YAML_TOKENS))
def test_mutated_yaml_compiles_or_says_where(text: str) -> None:
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _compiles_or_says_where(path)


def _cli_ok(*args: str) -> None:
    result = run_cli(*args)  # an unexpected exception propagates and fails the test
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ") or "Usage:" in result.stderr, result.stderr


CLI_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CLI_FUZZ
@given(
    st.sampled_from(["yaml", "synth"]).flatmap(
        lambda kind: st.tuples(
            st.just(kind),
            mutated(
                YAMLS if kind == "yaml" else SYNTHS, YAML_TOKENS if kind == "yaml" else SYNTH_TOKENS
            ),
        )
    )
)
def test_mutated_configs_through_the_cli(case: tuple[str, str]) -> None:
    kind, text = case
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / f"fuzz.{kind}"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _cli_ok("explain", str(path), "--cache-dir", str(Path(work) / "cache"))


@CLI_FUZZ
@given(
    st.sampled_from(sorted(EXAMPLES.glob("*.yaml")) + sorted(EXAMPLES.glob("*.synth"))),
    st.lists(
        st.tuples(st.sampled_from(OVERRIDE_KEYS) | st.text(max_size=6), OVERRIDE_VALUES), max_size=3
    ),
    st.booleans(),
)
def test_cli_overrides_apply_or_say_where(
    config: Path, pairs: list[tuple[str, str]], eq: bool
) -> None:
    overrides: list[str] = []
    for key, value in pairs:
        overrides += [f"--{key}={value}"] if eq else [f"--{key}", value]
    with tempfile.TemporaryDirectory() as work:
        _cli_ok("explain", str(config), *overrides, "--cache-dir", work)


BOMBS = {
    "billion laughs": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "num_samples: *i\n",
    "deep nesting": "num_samples: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "deep mappings": "".join(" " * i + f"k{i}:\n" for i in range(1_000)) + " " * 1_000 + "v\n",
    "huge file": "num_samples: 1\n# " + "x" * (17 * 1024 * 1024) + "\n",
}
EXPECTED = {
    "billion laughs": "config expands to more than 1000000 values (YAML aliases?)",
    "deep nesting": "config nests deeper than 64 levels",
    "deep mappings": "config nests deeper than 64 levels",
    "huge file": "the limit is 16777216",
}
RSS = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(done.returncode)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.stdout.write(done.stderr)
"""


def _peak_rss(path: Path) -> tuple[int, int, str]:
    """Exit code, peak RSS in KiB and stderr of ``synthc explain PATH`` in a fresh process."""
    command = [sys.executable, "-c", RSS, sys.executable, "-m", "synthc", "explain", str(path)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=path.parent)
    code, peak, stderr = out.stdout.split("\n", 2)
    return int(code), int(peak), stderr


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_yaml_bombs_are_refused_in_bounded_memory(tmp_path: Path, bomb: str) -> None:
    baseline = tmp_path / "plain.yaml"
    baseline.write_text((EXAMPLES / "geography_qa.yaml").read_text())
    _, normal, _ = _peak_rss(baseline)
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMBS[bomb])
    code, peak, stderr = _peak_rss(path)
    assert code == 2 and "Traceback" not in stderr
    assert stderr.startswith("error: ") and EXPECTED[bomb] in stderr, stderr
    assert peak - normal < 64 * 1024, (peak, normal)  # KiB: well under what expanding would take


HOSTILE_PLACEHOLDERS = [
    "{difficulty.__class__}",
    "{difficulty.__init__.__globals__}",
    "{difficulty.__class__.__mro__}",
    "{topic.description.__class__}",
    "{example_question.__len__}",
    "{difficulty.name.__doc__}",
    "{open('/etc/passwd')}",
    "{__import__}",
    "{difficulty[__class__]}",
    "{0.__class__}",
]


@pytest.mark.parametrize("placeholder", HOSTILE_PLACEHOLDERS)
def test_templates_cannot_reach_python_attributes_or_files(
    tmp_path: Path, placeholder: str
) -> None:
    text = (EXAMPLES / "geography_qa.yaml").read_text().replace("{difficulty}", placeholder, 1)
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    result = run_cli("explain", str(path), "--format", "json")
    assert result.exit_code == 2, result.stdout
    assert result.stderr.startswith(f"error: {path}:")
    for leak in ("<class", "<built-in", "<method", "root:", "__builtins__", "str(object"):
        assert leak not in result.stderr + result.stdout
    with pytest.raises(ConfigError):
        synthc.compile(path)
    json.dumps(placeholder)
