"""Lower a validated Spec into a Graph: rules in dependency order, a sampler and the model.

Pure: no I/O, no clock, no global random state. Every template is parsed here
and every placeholder checked against the attributes that exist, so undefined
references, cycles and unsupported features stop the build before any request.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from typing import Any

from synthc.compiler.engines import ENGINES, Engine
from synthc.compiler.gates import compile_gates
from synthc.compiler.graph import (
    SPECIAL_IDS,
    Graph,
    Inference,
    LLMRule,
    MessageTemplate,
    MultiturnRule,
    PostprocessRule,
    Rule,
    TransformRule,
)
from synthc.compiler.resolve import ResolvedModel
from synthc.compiler.sampling import Choice, Combination, Sampler, Source, example_sources
from synthc.compiler.source import PathKey
from synthc.compiler.spec import (
    GenerationParams,
    MultiTurnAttribute,
    QualitySettings,
    SynthesisConfig,
    TransformationType,
    TransformedAttribute,
)
from synthc.compiler.template import (
    SampledValue,
    Template,
    TemplateError,
    accessor_error,
    parse_template,
)
from synthc.compiler.tool_config import build_environments, toolset
from synthc.compiler.tools import Toolset
from synthc.compiler.validate import Spec
from synthc.core.errors import ConfigError, Diagnostic
from synthc.core.keys import digest

log = logging.getLogger("synthc")

# Generation parameters that change what a model says; only these enter node keys.
OUTPUT_PARAMS = (
    "max_new_tokens",
    "temperature",
    "top_p",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "stop_strings",
    "stop_token_ids",
    "logit_bias",
    "num_beams",
    "use_sampling",
    "guided_decoding",
    "seed",
    "skip_special_tokens",
    "tools",
    "tool_choice",
    "reasoning_effort",
)
SP: PathKey = ("strategy_params",)
# model_kwargs an in-process engine reads that change its output; they join node keys.
ENGINE_OUTPUT_KNOBS = ("top_k", "chat_format", "repeat_penalty")


@dataclass(frozen=True)
class _Known:
    """An id a template may name, what kind of value it holds and an example of it."""

    kind: str  # "sampled" | "text" | "value" | "structured"
    sample: Any = None


def lower(spec: Spec, model: ResolvedModel, sources: tuple[Source, ...] | None = None) -> Graph:
    """Turn ``spec`` into the build graph, or raise a ConfigError naming every problem.

    ``model`` is what :func:`synthc.compiler.resolve.resolve` found for the spec, and
    ``sources`` what :func:`synthc.runtime.inputs.load_inputs` read for it (inline
    examples are used as written when no sources are given).
    """
    config = spec.config
    sampler = _sampler(spec, sources if sources is not None else _inline_examples(spec))
    known = _known_ids(config, sampler)
    rules, problems = _rules(spec, known)
    quality = config.synthc.quality if config.synthc else None
    rules += _judges(spec, quality, known, problems, model.engine)
    problems += _check_samples(spec, sampler) + _check_combinations(spec, sampler, rules)
    base, columns, hidden = _columns(config, sampler)
    columns += tuple(judge.id for judge in quality.judges) if quality else ()
    gates, wrong = compile_gates(
        quality,
        set(base) | set(columns),
        spec.span,
        generated={r.id for r in rules if isinstance(r, LLMRule)},
        config_dir=spec.path.parent,
        temperature=config.inference_config.generation.temperature,
    )
    problems += wrong
    if problems:
        raise ConfigError(problems, spec.text, spec.name)
    ordered = _topological(spec, rules)
    _warn_unknown_passthrough(spec, {*known, *base, *columns, *(r.id for r in rules)})
    if spec.config.inference_config.progress_path is not None:
        where = spec.span("inference_config", "progress_path")
        log.warning("%s: progress_path is not written by synthc", where or spec.name)
    return Graph(
        rules=ordered,
        sampler=sampler,
        inference=_inference(spec, model),
        num_samples=config.num_samples,
        seed=config.seed,
        base_columns=base,
        columns=columns,
        hidden=hidden,
        passthrough=tuple(config.strategy_params.passthrough_attributes or ()) or None,
        edges={r.id: r.deps for r in ordered},
        gates=gates,
    )


def _warn_unknown_passthrough(spec: Spec, produced: set[str]) -> None:
    """oumi silently leaves out a passthrough name nothing produces; synthc says so."""
    for i, name in enumerate(spec.config.strategy_params.passthrough_attributes or ()):
        root = name.split("[", 1)[0].split(".", 1)[0]
        if root not in produced:
            where = spec.span(*SP, "passthrough_attributes", i)
            log.warning(
                "%s: passthrough_attributes names %r, which nothing in the config produces; "
                "rows leave it out",
                where or spec.name,
                name,
            )


def _inline_examples(spec: Spec) -> tuple[Source, ...]:
    params = spec.config.strategy_params
    if params.input_data or params.input_documents:
        raise ValueError("lower() needs the sources load_inputs() read for this spec")
    return tuple(example_sources(params.input_examples or ()))


def _sampler(spec: Spec, sources: tuple[Source, ...]) -> Sampler:
    params = spec.config.strategy_params
    choices = []
    for i, attr in enumerate(params.sampled_attributes or ()):
        values = tuple(
            SampledValue(attr.id, attr.name, attr.description, v.id, v.name, v.description)
            for v in attr.possible_values
        )
        weights = attr.weights()
        if sum(weights) <= 0:
            raise spec.error(
                "every sample_rate is 0: nothing can be drawn", *SP, "sampled_attributes", i
            )
        choices.append(Choice.build(values, weights))
    combos = tuple(
        Combination(dict(c.combination), c.sample_rate) for c in params.combination_sampling or ()
    )
    return Sampler(spec.config.seed, sources, tuple(choices), combos)


def _known_ids(config: SynthesisConfig, sampler: Sampler) -> dict[str, _Known]:
    known: dict[str, _Known] = {}
    for source in sampler.sources:
        if source.sampled:
            known[source.id] = _Known("value", list(source.rows))
            continue
        for key, value in source.rows[0].items():
            known[key] = _Known("text" if isinstance(value, str) else "value", value)
    for choice in sampler.choices:
        known[choice.id] = _Known("sampled", choice.values[0])
    for attr in config.strategy_params.generated_attributes or ():
        known[attr.id] = _Known("text")
        if attr.postprocessing_params:
            known[attr.postprocessing_params.id] = _Known("text")
    for m in config.strategy_params.multiturn_attributes or ():
        known[m.id] = _Known("structured")
        known[f"{m.id}_plan"] = _Known("text")
    for t in config.strategy_params.transformed_attributes or ():
        kind = (
            "text" if t.transformation_strategy.type is TransformationType.STRING else "structured"
        )
        known[t.id] = _Known(kind)
    return known


def _rules(spec: Spec, known: dict[str, _Known]) -> tuple[list[Rule], list[Diagnostic]]:
    rules: list[Rule] = []
    problems: list[Diagnostic] = []
    params = spec.config.strategy_params
    for i, attr in enumerate(params.generated_attributes or ()):
        messages = []
        for j, message in enumerate(attr.instruction_messages):
            path = (*SP, "generated_attributes", i, "instruction_messages", j, "content")
            template = _template(spec, message.content, path, known, problems)
            messages.append(MessageTemplate(message.role.value, template, message.content))
        deps = tuple(dict.fromkeys(r for m in messages for r in m.template.roots))
        definition = [[m.role.value, m.content] for m in attr.instruction_messages]
        span = spec.span(*SP, "generated_attributes", i, "id")
        rules.append(LLMRule(attr.id, tuple(messages), deps, digest(definition), span))
        post = attr.postprocessing_params
        if post is not None:
            pspan = spec.span(*SP, "generated_attributes", i, "postprocessing_params")
            pdigest = digest(post.model_dump(mode="json"))
            rules.append(PostprocessRule(post.id, attr.id, post, pdigest, pspan))
    environments = build_environments(spec, problems)
    for i, m in enumerate(params.multiturn_attributes or ()):
        tools = toolset(spec, i, m, environments, problems)
        if tools is not None:
            _check_tool_engine(spec, i, problems)
        rules.append(_multiturn_rule(spec, i, m, known, problems, tools=tools))
    for i, t in enumerate(params.transformed_attributes or ()):
        rules.append(_transform_rule(spec, i, t, known, problems))
    return rules, problems


def _multiturn_rule(
    spec: Spec,
    i: int,
    attr: MultiTurnAttribute,
    known: dict[str, _Known],
    problems: list[Diagnostic],
    *,
    tools: Toolset | None = None,
) -> MultiturnRule:
    base: PathKey = (*SP, "multiturn_attributes", i)
    scope = {**known, **{name: _Known("text") for name in SPECIAL_IDS}}
    personas = []  # every role the config gives, in its order: the planner sees them all
    for role, text in attr.role_instruction_messages.items():
        path = (*base, "role_instruction_messages", role.name)
        personas.append(
            MessageTemplate(role.value, _template(spec, text, path, scope, problems), text)
        )
    output = attr.output_system_prompt
    planner = attr.conversation_planner
    system = (
        _template(spec, output, (*base, "output_system_prompt"), scope, problems)
        if output
        else None
    )
    plan = (
        _template(spec, planner, (*base, "conversation_planner"), scope, problems)
        if planner
        else None
    )
    used = [p.template for p in personas] + [t for t in (system, plan) if t is not None]
    deps = tuple(dict.fromkeys(r for t in used for r in t.roots if r not in SPECIAL_IDS))
    span = spec.span(*base, "id")
    digest_of = digest([attr.model_dump(mode="json"), tools.digest if tools else None])
    return MultiturnRule(
        attr.id,
        attr.min_turns,
        attr.max_turns,
        tuple(personas),
        system,
        plan,
        deps,
        digest_of,
        span,
        tools,
    )


def _check_tool_engine(spec: Spec, i: int, problems: list[Diagnostic]) -> None:
    """Tool use needs an engine whose API takes tool definitions and returns tool calls."""
    engine = spec.config.inference_config.engine
    name = engine.value if engine is not None else "the default engine"
    if engine is None or not ENGINES[engine].tools:
        where = (
            ("inference_config", "engine")
            if engine is not None
            else (*SP, "multiturn_attributes", i, "id")
        )
        problems.append(
            Diagnostic(
                f"tool use needs an engine with native tool calling; {name} has none. Use "
                "OPENAI, ANTHROPIC, VLLM or an OpenAI-compatible server (REMOTE, REMOTE_VLLM, "
                "SGLANG, ...)",
                spec.span(*where),
            )
        )


def _transform_rule(
    spec: Spec,
    i: int,
    attr: TransformedAttribute,
    known: dict[str, _Known],
    problems: list[Diagnostic],
) -> TransformRule:
    strategy = attr.transformation_strategy
    base: PathKey = (*SP, "transformed_attributes", i, "transformation_strategy")
    entries: list[tuple[str, str, PathKey]] = []
    if strategy.type is TransformationType.STRING and strategy.string_transform is not None:
        entries.append(("", strategy.string_transform, (*base, "string_transform")))
    for j, text in enumerate(strategy.list_transform or ()):
        entries.append((str(j), text, (*base, "list_transform", j)))
    for key, text in (strategy.dict_transform or {}).items():
        entries.append((key, text, (*base, "dict_transform", key)))
    chat = strategy.chat_transform
    for j, message in enumerate(chat.messages if chat else ()):
        entries.append(
            (
                message.role.value,
                message.content,
                (*base, "chat_transform", "messages", j, "content"),
            )
        )
    metadata = tuple(
        (k, _template(spec, v, (*base, "chat_transform", "metadata", k), known, problems))
        for k, v in (chat.metadata if chat else {}).items()
    )
    templates = tuple(
        (k, _template(spec, text, path, known, problems)) for k, text, path in entries
    )
    deps = tuple(dict.fromkeys(r for _, t in (*templates, *metadata) for r in t.roots))
    definition = strategy.model_dump(mode="json")
    span = spec.span(*SP, "transformed_attributes", i, "id")
    cid = chat.conversation_id if chat else None
    return TransformRule(
        attr.id, strategy.type, templates, deps, digest(definition), cid, metadata, span
    )


JUDGE_SYSTEM = (
    "You are a strict, fair grader. Score what the rubric asks about with an integer from "
    '{low} to {high}. Reply with JSON only: {{"score": <integer>, "reason": "<one '
    'sentence>"}}.'
)


def _judges(
    spec: Spec,
    quality: QualitySettings | None,
    known: dict[str, _Known],
    problems: list[Diagnostic],
    engine: Engine,
) -> list[Rule]:
    """``synthc.quality.judges`` as generated attributes whose replies are verdicts."""
    rules: list[Rule] = []
    for i, judge in enumerate(quality.judges if quality else ()):
        where = ("synthc", "quality", "judges", i)
        if judge.id in known:
            message = f"judges: {judge.id!r} is already an attribute: give the judge its own id"
            problems.append(Diagnostic(message, spec.span(*where, "id")))
            continue
        template = _template(spec, judge.rubric, (*where, "rubric"), known, problems)
        system = JUDGE_SYSTEM.format(low=judge.min_score, high=judge.max_score)
        messages = (
            MessageTemplate("system", parse_template(_literal(system)), system),
            MessageTemplate("user", template, judge.rubric),
        )
        if judge.model is not None and ENGINES[engine].local:
            message = (
                f"judges: {judge.id!r} names a model of its own, but {engine} runs the "
                "config's one model in-process: use a hosted engine, or leave model out"
            )
            problems.append(Diagnostic(message, spec.span(*where, "model")))
        scale = (judge.min_score, judge.max_score)
        deps = tuple(dict.fromkeys(template.roots))
        definition = ["judge", judge.rubric, system, list(scale)]
        span = spec.span(*where, "id")
        budget = (("max_new_tokens", judge.max_new_tokens),) if judge.max_new_tokens else ()
        rules.append(
            LLMRule(judge.id, messages, deps, digest(definition), span, scale, judge.model, budget)
        )
        known[judge.id] = _Known("text")
    return rules


def _literal(text: str) -> str:
    """``text`` as a template that renders to itself (its braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def _template(
    spec: Spec, text: str, path: PathKey, known: dict[str, _Known], problems: list[Diagnostic]
) -> Template:
    try:
        template = parse_template(text)
    except TemplateError as exc:
        needle = exc.placeholder or text[exc.offset : exc.offset + 1]
        span = spec.source_map.locate(path, needle, text.count(needle, 0, exc.offset))
        problems.append(Diagnostic(str(exc), span))
        return Template(())
    for placeholder in template.placeholders:
        message = _reference_problem(placeholder.root, placeholder.accessors, known)
        if message:
            # which textual match it is: a literal "{{x}}" before it also contains "{x}"
            occurrence = text.count(placeholder.text, 0, placeholder.offset)
            span = spec.source_map.locate(path, placeholder.text, occurrence)
            problems.append(Diagnostic(f"{placeholder.text}: {message}", span))
    return template


def _reference_problem(
    root: str, accessors: tuple[str | int, ...], known: dict[str, _Known]
) -> str | None:
    entry = known.get(root)
    if entry is None:
        close = difflib.get_close_matches(root, list(known), n=1)
        hint = f" (did you mean {{{close[0]}}}?)" if close else ""
        listing = ", ".join(sorted(known)) or "none"
        return f"undefined attribute {root!r}{hint}; defined ids: {listing}"
    if entry.kind == "structured":
        return f"{root!r} is a list, dict or chat value and cannot be placed in text"
    if entry.kind == "text" and accessors:
        return f"{root!r} is text; it has no fields to read"
    if entry.kind in ("sampled", "value"):
        return accessor_error(entry.sample, accessors)
    return None


def _check_samples(spec: Spec, sampler: Sampler) -> list[Diagnostic]:
    """oumi 0.9 refuses a config whose samples start empty ("Empty sample created after
    planning"): nothing drawn or read for the templates and rows to start from."""
    if sampler.sources or sampler.choices:
        return []
    message = (
        "every sample would start empty: define input_examples, input_data, "
        "input_documents or sampled_attributes (oumi refuses this too)"
    )
    return [Diagnostic(message, spec.span(*SP))]


def _check_combinations(spec: Spec, sampler: Sampler, rules: list[Rule]) -> list[Diagnostic]:
    problems = []
    choices = {c.id: c for c in sampler.choices}
    readers = {d: r.id for r in reversed(rules) for d in r.deps if d in choices}
    for i, combo in enumerate(sampler.combinations):
        unset = [a for a in choices if a in readers and a not in combo.values]
        for attr in unset if combo.rate > 0 else ():
            message = (
                f"a sample drawn from this combination has no {attr!r}, which "
                f"{readers[attr]!r} reads: oumi 0.9 draws nothing beyond a combination's "
                f"values; name {attr!r} in it"
            )
            problems.append(Diagnostic(message, spec.span(*SP, "combination_sampling", i)))
        for attr, value in combo.values.items():
            path = (*SP, "combination_sampling", i, "combination", attr)
            if attr not in choices:
                problems.append(
                    Diagnostic(f"{attr!r} is not a sampled attribute", spec.span(*path))
                )
            elif value not in {v.id for v in choices[attr].values}:
                valid = ", ".join(v.id for v in choices[attr].values)
                message = f"{value!r} is not a value of {attr!r}; values: {valid}"
                problems.append(Diagnostic(message, spec.span(*path)))
    return problems


def _topological(spec: Spec, rules: list[Rule]) -> tuple[Rule, ...]:
    """Order rules so each comes after the rules it reads; a cycle is an error."""
    by_id: dict[str, Rule] = {r.id: r for r in rules}
    by_id.update({r.plan_id: r for r in rules if isinstance(r, MultiturnRule)})
    order: list[Rule] = []
    state: dict[str, str] = {}

    def visit(rule: Rule, trail: list[str]) -> None:
        if state.get(rule.id) == "done":
            return
        if state.get(rule.id) == "active":
            cycle = [*trail[trail.index(rule.id) :], rule.id]
            raise ConfigError.at(f"cycle: {' --> '.join(cycle)}", rule.span).with_source(
                spec.text, spec.name
            )
        state[rule.id] = "active"
        for dep in rule.deps:
            if dep in by_id:
                visit(by_id[dep], [*trail, rule.id])
        state[rule.id] = "done"
        order.append(rule)

    for rule in rules:
        visit(rule, [])
    return tuple(order)


def _columns(
    config: SynthesisConfig, sampler: Sampler
) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    base = [k for s in sampler.sources for k in ([s.id] if s.sampled else s.rows[0])]
    base += [c.id for c in sampler.choices]
    columns: list[str] = []
    hidden: set[str] = set()
    for attr in config.strategy_params.generated_attributes or ():
        columns.append(attr.id)
        post = attr.postprocessing_params
        if post is not None:
            columns.append(post.id)
            if not post.keep_original_text_attribute:
                hidden.add(attr.id)
    for m in config.strategy_params.multiturn_attributes or ():
        columns += [m.id, f"{m.id}_plan"]
    columns += [t.id for t in config.strategy_params.transformed_attributes or ()]
    return tuple(dict.fromkeys(base)), tuple(columns), frozenset(hidden)


def _inference(spec: Spec, model: ResolvedModel) -> Inference:
    generation = spec.config.inference_config.generation
    defaults = GenerationParams()
    sent = {name: _plain(getattr(generation, name)) for name in OUTPUT_PARAMS}
    keyed = {k: v for k, v in sent.items() if v != _plain(getattr(defaults, k))}
    model_params = spec.config.inference_config.model
    for name in ENGINE_OUTPUT_KNOBS:  # engine knobs that change what a model says
        if model_params is not None and name in model_params.model_kwargs:
            sent[name] = keyed[name] = model_params.model_kwargs[name]
    return Inference(
        engine=model.engine,
        model=model.name,
        identity=model.identity,
        path=model.path,
        key_params=keyed,
        request_params={k: v for k, v in sent.items() if v is not None},
        temperature=generation.temperature,
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value
