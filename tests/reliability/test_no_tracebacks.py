"""Malformed URLs, settings, options and specs get a clear message and exit 2, never a traceback;
misspelled secret keys never echo their value.

Each case once crashed with a Python traceback (ValueError: Invalid IPv6 URL,
RecursionError, OverflowError, socket.gaierror, MemoryError...) or was silently
accepted (a num_samples of 10^26, ``num_samples: true``). The commands run as a
user runs them, in a fresh process.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthc.cache.lookups import lookup_threads
from synthc.cache.maintenance import parse_size
from synthc.cache.pusher import push_wait
from synthc.cache.server import LISTEN_ERRORS, CacheServer
from synthc.core.errors import CacheError
from synthc.core.redact import looks_secret, mask_line
from tests.conftest import run_cli
from tests.reliability.helpers import run_synthc

CONFIG = """\
num_samples: 2
strategy_params:
  input_examples: [{examples: [{item: a}, {item: b}]}]
  generated_attributes:
    - id: question
      instruction_messages:
        - {role: USER, content: "Ask about {item}."}
inference_config:
  model: {model_name: m}
  engine: OPENAI
  remote_params: {api_key: sk-x, api_url: "http://127.0.0.1:9/v1/chat/completions"}
"""
SECRET = "sk-live-do-not-print-4242"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return path


URL = "--inference_config.remote_params.api_url"
CASES = {  # name: (arguments after the config, environment, what the message says)
    "api_url: invalid IPv6": ([URL, "http://[::1"], {}, "is not a URL: Invalid IPv6 URL"),
    "api_url: port out of range": ([URL, "http://h:99999/v1"], {}, "Port out of range"),
    "api_url: not http": ([URL, "ftp://h/v1"], {}, "is not an http(s) URL"),
    "remote cache: invalid IPv6": (["--remote-cache", "http://[::1"], {}, "is not a URL"),
    "remote cache: port out of range": (
        ["--remote-cache", "http://127.0.0.1:99999"],
        {},
        "Port out of range",
    ),
    "lookups setting": (
        ["--remote-cache", "shared"],
        {"SYNTHC_REMOTE_CACHE_LOOKUPS": "many"},
        "SYNTHC_REMOTE_CACHE_LOOKUPS='many': expected a whole number, at least 1",
    ),
    "push wait setting": (
        ["--remote-cache", "shared"],
        {"SYNTHC_REMOTE_CACHE_PUSH_WAIT": "-3"},
        "SYNTHC_REMOTE_CACHE_PUSH_WAIT='-3': expected a number, at least 0",
    ),
    "num_samples too large": (
        ["--num_samples", "99999999999999999999999999"],
        {},
        "less than or equal to 100000000",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_settings_are_clear_errors(config: Path, case: str) -> None:
    args, env, message = CASES[case]
    done = run_synthc("build", config.name, "-q", *args, cwd=config.parent, env={**_env(), **env})
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SYNTHC_")}


def test_num_samples_true_is_refused_where_written(config: Path) -> None:
    config.write_text(CONFIG.replace("num_samples: 2", "num_samples: true"))
    result = run_cli("explain", str(config))
    assert result.exit_code == 2
    assert "c.yaml:1:1: num_samples: expected a number of samples, not true" in result.stderr


@pytest.mark.parametrize("width", ["9999999999", "99999999", "10001"])
def test_a_huge_format_width_is_refused_before_any_request(config: Path, width: str) -> None:
    config.write_text(CONFIG.replace("{item}", f"{{item:>{width}}}"))
    result = run_cli("explain", str(config))
    assert result.exit_code == 2
    assert f"c.yaml:7:44: format spec in {{item:>{width}}} asks for" in result.stderr
    ok = CONFIG.replace("{item}", "{item:>10000}")
    config.write_text(ok)
    assert run_cli("explain", str(config)).exit_code == 0


@pytest.mark.parametrize("depth", [800, 3000])
def test_deep_synth_nesting_is_a_located_error(tmp_path: Path, depth: int) -> None:
    config = tmp_path / "deep.synth"
    config.write_text(
        "samples 1\nfoo " + "[" * depth + "1" + "]" * depth + '\ngenerate q { user "hi" }\n'
    )
    result = run_cli("explain", str(config))
    assert result.exit_code == 2
    assert "deep.synth:2:69: config nests deeper than 64 levels" in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"http://[::1"', "'http://[::1' is not a URL: Invalid IPv6 URL"),
        ("[shared, 'http://h:99999']", "'http://h:99999' is not a URL: Port out of range"),
        (
            "ftp://host/prefix",
            "unsupported remote cache 'ftp://host/prefix': use http://, https://, s3://",
        ),
        ("s3:///prefix", "remote cache 's3:///prefix': name the bucket, e.g. s3://bucket/prefix"),
    ],
)
def test_a_bad_remote_cache_in_the_config_is_a_located_error(
    config: Path, value: str, message: str
) -> None:
    config.write_text(f"synthc:\n  remote_cache: {value}\n{CONFIG}")
    result = run_cli("explain", str(config))
    assert result.exit_code == 2
    assert f"c.yaml:2:3: synthc.remote_cache: {message}" in result.stderr


def test_explain_into_a_missing_directory_is_a_clear_error(config: Path) -> None:
    result = run_cli("explain", str(config), "-o", str(config.parent / "no" / "such" / "x.txt"))
    assert result.exit_code == 2
    assert "cannot write" in result.stderr and "No such file or directory" in result.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-size", "abc"], "Invalid value for '--max-size': not a size: 'abc'"),
        (["--port", "99999"], "Invalid value for '--port'"),
        (["--port", "-1"], "Invalid value for '--port'"),
        (["--host", "999.1.1.1", "--port", "0"], "cannot listen on 999.1.1.1:0"),
    ],
)
def test_cache_serve_options_are_clear_errors(
    tmp_path: Path, option: list[str], message: str
) -> None:
    done = run_synthc("cache", "serve", "served", "--no-token", *option, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["api_kee", "api_kye", "apikey", "API_KEY", "auth_token"])
def test_a_misspelled_secret_key_never_shows_its_value(config: Path, name: str) -> None:
    override = run_cli("explain", str(config), f"--inference_config.remote_params.{name}", SECRET)
    assert override.exit_code == 2
    assert SECRET not in override.stderr + override.stdout
    config.write_text(CONFIG.replace("{api_key: sk-x,", f"{{{name}: {SECRET},"))
    written = run_cli("explain", str(config))
    assert written.exit_code == 2
    assert f"unknown key {name!r}" in written.stderr
    assert SECRET not in written.stderr + written.stdout


def test_a_misspelled_secret_in_synth_never_shows_its_value(tmp_path: Path) -> None:
    config = tmp_path / "k.synth"
    config.write_text(f'samples 1\napi_kee "{SECRET}"\ngenerate q {{ user "hi" }}\n')
    result = run_cli("explain", str(config))
    assert result.exit_code == 2
    assert SECRET not in result.stderr + result.stdout


def test_ordinary_values_are_not_masked() -> None:
    assert mask_line("  max_new_tokens: 48") == "  max_new_tokens: 48"
    assert mask_line("  model_name: gpt-4o") == "  model_name: gpt-4o"
    assert not looks_secret("max_new_tokens") and not looks_secret("api_url")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_any_api_url_compiles_or_is_a_located_error(text: str) -> None:
    """Fuzz: whatever ``api_url`` holds, explain compiles it or says where it is wrong."""
    Path("fuzz.yaml").write_text(CONFIG)
    result = run_cli("explain", "fuzz.yaml", f"{URL}={text}")
    assert result.exit_code in (0, 2), result.stderr
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_format_spec_renders_or_is_a_located_error(spec: str) -> None:
    """Fuzz: a placeholder's format spec either compiles or is refused with its place."""
    text = CONFIG.replace("{item}", "{item:" + spec.replace("\n", " ") + "}")
    Path("fuzz-spec.yaml").write_text(text)
    result = run_cli("explain", "fuzz-spec.yaml")
    assert result.exit_code in (0, 2), result.stderr
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ")


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["SYNTHC_REMOTE_CACHE_LOOKUPS", "SYNTHC_REMOTE_CACHE_PUSH_WAIT"]),
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
        max_size=12,
    ),
)
def test_any_remote_setting_is_used_or_refused(name: str, value: str) -> None:
    """Fuzz: a remote-cache environment setting is a number synthc uses, or a CacheError."""
    os.environ[name] = value
    try:
        read = lookup_threads if name.endswith("LOOKUPS") else push_wait
        try:
            number = read()
        except CacheError as exc:
            assert name in str(exc)
        else:
            assert number >= 0
    finally:
        del os.environ[name]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_any_max_size_is_a_size_or_a_clear_error(text: str) -> None:
    """Fuzz: ``cache serve --max-size`` (and ``cache gc --max-size``) parse or say why."""
    try:
        size = parse_size(text)
    except ValueError as exc:
        assert "not a size" in str(exc)
    else:
        assert size >= 0


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=20))
def test_any_serve_host_listens_or_is_a_clear_error(host: str) -> None:
    """Fuzz: ``cache serve --host`` either listens (stopped at once) or fails in a way the
    command turns into a message (it catches :data:`LISTEN_ERRORS`)."""
    server = CacheServer(Path("served"), None, host=host, port=0)
    try:
        server.start()
    except LISTEN_ERRORS:
        return
    server.stop()
