"""overrides: ``--path value`` arguments in; a new mapping and spans that name the override out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synthc.compiler.overrides import Override, apply_overrides, parse_overrides
from synthc.compiler.source import SourceMap, load_yaml
from synthc.core.errors import ConfigError, Span

Write = Callable[..., Path]

CONFIG = """\
num_samples: 10
strategy_params:
  sampled_attributes:
    - id: topic
      possible_values:
        - id: a
          sample_rate: 0.5
        - id: b
inference_config:
  remote_params:
  generation:
    temperature: 0.0
"""


def _apply(write: Write, *args: str) -> tuple[dict[str, Any], SourceMap]:
    doc = load_yaml(write(CONFIG))
    return apply_overrides(doc.data, doc.source_map, parse_overrides(args))


def _error(write: Write, *args: str) -> str:
    with pytest.raises(ConfigError) as info:
        _apply(write, *args)
    (d,) = info.value.diagnostics
    return f"{d.span}: {d.message}"


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "path", "value"),
    [
        (["--num_samples", "50"], ("num_samples",), 50),
        (["--num_samples=50"], ("num_samples",), 50),
        (["--a.b=value"], ("a", "b"), "value"),
        (["--a.b", "0.5"], ("a", "b"), 0.5),
        (["--a.b", "1e-3"], ("a", "b"), 0.001),
        (["--flag", "true"], ("flag",), True),
        (["--flag", "False"], ("flag",), False),
        (["--x", "abc"], ("x",), "abc"),
        (["--x", "'50'"], ("x",), "50"),
        (["--x", "null"], ("x",), None),
        (["--x", "2024-01-01"], ("x",), "2024-01-01"),
        (["--x", "a: b: c"], ("x",), "a: b: c"),  # not YAML: kept as text
        (["--x", "[1, 2"], ("x",), "[1, 2"),
        (["--x", "[a, b]"], ("x",), ["a", "b"]),
        (["--x", "  "], ("x",), "  "),
        (["--x="], ("x",), ""),
        (["--a[0].b", "1"], ("a", 0, "b"), 1),
        (["--a.0.b", "1"], ("a", 0, "b"), 1),
        (["--a[2][3]", "1"], ("a", 2, 3), 1),
        (["--x=a=b"], ("x",), "a=b"),
    ],
)
def test_parse(args: list[str], path: tuple[str | int, ...], value: Any) -> None:
    (override,) = parse_overrides(args)
    assert override.path == path
    assert override.value == value
    assert type(override.value) is type(value)


def test_parse_several_and_keep_text() -> None:
    overrides = parse_overrides(["--num_samples", "5", "--seed=3", "--a.b", "x y"])
    assert [o.text for o in overrides] == ["--num_samples 5", "--seed=3", "--a.b x y"]
    assert [o.value for o in overrides] == [5, 3, "x y"]


@pytest.mark.parametrize("arg", ["num_samples", "-n", "--", "5"])
def test_must_start_with_double_dash(arg: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_overrides([arg, "1"])
    assert str(info.value) == (
        f"command line: expected an override like --num_samples 50, got {arg!r}"
    )


@pytest.mark.parametrize("args", [["--num_samples"], ["--num_samples", "--seed", "3"]])
def test_missing_value(args: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_overrides(args)
    assert str(info.value) == (
        "command line: override --num_samples has no value "
        "(write --num_samples VALUE or --num_samples=VALUE)"
    )


@pytest.mark.parametrize(
    "name", ["a..b", "a.", ".a", "[0]", "0.a", "a[x]", "a[-1]", "a[0]b", "a.[0]", "=3"]
)
def test_unreadable_path(name: str) -> None:
    arg = f"--{name}" if "=" in name else f"--{name}=1"
    with pytest.raises(ConfigError) as info:
        parse_overrides([arg])
    key = name.partition("=")[0]
    assert f"cannot read the path {key!r}" in str(info.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (".nan", "'.nan' is not a finite number"),
        ("!!binary aGk=", "unsupported YAML value of type bytes"),
        ("'<<': 1", ""),  # a quoted '<<' is an ordinary key
    ],
)
def test_values_follow_config_rules(value: str, message: str) -> None:
    if not message:
        assert parse_overrides(["--x", value])[0].value == {"<<": 1}
        return
    with pytest.raises(ConfigError) as info:
        parse_overrides(["--x", value])
    (d,) = info.value.diagnostics
    assert message in d.message
    assert d.span == Span(f"override --x {value}", 0, 0)


# --- applying -----------------------------------------------------------------------------


def test_sets_value_and_leaves_input_alone(write: Write) -> None:
    doc = load_yaml(write(CONFIG))
    data, _ = apply_overrides(doc.data, doc.source_map, parse_overrides(["--num_samples", "50"]))
    assert data["num_samples"] == 50
    assert doc.data["num_samples"] == 10


def test_index_forms(write: Write) -> None:
    for arg in (
        "--strategy_params.sampled_attributes[0].possible_values[1].sample_rate=0.25",
        "--strategy_params.sampled_attributes.0.possible_values.1.sample_rate=0.25",
    ):
        data, _ = _apply(write, arg)
        values = data["strategy_params"]["sampled_attributes"][0]["possible_values"]
        assert values[1] == {"id": "b", "sample_rate": 0.25}
        assert values[0] == {"id": "a", "sample_rate": 0.5}


def test_creates_missing_mappings(write: Write) -> None:
    data, _ = _apply(write, "--inference_config.model.model_name", "gpt-4o")
    assert data["inference_config"]["model"] == {"model_name": "gpt-4o"}
    data, _ = _apply(write, "--brand.new.path", "1")
    assert data["brand"] == {"new": {"path": 1}}


def test_fills_an_empty_mapping(write: Write) -> None:
    # ``remote_params:`` with nothing after it is null in YAML
    data, _ = _apply(write, "--inference_config.remote_params.num_workers", "4")
    assert data["inference_config"]["remote_params"] == {"num_workers": 4}


def test_later_override_wins(write: Write) -> None:
    data, _ = _apply(write, "--num_samples", "5", "--num_samples", "7")
    assert data["num_samples"] == 7


def test_bad_index_names_path_and_range(write: Write) -> None:
    assert _error(write, "--strategy_params.sampled_attributes[3].id", "x") == (
        "override --strategy_params.sampled_attributes[3].id x: "
        "strategy_params.sampled_attributes[3] does not exist: the list has 1 item(s), "
        "so valid indexes are [0]..[0]"
    )
    assert _error(write, "--strategy_params.sampled_attributes.0.possible_values.2=1") == (
        "override --strategy_params.sampled_attributes.0.possible_values.2=1: "
        "strategy_params.sampled_attributes[0].possible_values[2] does not exist: "
        "the list has 2 item(s), so valid indexes are [0]..[1]"
    )


def test_index_into_a_missing_list(write: Write) -> None:
    assert _error(write, "--strategy_params.generated_attributes[0].id", "q") == (
        "override --strategy_params.generated_attributes[0].id q: "
        "strategy_params.generated_attributes[0] does not exist: the list has 0 item(s), "
        "so valid indexes are nothing (it is empty)"
    )


def test_name_into_a_list(write: Write) -> None:
    assert _error(write, "--strategy_params.sampled_attributes.id", "x") == (
        "override --strategy_params.sampled_attributes.id x: strategy_params.sampled_attributes "
        "is a list: index it with [0]..[0], not 'id'"
    )


def test_path_through_a_scalar(write: Write) -> None:
    assert _error(write, "--num_samples.value", "3") == (
        "override --num_samples.value 3: cannot set num_samples.value: "
        "num_samples is a plain value, not a mapping or list"
    )
    assert _error(write, "--strategy_params.sampled_attributes[0].id.x=1") == (
        "override --strategy_params.sampled_attributes[0].id.x=1: cannot set "
        "strategy_params.sampled_attributes[0].id.x: strategy_params.sampled_attributes[0].id "
        "is a plain value, not a mapping or list"
    )


# --- spans --------------------------------------------------------------------------------


def test_spans_of_overridden_values(write: Write) -> None:
    _, source_map = _apply(write, "--num_samples", "1", "--inference_config.model.model_name=m")
    assert str(source_map.span(("num_samples",))) == "override --num_samples 1"
    assert str(source_map.span(("inference_config", "model", "model_name"))) == (
        "override --inference_config.model.model_name=m"
    )
    # a mapping the override created points at it; an existing one keeps its place
    assert str(source_map.span(("inference_config", "model"))) == (
        "override --inference_config.model.model_name=m"
    )
    assert source_map.span(("inference_config",)) == Span(source_map.file, 9, 1)
    # untouched values keep theirs
    assert source_map.span(("strategy_params",)) == Span(source_map.file, 2, 1)


def test_replacing_a_subtree_forgets_its_old_spans(write: Write) -> None:
    _, source_map = _apply(write, "--strategy_params.sampled_attributes", "[]")
    sampled = ("strategy_params", "sampled_attributes")
    assert str(source_map.span((*sampled, 0, "id"))) == (
        "override --strategy_params.sampled_attributes []"
    )
    assert (*sampled, 0) not in source_map.spans
    assert (*sampled, 0, "id") not in source_map.ranges


def test_locate_inside_overridden_value_points_at_override(write: Write) -> None:
    path = ("strategy_params", "sampled_attributes", 0, "id")
    _, source_map = _apply(write, "--strategy_params.sampled_attributes[0].id", "{x}")
    assert str(source_map.locate(path, "{x}")) == (
        "override --strategy_params.sampled_attributes[0].id {x}"
    )


def test_override_span_renders_without_position() -> None:
    override = Override(("num_samples",), 1, "--num_samples 1")
    assert override.span == Span("override --num_samples 1", 0, 0)
    assert str(override.span) == "override --num_samples 1"


def test_a_digit_that_is_not_a_number_is_a_name() -> None:
    """ "¹" is a digit to str.isdigit but not to int(): found by the hostile-input fuzzing."""
    (override,) = parse_overrides(["--a.¹=5"])
    assert override.path == ("a", "¹")
    (override,) = parse_overrides(["--a.٣=5"])  # an Arabic-Indic three is a number
    assert override.path == ("a", 3)
