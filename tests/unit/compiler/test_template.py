"""template: oumi ``{placeholder}`` text in, pieces out; pieces plus values in, text out."""

from __future__ import annotations

import random
from typing import Any

import pytest

from synthc.compiler.template import (
    Placeholder,
    SampledValue,
    Template,
    TemplateError,
    accessor_error,
    parse_template,
    render,
)

LEVEL = SampledValue("level", "Difficulty", "How hard it is", "easy", "Easy", "For beginners")


def _one(text: str) -> Placeholder:
    (placeholder,) = parse_template(text).placeholders
    return placeholder


# --- parsing ------------------------------------------------------------------------------


def test_literal_only() -> None:
    assert parse_template("no placeholders").pieces == ("no placeholders",)
    assert parse_template("").pieces == ()


def test_escaped_braces_are_literal() -> None:
    template = parse_template('JSON: {{"a": {x}}} and }}{{')
    assert template.pieces[0] == 'JSON: {"a": '
    assert template.pieces[2] == "} and }{"
    assert template.roots == ("x",)
    assert render(template, {"x": "1"}) == 'JSON: {"a": 1} and }{'


def test_pieces_and_offsets() -> None:
    template = parse_template("Ask {topic} at {level.description}.")
    assert template.pieces == (
        "Ask ",
        Placeholder("topic", (), None, "", "{topic}", 4),
        " at ",
        Placeholder("level", ("description",), None, "", "{level.description}", 15),
        ".",
    )


def test_roots_are_unique_in_order() -> None:
    assert parse_template("{b} {a.x} {b} {a}").roots == ("b", "a")


@pytest.mark.parametrize(
    ("text", "root", "accessors"),
    [
        ("{a.b}", "a", ("b",)),
        ("{a[0].b}", "a", (0, "b")),
        ("{a[-1]}", "a", (-1,)),
        ("{a['k']}", "a", ("k",)),
        ('{a["k"].b[2]}', "a", ("k", "b", 2)),
        ("{level.parent.description}", "level", ("parent", "description")),
        ("{ padded }", "padded", ()),
    ],
)
def test_accessors(text: str, root: str, accessors: tuple[str | int, ...]) -> None:
    placeholder = _one(text)
    assert (placeholder.root, placeholder.accessors) == (root, accessors)


@pytest.mark.parametrize(
    ("text", "conversion", "spec"),
    [("{a!r}", "r", ""), ("{a:>10}", None, ">10"), ("{a!s:^5}", "s", "^5"), ("{a:}", None, "")],
)
def test_conversion_and_spec(text: str, conversion: str | None, spec: str) -> None:
    placeholder = _one(text)
    assert (placeholder.conversion, placeholder.spec) == (conversion, spec)


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("a } b", "single '}' in text: write '}}' for a literal brace", 2),
        ("ok {x} then }", "single '}' in text: write '}}' for a literal brace", 12),
        ("a { b", "unclosed '{': write '{{' for a literal brace", 2),
        ("{x {y}", "unclosed '{': write '{{' for a literal brace", 0),
        (
            "say {}",
            "cannot read placeholder {}: expected {attribute}, {attribute.field} "
            "or {source[0].field} (write {{ and }} for literal braces)",
            4,
        ),
        (
            '{"key": 1}',
            'cannot read placeholder {"key": 1}: expected {attribute}, {attribute.field} '
            "or {source[0].field} (write {{ and }} for literal braces)",
            0,
        ),
        ("{0}", "placeholder {0} must name an attribute, not a position", 0),
        (
            "x {a!z}",
            "cannot read placeholder {a!z}: expected {attribute}, {attribute.field} "
            "or {source[0].field} (write {{ and }} for literal braces)",
            2,
        ),
        (
            "{a..b}",
            "cannot read placeholder {a..b}: expected {attribute}, {attribute.field} "
            "or {source[0].field} (write {{ and }} for literal braces)",
            0,
        ),
    ],
)
def test_parse_errors(text: str, message: str, offset: int) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(text)
    assert str(info.value) == message
    assert info.value.offset == offset


def test_parse_error_carries_placeholder_text() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("a {0} b")
    assert info.value.placeholder == "{0}"


# --- rendering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{level}", "Easy"),
        ("{level.name}", "Easy"),
        ("{level.description}", "For beginners"),
        ("{level.id}", "easy"),
        ("{level.parent}", "Difficulty"),
        ("{level.parent.name}", "Difficulty"),
        ("{level.parent.description}", "How hard it is"),
        ("{level.attribute_id}", "level"),
        ("[{level:>6}]", "[  Easy]"),
        ("{level!r}", "'Easy'"),
    ],
)
def test_render_sampled_value(text: str, expected: str) -> None:
    assert render(parse_template(text), {"level": LEVEL}) == expected


def test_sampled_value_str_is_its_name() -> None:
    assert str(LEVEL) == "Easy"


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("{q}", {"q": "text"}, "text"),
        ("{n}", {"n": 5}, "5"),
        ("{n:03d}", {"n": 5}, "005"),
        ("{n:.2f}", {"n": 5}, "5.00"),
        ("{f!r}", {"f": 0.5}, "0.5"),
        ("{s!a}", {"s": "é"}, "'\\xe9'"),
        ("{b}", {"b": True}, "True"),
        ("{z}", {"z": None}, "None"),
        ("{row.q}", {"row": {"q": "hi"}}, "hi"),
        ("{rows[1].q}", {"rows": [{"q": "a"}, {"q": "b"}]}, "b"),
        ("{rows[-1].q}", {"rows": [{"q": "a"}, {"q": "b"}]}, "b"),
        ("{rows['0']}", {"rows": {"0": "zero"}}, "zero"),
        ("{items}", {"items": [1, 2]}, "[1, 2]"),
        ("{d}", {"d": {"k": "v"}}, "{'k': 'v'}"),
        ("{d:>12}", {"d": {"k": "v"}}, "  {'k': 'v'}"),
    ],
)
def test_render_plain_values(text: str, values: dict[str, Any], expected: str) -> None:
    assert render(parse_template(text), values) == expected


def test_render_matches_str_format_for_simple_templates() -> None:
    text = "Q: {q!r:>12} | {n:+.1f} | {{literal}} | {s:^7}"
    values = {"q": "why", "n": 2, "s": "mid"}
    assert render(parse_template(text), values) == text.format_map(values)


def test_missing_value() -> None:
    with pytest.raises(TemplateError) as info:
        render(parse_template("hello {who}"), {})
    assert str(info.value) == "no value for placeholder {who}"
    assert (info.value.offset, info.value.placeholder) == (6, "{who}")


def test_index_out_of_range() -> None:
    with pytest.raises(TemplateError) as info:
        render(parse_template("x {rows[2].q}"), {"rows": [{"q": "a"}, {"q": "b"}]})
    assert str(info.value) == "{rows[2].q}: index [2] is out of range (there are 2 items)"
    assert info.value.offset == 2


def test_missing_field() -> None:
    with pytest.raises(TemplateError) as info:
        render(parse_template("{row.nope}"), {"row": {"q": 1, "a": 2}})
    assert str(info.value) == "{row.nope}: no field 'nope'; fields are q, a"


def test_bad_format_spec() -> None:
    with pytest.raises(TemplateError) as info:
        render(parse_template("{q:d}"), {"q": "text"})
    assert str(info.value).startswith("bad format spec in {q:d}: Unknown format code 'd'")


def test_unknown_sampled_accessor() -> None:
    with pytest.raises(TemplateError) as info:
        render(parse_template("{level.nme}"), {"level": LEVEL})
    assert str(info.value) == (
        "{level.nme}: a sampled attribute has no .nme; use .name, .description, .id, .parent, "
        ".parent.name, .parent.description, .parent.id"
    )


# --- no way into Python internals --------------------------------------------------------

DANGEROUS = [
    "{x.__class__}",
    "{x.__init__.__globals__}",
    "{x.__class__.__mro__[1].__subclasses__}",
    "{x[__class__]}",
    "{x.__dict__}",
    "{x.parent.__class__}",
    "{x.format}",
    "{x.upper}",
    "{x.keys}",
]
VALUES: dict[str, Any] = {
    "text": "hello",
    "sampled": LEVEL,
    "dict": {"k": "v"},
    "list": [{"k": "v"}],
    "number": 3,
}


@pytest.mark.parametrize("text", DANGEROUS)
@pytest.mark.parametrize("kind", list(VALUES))
def test_dunder_and_method_access_is_an_error(text: str, kind: str) -> None:
    template = parse_template(text)
    with pytest.raises(TemplateError) as info:
        render(template, {"x": VALUES[kind]})
    message = str(info.value)
    for leak in ("<class", "<built-in", "<function", "<method", "mappingproxy", "object at 0x"):
        assert leak not in message
    assert accessor_error(VALUES[kind], template.placeholders[0].accessors) is not None


def test_dict_key_that_looks_like_a_dunder_is_just_data() -> None:
    assert render(parse_template("{x.__class__}"), {"x": {"__class__": "data"}}) == "data"


def test_accessor_error() -> None:
    assert accessor_error(LEVEL, ("parent", "name")) is None
    assert accessor_error("text", ()) is None
    assert accessor_error("text", ("x",)) == ".x cannot be read from text"
    assert accessor_error([1], (0, "x")) == "[0].x cannot be read from int"
    assert accessor_error([{"a": 1}], (3,)) == "index [3] is out of range (there are 1 items)"


def test_template_of_nothing_renders_empty() -> None:
    assert render(Template(()), {}) == ""


def _random_template(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randrange(9)):
        if rng.random() < 0.5:
            literal = "".join(rng.choice("ab {}}{é\n:!.[]0") for _ in range(rng.randrange(6)))
            parts.append(literal.replace("{", "{{").replace("}", "}}"))
        else:
            name = rng.choice(["a", "b", "topic", "x_1"])
            conversion = rng.choice(["", "!r", "!s", "!a"])
            spec = rng.choice(["", ":>6", ":^3", ":.2", ":*<4"])
            parts.append("{" + name + conversion + spec + "}")
    return "".join(parts)


def test_render_agrees_with_str_format() -> None:
    """For text values, synthc renders exactly what oumi's ``str.format_map`` would."""
    rng = random.Random(20240601)
    values = {"a": "alpha", "b": "", "topic": "rivers {and} lakes", "x_1": "é"}
    for _ in range(500):
        text = _random_template(rng)
        assert render(parse_template(text), values) == text.format_map(values), text
