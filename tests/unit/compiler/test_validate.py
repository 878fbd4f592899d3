"""validate: a mapping in, a Spec out, or one ConfigError listing every problem with its span."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from synthc.compiler.validate import Spec
from synthc.core.errors import ConfigError

Write = Callable[..., Path]
LoadSpec = Callable[..., Spec]
ErrorOf = Callable[..., ConfigError]
Short = Callable[[ConfigError], list[str]]

EXAMPLES = sorted(Path("/work/shared/oumi-examples").glob("*.yaml"))


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_oumi_example_validates(load_spec: LoadSpec, path: Path) -> None:
    spec = load_spec(path)
    assert spec.config.num_samples >= 1
    assert spec.path == path
    assert spec.text == path.read_text(encoding="utf-8")


def test_spec_span_and_error(write: Write, load_spec: LoadSpec) -> None:
    path = write("num_samples: 3\nstrategy_params:\n  passthrough_attributes: [a]\n")
    spec = load_spec(path)
    span = spec.span("strategy_params", "passthrough_attributes", 0)
    assert (span.line, span.col) == (3, 28)  # type: ignore[union-attr]
    error = spec.error("bad thing", "num_samples")
    assert error.render() == f"{path}:1:1: bad thing\n    num_samples: 3\n    ^"


def test_unknown_key_with_did_you_mean(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write("strategy: GENERAL\nnum_sample: 3\n")
    error = config_error(path)
    assert short(error) == [
        "config.yaml:2:1: unknown key 'num_sample' (did you mean 'num_samples'?)"
    ]
    assert error.render() == (
        f"{path}:2:1: unknown key 'num_sample' (did you mean 'num_samples'?)\n"
        "    num_sample: 3\n"
        "    ^"
    )


def test_unknown_nested_key(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        inference_config:
          generation:
            temprature: 0.5
          remote_params:
            zzz: 1
        """
    )
    messages = short(config_error(path))
    assert messages[0] == "config.yaml:3:5: unknown key 'temprature' (did you mean 'temperature'?)"
    assert messages[1].startswith(
        "config.yaml:5:5: unknown key 'zzz'; expected one of: api_url, api_key, "
    )


def test_missing_key(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        strategy_params:
          sampled_attributes:
            - id: topic
              name: Topic
              possible_values:
                - {id: a, name: A, description: x}
        """
    )
    assert short(config_error(path)) == [
        "config.yaml:3:7: missing required key 'description' in "
        "strategy_params.sampled_attributes[0]"
    ]


def test_enum_with_did_you_mean(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        strategy_params:
          generated_attributes:
            - id: q
              instruction_messages:
                - {role: usr, content: hi}
                - {role: tol, content: hi}
                - {role: zzzzzz, content: hi}
        inference_config:
          engine: OPENAII
        """
    )
    prefix = "strategy_params.generated_attributes[0].instruction_messages"
    roles = "system, user, assistant or tool"
    messages = short(config_error(path))
    assert messages[:3] == [
        f"config.yaml:5:12: {prefix}[0].role: 'usr' is not one of {roles} (did you mean 'user'?)",
        f"config.yaml:6:12: {prefix}[1].role: 'tol' is not one of {roles} (did you mean 'tool'?)",
        f"config.yaml:7:12: {prefix}[2].role: 'zzzzzz' is not one of {roles}",
    ]
    assert messages[3].startswith("config.yaml:9:3: inference_config.engine: 'OPENAII' is not one")
    assert messages[3].endswith("BEDROCK, CEREBRAS or HUGGING_FACE_ROUTER (did you mean 'OPENAI'?)")


SAMPLED = """\
strategy_params:
  sampled_attributes:
    - id: level
      name: Level
      description: How hard
      possible_values:
        - {id: easy, name: Easy, description: e, sample_rate: RATE1}
        - {id: hard, name: Hard, description: h, sample_rate: RATE2}
"""


def test_rate_above_one(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(SAMPLED.replace("RATE1", "1.5").replace("RATE2", "0"))
    assert short(config_error(path)) == [
        "config.yaml:7:50: strategy_params.sampled_attributes[0].possible_values[0].sample_rate: "
        "Input should be less than or equal to 1"
    ]


def test_rates_summing_above_one(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(SAMPLED.replace("RATE1", "0.6").replace("RATE2", "0.5"))
    assert short(config_error(path)) == [
        "config.yaml:3:7: strategy_params.sampled_attributes[0]: "
        "sample_rate values must sum to at most 1.0 (they sum to 1.1)"
    ]


def test_duplicate_value_ids(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(SAMPLED.replace("RATE1", "0.5").replace("RATE2", "0.5").replace("hard,", "easy,"))
    assert short(config_error(path)) == [
        "config.yaml:8:12: strategy_params.sampled_attributes[0]: possible_values[1].id 'easy' "
        "repeats possible_values[0].id: value ids must be unique"
    ]


def test_combination_rates_summing_above_one(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write(
        SAMPLED.replace("RATE1", "0.5").replace("RATE2", "0.5")
        + """\
  combination_sampling:
    - {combination: {level: easy, other: x}, sample_rate: 0.7}
    - {combination: {level: hard, other: y}, sample_rate: 0.4}
"""
    )
    assert short(config_error(path)) == [
        "config.yaml:9:3: strategy_params: combination_sampling rates must sum to at most 1.0 "
        "(got 1.1)"
    ]


DUPLICATES = """\
strategy_params:
  input_examples:
    - examples:
        - {topic: x, summary: y}
  sampled_attributes:
    - id: topic
      name: T
      description: d
      possible_values: [{id: a, name: A, description: x}]
  generated_attributes:
    - id: answer
      instruction_messages: [{role: user, content: hi}]
      postprocessing_params:
        id: summary
  transformed_attributes:
    - id: answer
      transformation_strategy: {type: string, string_transform: x}
"""


def test_duplicate_ids_across_kinds(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(DUPLICATES)
    error = config_error(path)
    assert short(error) == [
        f"config.yaml:6:7: duplicate attribute id 'topic' (first defined at {path}:4:12)",
        f"config.yaml:14:9: duplicate attribute id 'summary' (first defined at {path}:4:22)",
        f"config.yaml:16:7: duplicate attribute id 'answer' (first defined at {path}:11:7)",
    ]
    assert error.render().endswith("3 errors")


def test_duplicate_sampled_and_generated(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        strategy_params:
          sampled_attributes:
            - id: style
              name: S
              description: d
              possible_values: [{id: a, name: A, description: x}]
          generated_attributes:
            - id: style
              instruction_messages: [{role: user, content: hi}]
        """
    )
    assert short(config_error(path)) == [
        f"config.yaml:8:7: duplicate attribute id 'style' (first defined at {path}:3:7)"
    ]


MULTITURN = """\
strategy_params:
  generated_attributes:
    - id: ID1
      instruction_messages: [{role: user, content: hi}]
  multiturn_attributes:
    - id: conv
      min_turns: 1
      max_turns: 2
      role_instruction_messages: {user: u, assistant: a}
"""


@pytest.mark.parametrize("reserved", ["target_turns", "current_turn", "conv_plan"])
def test_reserved_ids(write: Write, config_error: ErrorOf, short: Short, reserved: str) -> None:
    path = write(MULTITURN.replace("ID1", reserved))
    assert short(config_error(path)) == [
        f"config.yaml:3:7: {reserved!r} is reserved for multiturn synthesis; pick another id"
    ]


def test_plan_suffix_is_free_without_that_multiturn_attribute(
    write: Write, load_spec: LoadSpec
) -> None:
    spec = load_spec(write(MULTITURN.replace("ID1", "other_plan")))
    assert spec.config.strategy_params.generated_attributes is not None


@pytest.mark.parametrize("output", ["out.json", "out.jsonl.txt", ""])
def test_output_path_must_be_jsonl(
    write: Write, config_error: ErrorOf, short: Short, output: str
) -> None:
    path = write(f"output_path: '{output}'\n")
    assert short(config_error(path)) == [
        f"config.yaml:1:1: output_path: must end with .jsonl, got {output!r}"
    ]


def test_postprocessing_id_equal_to_attribute_id(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write(
        """\
        strategy_params:
          generated_attributes:
            - id: answer
              instruction_messages: [{role: user, content: hi}]
              postprocessing_params:
                id: answer
        """
    )
    assert short(config_error(path)) == [
        "config.yaml:6:9: strategy_params.generated_attributes[0]: "
        "postprocessing_params.id must differ from the attribute's id"
    ]


def test_transformation_missing_its_transform(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write(
        """\
        strategy_params:
          transformed_attributes:
            - id: t
              transformation_strategy:
                type: LIST
                string_transform: "{x}"
        """
    )
    assert short(config_error(path)) == [
        "config.yaml:4:7: strategy_params.transformed_attributes[0].transformation_strategy: "
        "list_transform is required when type is LIST"
    ]


def test_examples_with_different_keys(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        strategy_params:
          input_examples:
            - examples:
                - {q: one, a: two}
                - {q: three}
        """
    )
    assert short(config_error(path)) == [
        "config.yaml:5:11: strategy_params.input_examples[0]: examples[1] has keys ['q'] "
        "but examples[0] has ['a', 'q']: all examples must have the same keys"
    ]


def test_num_shots_without_id(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        strategy_params:
          input_examples:
            - examples: [{q: one}, {q: two}]
              num_shots: 2
        """
    )
    assert short(config_error(path)) == [
        "config.yaml:4:7: strategy_params.input_examples[0]: "
        "num_shots > 1 needs an id on this input_examples source (it names the list)"
    ]


def test_retry_backoff_max_below_base(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write(
        """\
        inference_config:
          remote_params:
            retry_backoff_base: 4
            retry_backoff_max: 2
        """
    )
    assert short(config_error(path)) == [
        "config.yaml:4:5: inference_config.remote_params: "
        "retry_backoff_max must be at least retry_backoff_base"
    ]


ALL_AT_ONCE = """\
num_sample: 3
output_path: out.csv
strategy_params:
  input_examples:
    - examples: [{topic: a}]
  sampled_attributes:
    - id: topic
      name: T
      possible_values: [{id: a, name: A, description: x, sample_rate: 2}]
  generated_attributes:
    - id: q
      instruction_messages: [{role: usr, content: hi}]
inference_config:
  remote_params:
    num_workers: 0
"""


def test_all_errors_reported_at_once(write: Write, config_error: ErrorOf, short: Short) -> None:
    error = config_error(write(ALL_AT_ONCE))
    messages = short(error)
    assert len(messages) == 7
    assert [m.split(": ", 1)[0] for m in messages] == [
        "config.yaml:1:1",
        "config.yaml:2:1",
        "config.yaml:7:7",  # duplicate 'topic'
        "config.yaml:7:7",  # missing description
        "config.yaml:9:58",
        "config.yaml:12:31",
        "config.yaml:15:5",
    ]
    assert "duplicate attribute id 'topic'" in messages[2]
    assert "missing required key 'description'" in messages[3]
    assert error.render().endswith("\n7 errors")


def test_override_errors_come_first_and_name_the_override(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write("num_samples: 3\nnum_sample: 2\n")
    assert short(config_error(path, ["--num_samples", "0"])) == [
        "override --num_samples 0: num_samples: Input should be greater than or equal to 1",
        "config.yaml:2:1: unknown key 'num_sample' (did you mean 'num_samples'?)",
    ]


def test_wrong_type(write: Write, config_error: ErrorOf, short: Short) -> None:
    path = write("num_samples: lots\n")
    assert short(config_error(path)) == [
        "config.yaml:1:1: num_samples: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_numbers_booleans_and_dates_written_for_text_are_that_text(
    write: Write, load_spec: LoadSpec
) -> None:
    """oumi reads configs through OmegaConf, which turns a scalar given for a text field
    into its text: a CHAT message ``content: 123`` is "123"."""
    path = write(
        """\
        strategy_params:
          sampled_attributes:
            - id: year
              name: 2024
              description: 2024-01-31
              possible_values: [{id: 1, name: true, description: 1.5}]
          transformed_attributes:
            - id: chat
              transformation_strategy:
                type: CHAT
                chat_transform: {messages: [{role: USER, content: 123}]}
        """
    )
    params = load_spec(path).config.strategy_params
    sampled = params.sampled_attributes[0]  # type: ignore[index]
    assert (sampled.name, sampled.description) == ("2024", "2024-01-31")
    value = sampled.possible_values[0]
    assert (value.id, value.name, value.description) == ("1", "True", "1.5")
    chat = params.transformed_attributes[0].transformation_strategy.chat_transform  # type: ignore[index]
    assert chat is not None and chat.messages[0].content == "123"


def test_a_list_written_for_text_is_still_refused(
    write: Write, config_error: ErrorOf, short: Short
) -> None:
    path = write(
        """\
        strategy_params:
          transformed_attributes:
            - id: chat
              transformation_strategy:
                type: CHAT
                chat_transform: {messages: [{role: USER, content: [1, 2]}]}
        """
    )
    assert short(config_error(path)) == [
        "config.yaml:6:50: strategy_params.transformed_attributes[0].transformation_strategy"
        ".chat_transform.messages[0].content: Input should be a valid string"
    ]
