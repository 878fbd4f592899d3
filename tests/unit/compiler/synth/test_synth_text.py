"""Strings, the parse into a mapping with spans, and what syntax errors say."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthc.compiler.synth.emit import to_synth
from synthc.compiler.synth.source import parse_synth
from synthc.compiler.synth.text import TextError, decode_long, encode
from synthc.core.errors import ConfigError, Span


def test_closing_quotes_on_their_own_line_strip_their_indent_and_end_the_text() -> None:
    assert decode_long('"""\n    a\n      b\n\n    """') == "a\n  b\n\n"
    assert decode_long('"""\n    a\n    b"""') == "a\nb"
    assert decode_long('"""one line"""') == "one line"


def test_a_line_left_of_the_closing_quotes_and_a_tab_are_errors() -> None:
    with pytest.raises(TextError, match="indented less"):
        decode_long('"""\n  a\n    """')
    with pytest.raises(TextError, match="tab"):
        decode_long('"""\n\ta\n    """')


@given(st.text(alphabet='ab \n{}"\\é\t', max_size=40))
def test_encode_reads_back_the_same(value: str) -> None:
    text = f"generate g {{ user {encode(value, '  ')} }}\n"
    message = parse_synth(text, "t.synth").data["strategy_params"]["generated_attributes"][0]
    assert message["instruction_messages"][0]["content"] == value


def test_mapping_and_spans_match_the_yaml_shapes() -> None:
    doc = parse_synth('samples 3 -> "o.jsonl"\nmodel openai "m" { temperature 0.5 }\n', "t.synth")
    assert doc.data == {
        "num_samples": 3,
        "output_path": "o.jsonl",
        "inference_config": {
            "engine": "OPENAI",
            "model": {"model_name": "m"},
            "generation": {"temperature": 0.5},
        },
    }
    assert doc.source_map.span(("inference_config", "generation", "temperature")) == Span(
        "t.synth", 2, 20
    )
    assert doc.source_map.locate(("output_path",), "o.jsonl") == Span("t.synth", 1, 15)


def test_syntax_error_says_what_was_expected() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_synth('generate g {\n  usr "x"\n}\n', "t.synth")
    assert caught.value.render() == (
        "t.synth:2:3: unexpected name 'usr'; expected a role — system, user, assistant, tool —, "
        "'postprocess' or '}'\n      usr \"x\"\n      ^"
    )


def test_fmt_keeps_comments() -> None:
    text = '# head\n\nseed 3  # why\n\n# about q\ngenerate q {\n  user "x"\n}\n'
    doc = parse_synth(text, "t.synth")
    assert to_synth(doc.data, doc.comments, doc.source_map) == text


def test_short_texts_stay_on_one_line_and_paragraphs_become_blocks() -> None:
    assert encode("[^\n?]+\\?", "  ") == '"[^\\n?]+\\\\?"'  # a regex with a real newline
    paragraph = "You write quiz questions.\nKeep them short and answerable in a word.\n"
    assert encode(paragraph, "") == (
        '"""\n  You write quiz questions.\n  Keep them short and answerable in a word.\n  """'
    )
    long_lines = "first line of a long text that goes on\nsecond line of it, also long"
    assert encode(long_lines, "").startswith('"""\n')
