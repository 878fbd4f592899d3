"""spec: the oumi schema as pydantic models; each model's own checks and defaults."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from synthc.compiler.engines import Engine
from synthc.compiler.spec import (
    GenerationParams,
    MultiTurnAttribute,
    PostprocessingParams,
    RemoteParams,
    Role,
    SampledAttribute,
    SynthesisConfig,
    TransformationStrategy,
    TransformationType,
)


def _sampled(*rates: float | None) -> SampledAttribute:
    values = [
        {"id": f"v{i}", "name": f"V{i}", "description": "d", "sample_rate": rate}
        for i, rate in enumerate(rates)
    ]
    return SampledAttribute.model_validate(
        {"id": "a", "name": "A", "description": "d", "possible_values": values}
    )


@pytest.mark.parametrize(
    ("rates", "weights"),
    [
        ((None, None), [0.5, 0.5]),
        ((0.4, 0.4, 0.2), [0.4, 0.4, 0.2]),
        ((0.4, None, None), [0.4, 0.3, 0.3]),
        ((0.5, None), [0.5, 0.5]),
        ((1.0, None, None), [1.0, 0.0, 0.0]),
        # all set and summing below 1: oumi passes them on as relative weights
        ((0.2, 0.2), [0.2, 0.2]),
        ((0.0, None), [0.0, 1.0]),
    ],
)
def test_weights_share_the_remainder(rates: tuple[float | None, ...], weights: list[float]) -> None:
    assert _sampled(*rates).weights() == pytest.approx(weights)


def test_rates_summing_to_one_within_float_error_are_fine() -> None:
    assert sum(_sampled(0.1, 0.2, 0.7).weights()) == pytest.approx(1.0)


def _error(model: type[pydantic.BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(pydantic.ValidationError) as info:
        model.model_validate(data)
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in info.value.errors())


def test_sampled_value_rate_bounds() -> None:
    with pytest.raises(pydantic.ValidationError):
        _sampled(1.5)
    with pytest.raises(pydantic.ValidationError):
        _sampled(-0.1)


def test_sampled_rates_sum_over_one() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        _sampled(0.7, 0.4)
    assert "sample_rate values must sum to at most 1.0 (they sum to 1.1)" in str(info.value)


def test_sampled_duplicate_value_ids() -> None:
    data = {
        "id": "a",
        "name": "A",
        "description": "d",
        "possible_values": [
            {"id": "x", "name": "X", "description": "d"},
            {"id": "y", "name": "Y", "description": "d"},
            {"id": "x", "name": "X2", "description": "d"},
        ],
    }
    assert _error(SampledAttribute, data) == (
        "possible_values[2].id 'x' repeats possible_values[0].id: value ids must be unique"
    )


@pytest.mark.parametrize(
    ("kind", "field"),
    [("string", "string_transform"), ("list", "list_transform"), ("dict", "dict_transform")],
)
def test_transformation_needs_its_transform(kind: str, field: str) -> None:
    assert _error(TransformationStrategy, {"type": kind}) == (
        f"{field} is required when type is {kind.upper()}"
    )
    assert _error(TransformationStrategy, {"type": kind, field: "" if kind == "string" else []})


def test_chat_transform_needs_content() -> None:
    assert _error(TransformationStrategy, {"type": "chat"}) == (
        "chat_transform is required when type is CHAT"
    )
    empty = {"type": "chat", "chat_transform": {"messages": [{"role": "user", "content": ""}]}}
    assert _error(TransformationStrategy, empty) == (
        "chat_transform messages must have non-empty content"
    )


def test_transforms_of_other_types_are_dropped() -> None:
    """As oumi does: a leftover list_transform on a STRING strategy is never used."""
    strategy = TransformationStrategy.model_validate(
        {
            "type": "STRING",
            "string_transform": "{a}",
            "list_transform": ["{b}"],
            "chat_transform": {"messages": [{"role": "user", "content": "{c}"}]},
        }
    )
    assert strategy.type is TransformationType.STRING
    assert strategy.string_transform == "{a}"
    assert strategy.list_transform is None
    assert strategy.chat_transform is None


@pytest.mark.parametrize("spelling", ["user", "USER", "User"])
def test_role_spellings(spelling: str) -> None:
    assert Role(spelling) is Role.USER


@pytest.mark.parametrize("spelling", ["OPENAI", "openai", "GEMINI", "GOOGLE_GEMINI", "gemini"])
def test_engine_spellings(spelling: str) -> None:
    assert Engine(spelling).name in ("OPENAI", "GOOGLE_GEMINI")


def test_postprocessing_regex_must_compile() -> None:
    message = _error(PostprocessingParams, {"id": "p", "regex": "(unclosed"})
    assert message.startswith("regex does not compile: missing ), unterminated subpattern")


def test_multiturn_checks() -> None:
    base = {"id": "c", "min_turns": 1, "max_turns": 2}
    assert _error(MultiTurnAttribute, {**base, "role_instruction_messages": {"user": "u"}}) == (
        "role_instruction_messages needs ASSISTANT"
    )
    roles = {"USER": "u", "assistant": "a"}
    ok = MultiTurnAttribute.model_validate({**base, "role_instruction_messages": roles})
    assert set(ok.role_instruction_messages) == {Role.USER, Role.ASSISTANT}
    bad = {**base, "min_turns": 3, "role_instruction_messages": roles}
    assert _error(MultiTurnAttribute, bad) == "max_turns must be at least min_turns"


def test_remote_backoff_order() -> None:
    assert _error(RemoteParams, {"retry_backoff_base": 5, "retry_backoff_max": 2}) == (
        "retry_backoff_max must be at least retry_backoff_base"
    )
    assert RemoteParams(retry_backoff_base=2, retry_backoff_max=2).retry_backoff_max == 2


def test_defaults_match_oumi() -> None:
    generation = GenerationParams()
    assert (generation.max_new_tokens, generation.temperature, generation.top_p) == (1024, 0.0, 1.0)
    assert generation.seed is None and generation.stop_strings is None
    remote = RemoteParams()
    assert (remote.max_retries, remote.retry_backoff_base, remote.retry_backoff_max) == (
        3,
        1.0,
        30.0,
    )
    assert (remote.num_workers, remote.politeness_policy, remote.connection_timeout) == (
        1,
        0.0,
        300.0,
    )
    config = SynthesisConfig()
    assert (config.num_samples, config.output_path, config.seed) == (1, None, 0)


def test_models_are_frozen() -> None:
    config = SynthesisConfig()
    with pytest.raises(pydantic.ValidationError):
        config.num_samples = 5  # type: ignore[misc]


def test_every_name_oumi_0_9_adds_is_accepted() -> None:
    """The settings oumi 0.9 added beside the ones synthc already read, and its engines."""
    config = SynthesisConfig.model_validate(
        {
            "inference_config": {
                "engine": "HUGGING_FACE_ROUTER",
                "progress_path": "progress.json",
                "model": {
                    "model_name": "m",
                    "adapter_trainable": True,
                    "text_only": True,
                    "tool_call_parser": "hermes",
                },
                "generation": {
                    "prompt_cache_ttl": "1h",
                    "guided_decoding": {"json": {"type": "object"}, "strict": True},
                },
                "remote_params": {"user_id": "team-a"},
            }
        }
    )
    inference = config.inference_config
    assert inference.engine is Engine.HUGGING_FACE_ROUTER
    assert inference.generation.guided_decoding is not None
    assert inference.generation.guided_decoding.strict
    assert inference.remote_params.user_id == "team-a"
    assert {Engine(e) for e in ("CEREBRAS", "OPENROUTER")} == {
        Engine.CEREBRAS,
        Engine.OPENROUTER,
    }


def test_a_regex_python_warns_about_is_still_a_regex() -> None:
    """``[[a]`` compiles with a FutureWarning ("possible nested set"), which the tests turn
    into an error: a config's regex is compiled without it (the fuzz suite found it)."""
    params = PostprocessingParams.model_validate({"id": "p", "regex": "[[a]"})
    assert params.regex == "[[a]"
