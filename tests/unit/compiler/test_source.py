"""source: YAML text in, a plain mapping and a path-to-span table out; bad YAML refused."""

from __future__ import annotations

import resource
from collections.abc import Callable
from pathlib import Path

import pytest

from synthc.compiler.source import MAX_DEPTH, SourceMap, dotted, load_yaml
from synthc.core.errors import ConfigError, Span

Write = Callable[..., Path]

CONFIG = """\
num_samples: 3
strategy_params:
  sampled_attributes:
    - id: topic
      name: Topic
      possible_values:
        - id: a
          name: "A {x}"
        - {id: b, name: B}
  plain: Ask {topic} now, then {topic} again
  quoted: 'say {topic}'
  dquoted: "tab\\tthen {topic}"
  block: |
    first line
      second {topic} line
  folded: >-
    one
    two {topic}
"""


@pytest.fixture
def doc(write: Write):
    return load_yaml(write(CONFIG))


def _at(span: Span | None) -> tuple[int, int]:
    assert span is not None
    return span.line, span.col


def test_data_is_plain(doc) -> None:
    params = doc.data["strategy_params"]
    assert doc.data["num_samples"] == 3
    assert params["sampled_attributes"][0]["possible_values"][1] == {"id": "b", "name": "B"}
    assert params["dquoted"] == "tab\tthen {topic}"
    assert params["block"] == "first line\n  second {topic} line\n"
    assert params["folded"] == "one two {topic}"


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("num_samples",), (1, 1)),
        (("strategy_params",), (2, 1)),
        (("strategy_params", "sampled_attributes"), (3, 3)),
        # a list item's span is where the item starts, after "- "
        (("strategy_params", "sampled_attributes", 0), (4, 7)),
        (("strategy_params", "sampled_attributes", 0, "id"), (4, 7)),
        (("strategy_params", "sampled_attributes", 0, "name"), (5, 7)),
        (("strategy_params", "sampled_attributes", 0, "possible_values", 0), (7, 11)),
        (("strategy_params", "sampled_attributes", 0, "possible_values", 1), (9, 11)),
        (("strategy_params", "sampled_attributes", 0, "possible_values", 1, "name"), (9, 19)),
    ],
)
def test_spans_of_keys_and_items(doc, path: tuple[str | int, ...], where: tuple[int, int]) -> None:
    assert _at(doc.source_map.span(path)) == where


def test_span_of_unknown_path_falls_back_to_nearest_ancestor(doc) -> None:
    path = ("strategy_params", "sampled_attributes", 0, "possible_values", 1, "nope", 3)
    assert _at(doc.source_map.span(path)) == (9, 11)
    # the whole document is the last resort
    assert _at(doc.source_map.span(("nowhere",))) == (1, 1)


@pytest.mark.parametrize(
    ("key", "needle", "occurrence", "where"),
    [
        ("plain", "{topic}", 0, (10, 14)),
        ("plain", "{topic}", 1, (10, 32)),
        ("quoted", "{topic}", 0, (11, 16)),
        ("dquoted", "{topic}", 0, (12, 23)),
        ("block", "{topic}", 0, (15, 14)),
        ("folded", "{topic}", 0, (18, 9)),
    ],
)
def test_locate_placeholder_inside_scalars(
    doc, key: str, needle: str, occurrence: int, where: tuple[int, int]
) -> None:
    span = doc.source_map.locate(("strategy_params", key), needle, occurrence)
    assert _at(span) == where
    line = CONFIG.splitlines()[where[0] - 1]
    assert line[where[1] - 1 :].startswith(needle)


def test_locate_in_list_item_scalar(doc) -> None:
    path = ("strategy_params", "sampled_attributes", 0, "possible_values", 0, "name")
    assert _at(doc.source_map.locate(path, "{x}")) == (8, 20)


def test_locate_missing_needle_falls_back_to_the_value_span(doc) -> None:
    path = ("strategy_params", "plain")
    assert doc.source_map.locate(path, "{absent}") == doc.source_map.span(path)
    assert doc.source_map.locate(path, "{topic}", occurrence=2) == doc.source_map.span(path)


def test_locate_does_not_run_past_the_scalar(doc) -> None:
    # "{topic}" does occur later in the file, but not in this scalar
    path = ("strategy_params", "sampled_attributes", 0, "name")
    assert doc.source_map.locate(path, "{topic}") == doc.source_map.span(path)


def test_dotted() -> None:
    assert dotted(("strategy_params", "sampled_attributes", 0, "id")) == (
        "strategy_params.sampled_attributes[0].id"
    )
    assert dotted(()) == ""


def test_source_map_is_independent_per_document(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("a: 1\n")
    (tmp_path / "two.yaml").write_text("\n\na: 1\n")
    first = load_yaml(tmp_path / "one.yaml")
    second = load_yaml(tmp_path / "two.yaml")
    assert isinstance(first.source_map, SourceMap)
    assert _at(first.source_map.span(("a",))) == (1, 1)
    assert _at(second.source_map.span(("a",))) == (3, 1)
    assert second.source_map.span(("a",)).file.endswith("two.yaml")  # type: ignore[union-attr]


# --- scalar rules: what oumi (OmegaConf) reads ------------------------------------------


def test_scalars_follow_omegaconf(write: Write) -> None:
    doc = load_yaml(
        write(
            """\
            date: 2024-01-01
            stamp: 2024-01-01 10:00:00
            small: 1e-3
            big: 2E5
            dotted: 1.5
            integer: 50
            flag: true
            nothing: null
            text: abc
            """
        )
    )
    assert doc.data == {
        "date": "2024-01-01",
        "stamp": "2024-01-01 10:00:00",
        "small": 0.001,
        "big": 200000.0,
        "dotted": 1.5,
        "integer": 50,
        "flag": True,
        "nothing": None,
        "text": "abc",
    }


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "!!float nan"])
def test_non_finite_numbers_refused(write: Write, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(write(f"temperature: {value}\n"))
    (d,) = info.value.diagnostics
    assert "is not a finite number" in d.message
    assert (d.span.line, d.span.col) == (1, 14)  # type: ignore[union-attr]


def test_binary_tag_refused(write: Write) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(write("data: !!binary aGVsbG8=\n"))
    assert "unsupported YAML value of type bytes" in str(info.value)


def test_python_tags_refused(write: Write) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(write("x: !!python/object:os.system arg\n"))
    assert "could not determine a constructor for the tag" in str(info.value)


@pytest.mark.parametrize(
    "value",
    ["!!python/object/apply:os.system ['true']", "!!set {a, b}", "!!omap [a: 1]", "!custom [1]"],
)
def test_tagged_collections_refused(write: Write, value: str) -> None:
    path = write(f"x: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    (d,) = info.value.diagnostics
    assert d.message.startswith("unsupported YAML tag ")
    assert d.span == Span(str(path), 1, 4)


def test_explicit_str_tag_is_fine(write: Write) -> None:
    assert load_yaml(write("x: !!str 123\n")).data == {"x": "123"}


# --- malformed YAML -----------------------------------------------------------------------


def test_unclosed_flow_sequence_renders_exactly(write: Write) -> None:
    path = write("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.render() == (
        f"{path}:3:2: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence)\n"
        "    c: 3\n"
        "     ^"
    )


def test_bad_indentation_renders_exactly(write: Write) -> None:
    path = write("a:\n  b: 1\n c: 2\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.render() == (
        f"{path}:3:2: invalid YAML: expected <block end>, but found '<block mapping start>' "
        "(while parsing a block mapping)\n"
        "     c: 2\n"
        "     ^"
    )


def test_tab_indentation(write: Write) -> None:
    path = write("a:\n\tb: 1\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    (d,) = info.value.diagnostics
    assert d.span == Span(str(path), 2, 1)
    assert "found character '\\t' that cannot start any token" in d.message


def test_second_document_refused(write: Write) -> None:
    path = write("a: 1\n---\nb: 2\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value) == (
        f"{path}:2:1: invalid YAML: expected a single document in the stream, "
        "but found another document"
    )


def test_duplicate_keys(write: Write) -> None:
    path = write("strategy_params:\n  a: 1\n  b: 2\n  a: 3\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.render() == f"{path}:4:3: duplicate key 'a'\n      a: 3\n      ^"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "null\n"])
def test_empty_file(write: Write, text: str) -> None:
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value) == f"{path}:1:1: the config is empty"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(write: Write, text: str) -> None:
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value) == f"{path}:1:1: expected a mapping of config keys at the top level"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value) == f"{path}: no such config file"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"a: caf\xe9\n")
    with pytest.raises(ConfigError, match="config is not UTF-8 text"):
        load_yaml(path)


def test_merge_keys_refused(write: Write) -> None:
    path = write(
        """\
        base: &base
          temperature: 0.5
        generation:
          <<: *base
          top_p: 0.9
        """
    )
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value) == (
        f"{path}:4:3: YAML merge keys ('<<') are not supported; write the keys out"
    )


def test_plain_aliases_are_expanded(write: Write) -> None:
    doc = load_yaml(write("a: &v [1, 2]\nb: *v\n"))
    assert doc.data == {"a": [1, 2], "b": [1, 2]}
    doc.data["a"].append(3)
    assert doc.data["b"] == [1, 2]  # copies, not one shared list


def test_non_text_key_refused(write: Write) -> None:
    with pytest.raises(ConfigError, match="mapping keys must be plain text"):
        load_yaml(write("? [a, b]\n: 1\n"))
    with pytest.raises(ConfigError, match="mapping keys must be plain text"):
        load_yaml(write("~: 1\n"))


# --- resource limits ---------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_billion_laughs_refused_quickly_and_cheaply(write: Write) -> None:
    path = write(BILLION_LAUGHS)
    rss_before = _max_rss_mb()
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert _max_rss_mb() - rss_before < 50  # refused before expanding: no memory spent
    (d,) = info.value.diagnostics
    assert "(YAML aliases?)" in d.message
    assert d.span is not None and d.span.line >= 1


def test_moderate_alias_amplification_refused(write: Write) -> None:
    # 9**6 = 531441 values from a few lines: under the total limit, over the alias limit
    path = write("\n".join(BILLION_LAUGHS.splitlines()[:6]) + "\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert "YAML aliases expand the config to" in str(info.value)
    assert "the limit is 100000" in str(info.value)


def test_recursive_alias_refused(write: Write) -> None:
    path = write("a: &a [1, *a]\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value) == f"{path}:1:4: a YAML alias refers to a value that contains it"


def test_deep_nesting_refused_without_recursion_error(write: Write) -> None:
    path = write("a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    (d,) = info.value.diagnostics
    assert d.message == f"config nests deeper than {MAX_DEPTH} levels"
    # the top-level mapping is the first level, so the 64th "[" is one too many
    assert (d.span.line, d.span.col) == (1, 3 + MAX_DEPTH)  # type: ignore[union-attr]


def test_nesting_at_the_limit_is_fine(write: Write) -> None:
    doc = load_yaml(write("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"))
    assert isinstance(doc.data["a"], list)


def test_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "windows.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\r\nb: 'x {p} y'\r\n")
    doc = load_yaml(path)
    assert doc.data == {"a": 1, "b": "x {p} y"}
    assert _at(doc.source_map.span(("a",))) == (1, 1)
    assert _at(doc.source_map.locate(("b",), "{p}")) == (2, 7)
