"""derive: values that need no model (postprocessing, transforms, rows), made as oumi makes them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synthc.compiler.graph import Graph, TransformRule
from synthc.compiler.spec import PostprocessingParams, TransformationType
from synthc.compiler.template import SampledValue, parse_template
from synthc.compiler.validate import Spec
from synthc.core.keys import node_key
from synthc.planning.derive import build_row, postprocess, transform

LEVEL = SampledValue("level", "Level", "How hard", "easy", "Easy", "For beginners")
SAMPLE_KEY = node_key("sample", {"seed": 0, "index": 3, "values": {}})


def _pp(**params: Any) -> PostprocessingParams:
    return PostprocessingParams(id="out", **params)


# --- postprocess --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "text", "expected"),
    [
        ({}, "  padded \n", "padded"),
        ({"strip_whitespace": False}, "  padded \n", "  padded \n"),
        # regex keeps the whole first match, not a group
        ({"regex": r"(\d+)-(\d+)"}, "a 12-34 b 56-78", "12-34"),
        ({"regex": r"\d+"}, "no digits", "no digits"),
        # cut_prefix: after the FIRST occurrence
        ({"cut_prefix": "A:"}, "Q: x A: one A: two", "one A: two"),
        ({"cut_prefix": "A:"}, "nothing here", "nothing here"),
        # cut_suffix: before the LAST occurrence
        ({"cut_suffix": "END"}, "one END two END three", "one END two"),
        ({"cut_suffix": "END"}, "nothing here", "nothing here"),
        ({"added_prefix": "<", "added_suffix": ">"}, " x ", "<x>"),
        ({"added_prefix": "", "added_suffix": ""}, "x", "x"),
        ({"regex": "", "cut_prefix": "", "cut_suffix": ""}, "x", "x"),
    ],
)
def test_postprocess_steps(params: dict[str, Any], text: str, expected: str) -> None:
    assert postprocess(text, _pp(**params)) == expected


def test_postprocess_order() -> None:
    """regex, then cut_prefix, cut_suffix, strip, and the added prefix and suffix last."""
    params = _pp(
        regex=r"\[.*\]",
        cut_prefix="[",
        cut_suffix="]",
        added_prefix="(",
        added_suffix=")",
    )
    text = "noise [ [a] b ] noise"
    # regex -> "[ [a] b ]"; cut_prefix -> " [a] b ]"; cut_suffix -> " [a] b "; strip -> "[a] b"
    assert postprocess(text, params) == "([a] b)"


def test_strip_happens_after_cuts_and_before_additions() -> None:
    params = _pp(cut_prefix="Answer:", added_prefix=" >", added_suffix="< ")
    assert postprocess("Answer:   42  ", params) == " >42< "


# --- transforms ---------------------------------------------------------------------------


def _rule(kind: TransformationType, templates: list[tuple[str, str]], **kw: Any) -> TransformRule:
    parsed = tuple((k, parse_template(t)) for k, t in templates)
    metadata = tuple((k, parse_template(t)) for k, t in kw.pop("metadata", {}).items())
    return TransformRule("t", kind, parsed, (), "digest", metadata=metadata, **kw)


VALUES: dict[str, Any] = {"q": "Why?", "a": "Because.", "level": LEVEL}


def test_string_transform() -> None:
    rule = _rule(TransformationType.STRING, [("", "Q: {q} ({level}) A: {a}")])
    assert transform(rule, VALUES, SAMPLE_KEY) == "Q: Why? (Easy) A: Because."


def test_list_transform() -> None:
    rule = _rule(TransformationType.LIST, [("0", "{q}"), ("1", "{a}"), ("2", "{level.id}")])
    assert transform(rule, VALUES, SAMPLE_KEY) == ["Why?", "Because.", "easy"]


def test_dict_transform_keeps_key_order_and_does_not_format_keys() -> None:
    rule = _rule(TransformationType.DICT, [("{z}", "{q}"), ("answer", "{a}")])
    value = transform(rule, VALUES, SAMPLE_KEY)
    assert value == {"{z}": "Why?", "answer": "Because."}
    assert list(value) == ["{z}", "answer"]


def test_chat_transform_shape() -> None:
    rule = _rule(
        TransformationType.CHAT,
        [("system", "Level: {level.description}"), ("user", "{q}"), ("assistant", "{a}")],
        metadata={"difficulty": "{level}"},
    )
    value = transform(rule, VALUES, SAMPLE_KEY)
    assert list(value) == ["conversation_id", "messages", "metadata"]
    assert value["messages"] == [
        {"content": "Level: For beginners", "role": "system"},
        {"content": "Why?", "role": "user"},
        {"content": "Because.", "role": "assistant"},
    ]
    assert all(list(m) == ["content", "role"] for m in value["messages"])
    assert value["metadata"] == {"difficulty": "Easy"}
    assert value["conversation_id"] == "t-" + "-".join(
        (SAMPLE_KEY[:8], SAMPLE_KEY[8:12], SAMPLE_KEY[12:16], SAMPLE_KEY[16:20], SAMPLE_KEY[20:])
    )
    # as oumi's Conversation.to_dict() serialises it
    assert json.dumps(value["messages"][1]) == '{"content": "Why?", "role": "user"}'


def test_chat_conversation_id_is_deterministic_per_sample() -> None:
    rule = _rule(TransformationType.CHAT, [("user", "{q}")])
    other_key = node_key("sample", {"seed": 0, "index": 4, "values": {}})
    first = transform(rule, VALUES, SAMPLE_KEY)["conversation_id"]
    assert transform(rule, VALUES, SAMPLE_KEY)["conversation_id"] == first
    assert transform(rule, {**VALUES, "q": "changed"}, SAMPLE_KEY)["conversation_id"] == first
    assert transform(rule, VALUES, other_key)["conversation_id"] != first


def test_chat_metadata_empty_and_given_conversation_id() -> None:
    rule = _rule(TransformationType.CHAT, [("user", "{q}")], conversation_id="fixed-id")
    value = transform(rule, VALUES, SAMPLE_KEY)
    assert value["conversation_id"] == "fixed-id"
    assert value["metadata"] == {}


# --- rows ---------------------------------------------------------------------------------

CONFIG = """\
num_samples: 2
strategy_params:
  input_examples:
    - examples:
        - {topic: space, src: [{field: f0}, {field: f1}]}
  sampled_attributes:
    - id: level
      name: Level
      description: d
      possible_values: [{id: easy, name: Easy, description: e}]
  generated_attributes:
    - id: raw
      instruction_messages: [{role: user, content: "Write about {topic} at {level}"}]
      postprocessing_params:
        id: clean
        keep_original_text_attribute: KEEP
  transformed_attributes:
    - id: pair
      transformation_strategy: {type: string, string_transform: "{topic}: {clean}"}
"""


def _graph(
    write: Callable[..., Path],
    load_spec: Callable[..., Spec],
    lower_spec: Callable[[Spec], Graph],
    keep: bool,
    extra: str = "",
) -> Graph:
    text = CONFIG.replace("KEEP", str(keep).lower()) + extra
    return lower_spec(load_spec(write(text, model=True)))


def _values() -> dict[str, Any]:
    return {
        "topic": "space",
        "src": [{"field": "f0"}, {"field": "f1"}],
        "level": LEVEL,
        "raw": "  RAW text ",
        "clean": "RAW text",
        "pair": "space: RAW text",
    }


def test_row_column_order_and_ids(
    write: Callable[..., Path], load_spec: Callable[..., Spec], lower_spec: Callable[[Spec], Graph]
) -> None:
    row = build_row(_graph(write, load_spec, lower_spec, keep=True), _values())
    assert list(row) == ["topic", "src", "level", "raw", "clean", "pair"]
    assert row["level"] == "easy"  # sampled attributes are stored as value ids
    assert row["raw"] == "  RAW text "


def test_row_hides_raw_text(
    write: Callable[..., Path], load_spec: Callable[..., Spec], lower_spec: Callable[[Spec], Graph]
) -> None:
    graph = _graph(write, load_spec, lower_spec, keep=False)
    assert graph.hidden == frozenset({"raw"})
    row = build_row(graph, _values())
    assert list(row) == ["topic", "src", "level", "clean", "pair"]


def test_row_skips_values_not_yet_known(
    write: Callable[..., Path], load_spec: Callable[..., Spec], lower_spec: Callable[[Spec], Graph]
) -> None:
    values = _values()
    del values["pair"]
    assert "pair" not in build_row(_graph(write, load_spec, lower_spec, keep=True), values)


PASSTHROUGH = """\
  passthrough_attributes: [pair, level, "src[1].field", "src[5].field", "topic[0]", nope, raw]
"""


def test_passthrough(
    write: Callable[..., Path], load_spec: Callable[..., Spec], lower_spec: Callable[[Spec], Graph]
) -> None:
    graph = _graph(write, load_spec, lower_spec, keep=True, extra=PASSTHROUGH)
    row = build_row(graph, _values())
    # listed order; bracket paths under their full text; missing paths and names skipped
    assert row == {
        "pair": "space: RAW text",
        "level": "easy",
        "src[1].field": "f1",
        "raw": "  RAW text ",
    }
    assert list(row) == ["pair", "level", "src[1].field", "raw"]


def test_passthrough_never_shows_hidden_raw_text(
    write: Callable[..., Path], load_spec: Callable[..., Spec], lower_spec: Callable[[Spec], Graph]
) -> None:
    graph = _graph(write, load_spec, lower_spec, keep=False, extra=PASSTHROUGH)
    row = build_row(graph, _values())
    assert "raw" not in row
    assert list(row) == ["pair", "level", "src[1].field"]


def test_passthrough_bracket_path_through_dicts_and_lists(
    write: Callable[..., Path], load_spec: Callable[..., Spec], lower_spec: Callable[[Spec], Graph]
) -> None:
    extra = '  passthrough_attributes: ["src[0].field", "src[0]", "src[-1].field", "src.field"]\n'
    graph = _graph(write, load_spec, lower_spec, keep=True, extra=extra)
    row = build_row(graph, _values())
    assert row == {"src[0].field": "f0", "src[0]": {"field": "f0"}}
