"""lower: a Spec in, a Graph out; placeholders checked with spans, rules ordered, features gated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import synthc
from synthc.compiler.graph import Graph, LLMRule, PostprocessRule, TransformRule
from synthc.compiler.validate import Spec
from synthc.core.errors import ConfigError

Write = Callable[..., Path]
LoadSpec = Callable[..., Spec]
LowerSpec = Callable[[Spec], Graph]
ErrorOf = Callable[..., ConfigError]
Short = Callable[[ConfigError], list[str]]

SAMPLED = """\
strategy_params:
  sampled_attributes:
    - id: topic
      name: Topic
      description: What to ask about
      possible_values:
        - {id: rivers, name: Rivers, description: Rivers}
  generated_attributes:
"""


def _graph(write: Write, load_spec: LoadSpec, lower_spec: LowerSpec, text: str) -> Graph:
    return lower_spec(load_spec(write(text, model=True)))


def test_undefined_placeholder_points_at_it(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write(
        SAMPLED
        + """\
    - id: question
      instruction_messages:
        - {role: system, content: "Plain {topic} is fine"}
        - role: user
          content: "Ask about {topik} and {topic.nme}"
        - role: user
          content: |
            Line one
              then {topic} and {topik} here
""",
        model=True,
    )
    error = config_error(path, lowered=True)
    assert short(error) == [
        "config.yaml:13:31: {topik}: undefined attribute 'topik' (did you mean {topic}?); "
        "defined ids: question, topic",
        "config.yaml:13:43: {topic.nme}: a sampled attribute has no .nme; use .name, "
        ".description, .id, .parent, .parent.name, .parent.description, .parent.id",
        "config.yaml:17:32: {topik}: undefined attribute 'topik' (did you mean {topic}?); "
        "defined ids: question, topic",
    ]
    rendered = error.render().splitlines()
    assert rendered[1:3] == [
        '              content: "Ask about {topik} and {topic.nme}"',
        "                                  ^",
    ]


def test_template_syntax_error_points_at_it(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write(
        SAMPLED
        + """\
    - id: question
      instruction_messages:
        - {role: user, content: 'JSON like {"a": 1} breaks'}
""",
        model=True,
    )
    assert short(config_error(path, lowered=True)) == [
        'config.yaml:11:44: cannot read placeholder {"a": 1}: expected {attribute}, '
        "{attribute.field} or {source[0].field} (write {{ and }} for literal braces)"
    ]


def test_cycle(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        strategy_params:
          generated_attributes:
            - id: a
              instruction_messages: [{role: user, content: "{b}"}]
            - id: b
              instruction_messages: [{role: user, content: "{a}"}]
          input_examples: [{examples: [{x: 1}]}]
        """,
        model=True,
    )
    assert short(config_error(path, lowered=True)) == ["config.yaml:3:7: cycle: a --> b --> a"]


def test_longer_cycle_through_a_transform(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write(
        """\
        strategy_params:
          generated_attributes:
            - id: a
              instruction_messages: [{role: user, content: "{t}"}]
            - id: b
              instruction_messages: [{role: user, content: "{a}"}]
          transformed_attributes:
            - id: t
              transformation_strategy: {type: string, string_transform: "{b}"}
          input_examples: [{examples: [{x: 1}]}]
        """,
        model=True,
    )
    assert short(config_error(path, lowered=True)) == [
        "config.yaml:3:7: cycle: a --> t --> b --> a"
    ]


def test_self_reference_is_a_cycle(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        strategy_params:
          generated_attributes:
            - id: a
              instruction_messages: [{role: user, content: "again: {a}"}]
          input_examples: [{examples: [{x: 1}]}]
        """,
        model=True,
    )
    assert short(config_error(path, lowered=True)) == ["config.yaml:3:7: cycle: a --> a"]


def test_rules_are_ordered_by_dependency(
    write: Write, load_spec: LoadSpec, lower_spec: LowerSpec
) -> None:
    graph = _graph(
        write,
        load_spec,
        lower_spec,
        SAMPLED
        + """\
    - id: answer
      instruction_messages: [{role: user, content: "Answer {clean_q}"}]
    - id: question
      instruction_messages: [{role: user, content: "Ask about {topic}"}]
      postprocessing_params: {id: clean_q, cut_prefix: "Q:"}
  transformed_attributes:
    - id: chat
      transformation_strategy:
        type: chat
        chat_transform:
          messages:
            - {role: user, content: "{clean_q}"}
            - {role: assistant, content: "{answer}"}
""",
    )
    assert [r.id for r in graph.rules] == ["question", "clean_q", "answer", "chat"]
    kinds = [type(r) for r in graph.rules]
    assert kinds == [LLMRule, PostprocessRule, LLMRule, TransformRule]
    assert graph.edges == {
        "question": ("topic",),
        "clean_q": ("question",),
        "answer": ("clean_q",),
        "chat": ("clean_q", "answer"),
    }
    assert graph.base_columns == ("topic",)
    assert graph.columns == ("answer", "question", "clean_q", "chat")


def test_unused_transform_fields_add_no_dependencies(
    write: Write, load_spec: LoadSpec, lower_spec: LowerSpec
) -> None:
    graph = _graph(
        write,
        load_spec,
        lower_spec,
        SAMPLED
        + """\
    - id: q
      instruction_messages: [{role: user, content: "{topic}"}]
  transformed_attributes:
    - id: t
      transformation_strategy:
        type: string
        string_transform: "{q}"
        list_transform: ["{undefined_one}"]
""",
    )
    (rule,) = [r for r in graph.rules if r.id == "t"]
    assert rule.deps == ("q",)
    assert [k for k, _ in rule.templates] == [""]  # type: ignore[union-attr]


def test_structured_values_cannot_be_placed_in_text(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write(
        """\
        strategy_params:
          input_examples:
            - examples: [{q: one}]
          transformed_attributes:
            - id: l
              transformation_strategy: {type: list, list_transform: ["{q}"]}
            - id: s
              transformation_strategy: {type: string, string_transform: "{l}"}
        """,
        model=True,
    )
    assert short(config_error(path, lowered=True)) == [
        "config.yaml:8:66: {l}: 'l' is a list, dict or chat value and cannot be placed in text"
    ]


def test_combination_must_name_sampled_values(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write(
        """\
        strategy_params:
          sampled_attributes:
            - id: a
              name: A
              description: d
              possible_values: [{id: x, name: X, description: d}, {id: y, name: Y, description: d}]
          combination_sampling:
            - combination: {a: z, b: x}
              sample_rate: 0.5
        """,
        model=True,
    )
    assert short(config_error(path, lowered=True)) == [
        "config.yaml:8:21: 'z' is not a value of 'a'; values: x, y",
        "config.yaml:8:27: 'b' is not a sampled attribute",
    ]


def test_all_zero_rates(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        strategy_params:
          sampled_attributes:
            - id: a
              name: A
              description: d
              possible_values: [{id: x, name: X, description: d, sample_rate: 0}]
        """,
        model=True,
    )
    assert short(config_error(path, lowered=True)) == [
        "config.yaml:3:7: every sample_rate is 0: nothing can be drawn"
    ]


GENERATION = """\
strategy_params:
  input_examples:
    - examples: [{q: a}]
  generated_attributes:
    - id: answer
      instruction_messages: [{role: user, content: "{q}"}]
inference_config:
  engine: OPENAI
  model: {model_name: gpt-4o-mini}
  generation:
GEN
  remote_params:
    api_key: secret
    num_workers: 8
    politeness_policy: 1.5
    api_url: http://127.0.0.1:1/v1/chat/completions
"""


def test_key_params_only_non_default_output_affecting(
    write: Write, load_spec: LoadSpec, lower_spec: LowerSpec
) -> None:
    gen = (
        "    temperature: 0.7\n    max_new_tokens: 1024\n    top_p: 0.9\n"
        "    batch_size: 16\n    stream: true\n    use_cache: true\n"
        "    stop_strings: [END]\n    seed: 3\n"
    )
    graph = lower_spec(load_spec(write(GENERATION.replace("GEN\n", gen))))
    assert graph.inference.key_params == {
        "temperature": 0.7,
        "top_p": 0.9,
        "stop_strings": ["END"],
        "seed": 3,
    }
    assert graph.inference.temperature == 0.7
    # what is sent still has the defaults, but nothing that does not change the output
    assert graph.inference.request_params["max_new_tokens"] == 1024
    for absent in ("batch_size", "stream", "use_cache", "api_key", "num_workers"):
        assert absent not in graph.inference.request_params


def test_default_generation_gives_no_key_params(
    write: Write, load_spec: LoadSpec, lower_spec: LowerSpec
) -> None:
    graph = lower_spec(load_spec(write(GENERATION.replace("  generation:\nGEN\n", ""))))
    assert graph.inference.key_params == {}
    assert (graph.inference.engine, graph.inference.model) == ("OPENAI", "gpt-4o-mini")


def test_lowering_is_pure(write: Write, load_spec: LoadSpec, lower_spec: LowerSpec) -> None:
    spec = load_spec(write(GENERATION.replace("GEN\n", "    temperature: 0.5\n")))
    first, second = lower_spec(spec), lower_spec(spec)
    assert first.rules == second.rules
    assert first.inference == second.inference
    assert [first.sampler.draw(i) for i in range(5)] == [second.sampler.draw(i) for i in range(5)]


def test_undefined_placeholder_after_a_literal_of_the_same_text_points_at_the_placeholder(
    tmp_path: Path,
) -> None:
    text = (
        "strategy_params:\n"
        "  generated_attributes:\n"
        "    - id: q\n"
        "      instruction_messages:\n"
        '        - {role: USER, content: "Write {{x}} then {x}."}\n'
        "inference_config:\n"
        "  model: {model_name: m}\n"
        "  engine: OPENAI\n"
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        synthc.compile(path)
    assert str(caught.value).startswith(f"{path}:5:51: {{x}}: undefined attribute 'x'")


@pytest.mark.parametrize(
    "params",
    [
        "strategy_params: {}\n",
        "strategy_params:\n  generated_attributes:\n"
        "    - id: q\n      instruction_messages: [{role: USER, content: Ask.}]\n",
    ],
    ids=["empty", "generated-only"],
)
def test_samples_that_would_start_empty_are_refused(
    params: str, write: Write, config_error: ErrorOf, short: Short
) -> None:
    """oumi 0.9 refuses these too: "Empty sample created after planning"."""
    path = write(params, model=True)
    assert short(config_error(path, lowered=True)) == [
        "config.yaml:1:1: every sample would start empty: define input_examples, input_data, "
        "input_documents or sampled_attributes (oumi refuses this too)"
    ]


def test_a_combination_must_name_every_sampled_attribute_a_template_reads(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    """A sample drawn from a combination holds only its values (oumi 0.9)."""
    values = "[{id: x, name: X, description: d}, {id: y, name: Y, description: d}]"
    attributes = "".join(
        f"    - {{id: {a}, name: {a}, description: d, possible_values: {values}}}\n" for a in "abc"
    )
    path = write(
        "strategy_params:\n  sampled_attributes:\n"
        + attributes
        + """\
  combination_sampling:
    - {combination: {a: x, b: x}, sample_rate: 0.5}
    - {combination: {a: y, c: y}, sample_rate: 0.0}
  generated_attributes:
    - id: q
      instruction_messages: [{role: USER, content: "Ask about {a}, {b} and {c}."}]
""",
        model=True,
    )
    assert short(config_error(path, lowered=True)) == [
        "config.yaml:7:7: a sample drawn from this combination has no 'c', which 'q' reads: "
        "oumi 0.9 draws nothing beyond a combination's values; name 'c' in it"
    ]
