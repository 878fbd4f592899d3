"""The oumi synth config schema as pydantic models: a plain mapping in, a typed Spec out.

Field names, defaults and local checks follow oumi's dataclasses
(``synthesis_params.py``, ``inference_config.py``, ``generation_params.py``,
``remote_params.py``). Unknown keys are errors. Checks that span several
parts of the config (unique ids, placeholders) live in :mod:`synthc.compiler.validate`.
"""

from __future__ import annotations

import datetime
import functools
import re
import warnings
from enum import Enum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jsonschema
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from synthc.compiler.engines import Engine

DEFAULT_SEED = 0
DATASET_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".tsv", ".xlsx")


@functools.lru_cache(maxsize=256)
def user_regex(pattern: str) -> re.Pattern[str]:
    """A regex from a config, compiled once; Python's FutureWarnings about it (a "possible
    nested set" in ``[[a]``) say nothing the user asked about, so they are not shown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(pattern)


def _as_text(value: object) -> object:
    """oumi reads configs through OmegaConf, which takes a number, a boolean or a date
    written for a text field as its text: ``content: 123`` is "123", ``true`` is "True"."""
    if isinstance(value, bool | int | float | datetime.date):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_as_text)]
NonEmpty = Annotated[Text, Field(min_length=1)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class LowercaseEnum(str, Enum):
    """An enum of lowercase values that also accepts them in any case (oumi writes ``USER``)."""

    @classmethod
    def _missing_(cls, value: object) -> LowercaseEnum | None:
        if isinstance(value, str):
            for member in cls:
                if member.value == value.lower():
                    return member
        return None


class Role(LowercaseEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class TextMessage(Model):
    role: Role
    content: Text


class TextConversation(Model):
    messages: list[TextMessage] = Field(min_length=1)
    conversation_id: Text | None = None
    metadata: dict[str, Text] = Field(default_factory=dict)


# --- inputs -------------------------------------------------------------------------------


class DatasetSource(Model):
    path: NonEmpty
    hf_split: Text | None = None
    hf_revision: Text | None = None
    attribute_map: dict[str, Text] | None = None
    id: Text | None = None
    num_shots: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> DatasetSource:
        if self.path.split(":")[0] in ("hf", "oumi"):
            return self
        if not self.path.lower().endswith(DATASET_SUFFIXES):
            expected = ", ".join(DATASET_SUFFIXES)
            raise ValueError(f"unsupported dataset file type: {self.path} (expected {expected})")
        _require_id_for_shots(self.num_shots, self.id, "input_data")
        return self


def _require_id_for_shots(num_shots: int | None, id_: str | None, what: str) -> None:
    if num_shots is not None and num_shots > 1 and not id_:
        raise ValueError(f"num_shots > 1 needs an id on this {what} source (it names the list)")


class DocumentSegmentationParams(Model):
    id: NonEmpty
    segmentation_strategy: Literal["tokens", "TOKENS"] = "tokens"
    tokenizer: NonEmpty = "openai-community/gpt2"
    segment_length: Annotated[int, Field(gt=0)] = 2048
    segment_overlap: Annotated[int, Field(ge=0)] = 0
    keep_original_text: bool = False

    @model_validator(mode="after")
    def _check(self) -> DocumentSegmentationParams:
        if self.segment_overlap >= self.segment_length:
            raise ValueError("segment_overlap must be less than segment_length")
        return self


class DocumentSource(Model):
    path: NonEmpty
    id: NonEmpty
    segmentation_params: DocumentSegmentationParams | None = None
    num_shots: Annotated[int, Field(ge=1)] | None = None


class ExampleSource(Model):
    examples: list[dict[str, Any]] = Field(min_length=1)
    id: Text | None = None
    num_shots: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> ExampleSource:
        first = set(self.examples[0])
        for i, example in enumerate(self.examples[1:], start=1):
            if set(example) != first:
                raise ValueError(
                    f"examples[{i}] has keys {sorted(example)} but examples[0] has "
                    f"{sorted(first)}: all examples must have the same keys"
                )
        _require_id_for_shots(self.num_shots, self.id, "input_examples")
        return self


# --- attributes ---------------------------------------------------------------------------


class SampledAttributeValue(Model):
    id: NonEmpty
    name: NonEmpty
    description: NonEmpty
    sample_rate: Rate | None = None


class SampledAttribute(Model):
    id: NonEmpty
    name: NonEmpty
    description: NonEmpty
    possible_values: list[SampledAttributeValue] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SampledAttribute:
        first: dict[str, int] = {}
        for i, value in enumerate(self.possible_values):
            if value.id in first:
                raise ValueError(
                    f"possible_values[{i}].id {value.id!r} repeats possible_values"
                    f"[{first[value.id]}].id: value ids must be unique"
                )
            first[value.id] = i
        total = sum(v.sample_rate for v in self.possible_values if v.sample_rate is not None)
        if total > 1.0 + 1e-9:
            raise ValueError(f"sample_rate values must sum to at most 1.0 (they sum to {total:g})")
        return self

    def weights(self) -> list[float]:
        """oumi's rates: unset ones share what the set ones leave; all act as weights."""
        rates = [v.sample_rate for v in self.possible_values]
        unset = rates.count(None)
        share = max(0.0, 1.0 - sum(r for r in rates if r is not None)) / unset if unset else 0.0
        return [share if r is None else r for r in rates]


class AttributeCombination(Model):
    combination: dict[NonEmpty, NonEmpty] = Field(min_length=2)
    sample_rate: Rate


class PostprocessingParams(Model):
    id: NonEmpty
    keep_original_text_attribute: bool = True
    cut_prefix: Text | None = None
    cut_suffix: Text | None = None
    regex: Text | None = None
    strip_whitespace: bool = True
    added_prefix: Text | None = None
    added_suffix: Text | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                user_regex(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return value


class GeneratedAttribute(Model):
    id: NonEmpty
    instruction_messages: list[TextMessage] = Field(min_length=1)
    postprocessing_params: PostprocessingParams | None = None

    @model_validator(mode="after")
    def _check(self) -> GeneratedAttribute:
        if self.postprocessing_params and self.postprocessing_params.id == self.id:
            raise ValueError("postprocessing_params.id must differ from the attribute's id")
        return self


class MultiTurnAttribute(Model):
    id: NonEmpty
    min_turns: Annotated[int, Field(ge=1)]
    max_turns: Annotated[int, Field(ge=1)]
    role_instruction_messages: dict[Role, NonEmpty]
    output_system_prompt: NonEmpty | None = None
    conversation_planner: Text | None = None
    available_environments: list[Text] = Field(default_factory=list)
    available_tools: list[Text] = Field(default_factory=list)
    max_tool_calls_per_turn: Annotated[int, Field(ge=1)] = 50
    max_consecutive_tool_turns: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> MultiTurnAttribute:
        if self.max_turns < self.min_turns:
            raise ValueError("max_turns must be at least min_turns")
        missing = {Role.USER, Role.ASSISTANT} - set(self.role_instruction_messages)
        if missing:
            names = ", ".join(sorted(r.name for r in missing))
            raise ValueError(f"role_instruction_messages needs {names}")
        return self


class TransformationType(LowercaseEnum):
    STRING = "string"
    LIST = "list"
    DICT = "dict"
    CHAT = "chat"


class TransformationStrategy(Model):
    type: TransformationType
    string_transform: Text | None = None
    list_transform: list[Text] | None = None
    dict_transform: dict[str, Text] | None = None
    chat_transform: TextConversation | None = None

    @model_validator(mode="after")
    def _check(self) -> TransformationStrategy:
        field = f"{self.type.value}_transform"
        if not getattr(self, field):
            raise ValueError(f"{field} is required when type is {self.type.name}")
        if self.chat_transform is not None:
            for message in self.chat_transform.messages:
                if not message.content:
                    raise ValueError("chat_transform messages must have non-empty content")
        # oumi resets the transforms that do not belong to ``type``: they are never used,
        # so they must not add placeholders, dependencies or key parts.
        for other in TransformationType:
            if other is not self.type:
                object.__setattr__(self, f"{other.value}_transform", None)
        return self


class TransformedAttribute(Model):
    id: NonEmpty
    transformation_strategy: TransformationStrategy


class GeneralSynthesisParams(Model):
    input_data: list[DatasetSource] | None = None
    input_documents: list[DocumentSource] | None = None
    input_examples: list[ExampleSource] | None = None
    sampled_attributes: list[SampledAttribute] | None = None
    combination_sampling: list[AttributeCombination] | None = None
    generated_attributes: list[GeneratedAttribute] | None = None
    multiturn_attributes: list[MultiTurnAttribute] | None = None
    transformed_attributes: list[TransformedAttribute] | None = None
    passthrough_attributes: list[NonEmpty] | None = None

    @model_validator(mode="after")
    def _check(self) -> GeneralSynthesisParams:
        total = sum(c.sample_rate for c in self.combination_sampling or ())
        if total > 1.0 + 1e-9:
            raise ValueError(f"combination_sampling rates must sum to at most 1.0 (got {total:g})")
        return self


# --- environments (validated now; executed in a later synthc) ----------------------------


class ToolParams(Model):
    id: NonEmpty
    name: Text = ""
    description: Text = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    executor: Text | None = None
    read_only: bool = True


class EnvironmentParams(Model):
    id: NonEmpty
    name: Text = ""
    description: Text = ""
    env_type: NonEmpty
    tools: list[ToolParams] = Field(default_factory=list)
    env_kwargs: dict[str, Any] | None = None
    grounding: dict[str, Any] | None = None


class EnvironmentConfig(Model):
    environments: list[EnvironmentParams] = Field(default_factory=list)


# --- inference ----------------------------------------------------------------------------


class GuidedDecodingParams(Model):
    json_: Any = Field(default=None, alias="json")
    regex: Text | None = None
    choice: list[Text] | None = None
    strict: bool = False  # OpenAI's strict structured output

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class GenerationParams(Model):
    max_new_tokens: Annotated[int, Field(ge=1)] = 1024
    batch_size: Annotated[int, Field(ge=1)] | None = 1
    exclude_prompt_from_response: bool = True
    seed: int | None = None
    temperature: Annotated[float, Field(ge=0.0)] = 0.0
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    stop_strings: list[Text] | None = None
    stop_token_ids: list[int] | None = None
    logit_bias: dict[str, float] = Field(default_factory=dict)
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    use_cache: bool = False
    num_beams: Annotated[int, Field(ge=1)] = 1
    use_sampling: bool = False
    guided_decoding: GuidedDecodingParams | None = None
    skip_special_tokens: bool = True
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Text | dict[str, Any] | None = None
    parallel_tool_calls: bool = True
    reasoning_effort: Text | None = None
    prompt_cache_ttl: Text | None = None  # Anthropic's prompt cache ("5m", "1h"); no key part


class ModelParams(Model):
    model_name: NonEmpty
    adapter_model: Text | None = None
    tokenizer_name: Text | None = None
    tokenizer_pad_token: Text | None = None
    tokenizer_kwargs: dict[str, Any] = Field(default_factory=dict)
    processor_kwargs: dict[str, Any] = Field(default_factory=dict)
    model_max_length: int | None = None
    load_pretrained_weights: bool = True
    trust_remote_code: bool = False
    torch_dtype_str: Text = "auto"
    compile: bool = False
    chat_template: Text | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    attn_implementation: Text | None = None
    device_map: Text | None = "auto"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    enable_liger_kernel: bool = False
    shard_for_eval: bool = False
    freeze_layers: list[Text] = Field(default_factory=list)
    model_revision: Text | None = None
    adapter_trainable: bool = False
    text_only: bool = False
    tool_call_parser: Text | None = None


class RemoteParams(Model):
    api_url: Text | None = None
    api_key: Text | None = Field(default=None, repr=False)
    api_key_env_varname: Text | None = None
    max_retries: Annotated[int, Field(ge=0)] = 3
    retry_backoff_base: Annotated[float, Field(gt=0.0)] = 1.0
    retry_backoff_max: Annotated[float, Field(gt=0.0)] = 30.0
    connection_timeout: Annotated[float, Field(ge=0.0)] = 300.0
    num_workers: Annotated[int, Field(ge=1)] = 1
    politeness_policy: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    batch_completion_window: Text | None = "24h"
    use_adaptive_concurrency: bool = False
    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    input_tokens_per_minute: Annotated[int, Field(ge=1)] | None = None
    output_tokens_per_minute: Annotated[int, Field(ge=1)] | None = None
    user_id: Text | None = None  # Anthropic's metadata.user_id

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None:
            check_http_url(url)
        return url

    @model_validator(mode="after")
    def _check(self) -> RemoteParams:
        if self.retry_backoff_max < self.retry_backoff_base:
            raise ValueError("retry_backoff_max must be at least retry_backoff_base")
        return self


def check_http_url(url: str) -> None:
    """Raise ValueError unless ``url`` is an http(s) URL with a host and a valid port."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")


class InferenceConfig(Model):
    model: ModelParams | None = None
    generation: GenerationParams = Field(default_factory=GenerationParams)
    input_path: None = None
    output_path: None = None
    engine: Engine | None = None
    remote_params: RemoteParams = Field(default_factory=RemoteParams)
    progress_path: Text | None = None  # oumi's progress file; synthc reports on the terminal


def check_remote_url(url: str) -> None:
    """Raise ValueError unless ``url`` names a cache remote: an http(s) URL with a host,
    an ``s3://``, ``gs://`` or ``az://`` bucket, a ``file://`` URL or a path."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL: {exc}") from None
    if scheme in ("http", "https"):
        check_http_url(url)
    elif scheme in ("s3", "gs", "az"):
        if not urlsplit(url).netloc:
            raise ValueError(
                f"remote cache {url!r}: name the bucket, e.g. {scheme}://bucket/prefix"
            )
    elif "://" in url and scheme != "file":
        raise ValueError(
            f"unsupported remote cache {url!r}: use http://, https://, s3://, gs://, az://, "
            "file:// or a path"
        )


class Validator(Model):
    """Checks one attribute's value (as the row holds it) must pass: a failing one
    rejects the sample, whose slot is drawn again (docs/quality.md)."""

    attribute: NonEmpty
    regex: Text | None = None  # must match somewhere in the text
    not_regex: Text | None = None  # must not match anywhere
    min_chars: Annotated[int, Field(ge=0)] | None = None
    max_chars: Annotated[int, Field(ge=0)] | None = None
    min_tokens: Annotated[int, Field(ge=0)] | None = None  # as the engine counted the reply
    max_tokens: Annotated[int, Field(ge=0)] | None = None
    parses: bool = Field(default=False, alias="json")  # ``json: true``: must parse as JSON
    json_schema: dict[str, Any] | None = None  # must parse as JSON and validate against it
    predicate: NonEmpty | None = None  # module.function or file.py:function: (value, row) -> bool
    retries: Annotated[int, Field(ge=0, le=10)] = 0  # draws of the attribute alone first

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            try:
                jsonschema.validators.validator_for(schema).check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"not a JSON Schema: {exc.message}") from None
        return schema

    @field_validator("regex", "not_regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _some_check(self) -> Validator:
        checks: tuple[Any, ...] = (self.regex, self.not_regex, self.min_chars, self.max_chars)
        checks += (self.min_tokens, self.max_tokens, self.json_schema, self.predicate)
        if all(c is None for c in checks) and not self.parses:
            raise ValueError(
                "give a check: regex, not_regex, min_chars, max_chars, min_tokens, max_tokens, "
                "json, json_schema or predicate"
            )
        return self


class NearDedup(Model):
    """A dedup entry written as a mapping: ``{attribute: answer}`` is exact dedup;
    with ``near`` (a Jaccard similarity from 0 to 1) a row is a duplicate when its text
    is that similar to a kept row's (MinHash LSH over character ``shingle``-grams)."""

    attribute: NonEmpty
    near: Annotated[float, Field(gt=0, le=1)] | None = None
    shingle: Annotated[int, Field(ge=1, le=64)] = 5


class Judge(Model):
    """An LLM-as-judge attribute: ``rubric`` (a template over the sample's attributes)
    asks the model for a verdict, ``{"score": <integer>, "reason": "..."}`` with the
    score from ``min_score`` to ``max_score``; the row holds it as JSON text under
    ``id``, for filters such as ``verdict.score >= 4``. ``model`` names a model of
    its own on the config's (hosted) engine; ``max_new_tokens`` caps its reply."""

    id: NonEmpty
    rubric: NonEmpty
    min_score: int = 1
    max_score: int = 5
    model: NonEmpty | None = None
    max_new_tokens: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _scale(self) -> Judge:
        if self.max_score <= self.min_score:
            raise ValueError(f"max_score must be above min_score ({self.min_score})")
        return self


def _dedup_entry(value: Any) -> Any:
    """A dedup entry written as a name is ``{attribute: name}``: exact dedup."""
    return {"attribute": value} if isinstance(value, str) else value


class QualitySettings(Model):
    """Quality gates (``synthc.quality``): validators and filters a sample's row must
    pass; a rejected sample's slot is drawn again, up to ``max_attempts`` times."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    judges: list[Judge] = Field(default_factory=list)
    validators: list[Validator] = Field(default_factory=list)
    filters: list[NonEmpty] = Field(default_factory=list)  # "score >= 4", "answer != ''"
    # attributes no two kept rows share (exactly; ``{attribute, near}``: nearly)
    dedup: list[Annotated[NearDedup, BeforeValidator(_dedup_entry)]] = Field(default_factory=list)


class SynthcSettings(Model):
    """synthc's own settings (``synthc:`` in a config); none of them is part of a node key."""

    remote_cache: Text | list[Text] | None = None
    remote_cache_readonly: bool = False
    batch: bool = False  # send through the provider's batch API (docs/batch.md)
    quality: QualitySettings | None = None  # quality gates (docs/quality.md)

    @field_validator("remote_cache")
    @classmethod
    def _remote_urls(cls, urls: str | list[str] | None) -> str | list[str] | None:
        for url in [urls] if isinstance(urls, str) else urls or []:
            check_remote_url(url)
        return urls


MAX_SAMPLES = 100_000_000  # a bigger num_samples is a typo, not a dataset


def _not_bool(value: Any) -> Any:
    """``num_samples: true`` is a mistake, not one sample (pydantic reads a bool as 0 or 1)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number of samples, not {str(value).lower()}")
    return value


class SynthesisConfig(Model):
    """The whole config, as oumi reads it, plus synthc's ``seed`` and ``synthc`` settings."""

    output_path: Text | None = None
    strategy: Literal["GENERAL", "general"] = "GENERAL"
    strategy_params: GeneralSynthesisParams = Field(default_factory=GeneralSynthesisParams)
    environment_config: EnvironmentConfig | None = None
    environment_config_path: Text | None = None
    inference_config: InferenceConfig = Field(default_factory=InferenceConfig)
    num_samples: Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=MAX_SAMPLES)] = 1
    seed: int = DEFAULT_SEED
    synthc: SynthcSettings | None = None

    @field_validator("output_path")
    @classmethod
    def _jsonl(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith(".jsonl"):
            raise ValueError(f"must end with .jsonl, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> SynthesisConfig:
        if self.environment_config and self.environment_config_path:
            raise ValueError("set environment_config or environment_config_path, not both")
        return self
