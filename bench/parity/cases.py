"""The parity cases: oumi synth configs (as dicts, or oumi's shipped YAML files) and how
to compare what oumi 0.9 and synthc write for them.

``exact`` cases have no randomness left (one value per sampled attribute or
combinations at rate 1.0, ``min_turns == max_turns``, no ``num_shots``, seeded
grounding), so rows must be equal in order. ``draws`` cases sample: rows are
compared by draw signature (see ``compare.py``).

The runner adds ``inference_config.remote_params`` (the loopback server's URL, an
API key, ``politeness_policy: 0``) and ``output_path`` to every config.

Not included: synthc's own ``examples/*.yaml``. Every one of them sets a
top-level ``seed:`` (a synthc extension oumi rejects as an unknown key);
besides, ``quickstart``, ``product_faq`` and ``support_chat`` name synthc's
embedded ``smollm2`` model (no oumi engine), and ``library_agent`` declares tools
without the ``name`` oumi requires. ``geography_qa`` is oumi's
``question_answer_synth.yaml`` with a seed, which is covered below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUMI_EXAMPLES = HERE.parents[1] / "tests" / "oumi_examples"
OPENAI, ANTHROPIC = "openai", "anthropic"
PATHS = {OPENAI: "/v1/chat/completions", ANTHROPIC: "/v1/messages"}
EXACT, DRAWS = "exact", "draws"
DRAW_SAMPLES = 16
FAULTY, GREEDY = "[[parity:faulty-tools]]", "[[parity:greedy-tools]]"
# oumi 0.9 sends Anthropic structured outputs (output_config) only to Claude >= 4.5; the
# Anthropic cases name the model oumi's shipped configs use, and CLAUDE_45 cases check
# planner and simulated-tool requests with a schema.
CLAUDE_35, CLAUDE_45 = "claude-3-5-sonnet-20240620", "claude-sonnet-4-5"

Config = dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    api: str  # OPENAI or ANTHROPIC: which server path the config is pointed at
    mode: str  # EXACT or DRAWS
    config: Config | None = None  # an oumi config as a dict ...
    source: Path | None = None  # ... or an oumi YAML file, used as it is
    num_samples: int | None = None  # overrides the source's num_samples
    files: dict[str, str] = field(default_factory=dict)  # written beside the config
    copies: dict[str, Path] = field(default_factory=dict)  # copied beside the config
    note: str = ""
    deliberate: str = ""  # the documented reason synthc builds what oumi 0.9 refuses


# --- building blocks ---------------------------------------------------------------------


def inference(api: str, model: str | None = None) -> Config:
    engine, default = {OPENAI: ("OPENAI", "gpt-4o-mini"), ANTHROPIC: ("ANTHROPIC", CLAUDE_35)}[api]
    name = model or default
    return {
        "engine": engine,
        "model": {"model_name": name},
        "generation": {"max_new_tokens": 512, "temperature": 0.7},
    }


def config(api: str, samples: int, model: str | None = None, **strategy: Any) -> Config:
    """A config with these strategy_params; ``environments=[...]`` becomes environment_config."""
    environments = strategy.pop("environments", None)
    data: Config = {"num_samples": samples, "strategy_params": strategy}
    if environments is not None:
        data["environment_config"] = {"environments": environments}
    data["inference_config"] = inference(api, model)
    return data


def sampled(attr: str, *names: str, rates: list[float] | None = None) -> Config:
    values = []
    for i, name in enumerate(names):
        value = {"id": name.lower().replace(" ", "_"), "name": name, "description": f"all {name}"}
        if rates is not None:
            value["sample_rate"] = rates[i]
        values.append(value)
    return {
        "id": attr,
        "name": attr.title(),
        "description": f"The {attr} of the sample",
        "possible_values": values,
    }


def topic(count: int = 1) -> Config:
    return sampled("topic", *["Rivers", "Mountains", "Deserts"][:count])


def generated(attr: str, user: str, system: str | None = None, **post: Any) -> Config:
    messages = [{"role": "SYSTEM", "content": system}] if system else []
    data: Config = {
        "id": attr,
        "instruction_messages": [*messages, {"role": "USER", "content": user}],
    }
    if post:
        data["postprocessing_params"] = post
    return data


def multiturn(
    attr: str = "chat",
    turns: tuple[int, int] = (2, 2),
    user: str = "You are a curious person asking about {topic}.",
    assistant: str = "You are a helpful guide.",
    roles: tuple[str, str] = ("USER", "ASSISTANT"),
    **extra: Any,
) -> Config:
    return {
        "id": attr,
        "min_turns": turns[0],
        "max_turns": turns[1],
        "role_instruction_messages": {roles[0]: user, roles[1]: assistant},
        **extra,
    }


def transformed(attr: str, kind: str, value: Any) -> Config:
    key = {"STRING": "string_transform", "LIST": "list_transform", "DICT": "dict_transform"}
    strategy: Config = {"type": kind}
    if kind == "CHAT":
        strategy["chat_transform"] = value
    else:
        strategy[key[kind]] = value
    return {"id": attr, "transformation_strategy": strategy}


QA = [
    generated("question", "Ask one question about {topic}.", "You write quiz questions."),
    generated("answer", "{question}", "You answer briefly."),
]

# --- environments ---------------------------------------------------------------------------

BOOK_IDS = ["B001", "B002", "B003"]


def lookup_env(env_type: str = "lookup", grounding: Config | None = None) -> Config:
    books = [{"book_id": b, "title": f"Book {b[-1]}"} for b in BOOK_IDS]
    status = ["available", "checked_out", "available"]
    env: Config = {
        "id": "shelf",
        "name": "shelf",
        "description": "A small library shelf.",
        "env_type": env_type,
        "tools": [
            {
                "id": "list_books",
                "name": "list_books",
                "description": "List the books on the shelf.",
                "parameters": {"type": "object", "properties": {}},
            },
            {
                "id": "book_status",
                "name": "book_status",
                "description": "Borrow status of a book by id.",
                "parameters": {
                    "type": "object",
                    "properties": {"book_id": {"type": "string", "enum": BOOK_IDS}},
                    "required": ["book_id"],
                },
            },
        ],
        "env_kwargs": {
            "lookup_table": {
                "list_books": [{"input": {}, "output": {"books": books}}],
                "book_status": [
                    {"input": {"book_id": b["book_id"]}, "output": {**b, "status": s}}
                    for b, s in zip(books, status, strict=True)
                ],
            }
        },
    }
    if grounding is not None:
        env["grounding"] = grounding
    return env


FORECAST_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "summary": {"type": "string"},
        "high_c": {"type": "integer"},
    },
    "required": ["city", "summary", "high_c"],
}
ALERTS_SCHEMA = {
    "type": "object",
    "properties": {"alerts": {"type": "array", "items": {"type": "string"}}},
    "required": ["alerts"],
}


def simulated_env(env_type: str = "simulated", with_executor: bool = False) -> Config:
    tools = [
        {
            "id": "get_forecast",
            "name": "get_forecast",
            "description": "Weather forecast for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "enum": ["Oslo", "Lima"]},
                    "days": {"type": "integer", "minimum": 1, "maximum": 3},
                },
                "required": ["city"],
            },
            "output_schema": FORECAST_SCHEMA,
        },
        {
            "id": "get_alerts",
            "name": "get_alerts",
            "description": "Active weather alerts for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "enum": ["Oslo", "Lima"]}},
                "required": ["city"],
            },
            "output_schema": ALERTS_SCHEMA,
        },
    ]
    if with_executor:
        tools.append(
            {
                "id": "shout",
                "name": "shout",
                "description": "Upper-case a text.",
                "parameters": {
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                },
                "executor": "parity_tools.shout",
            }
        )
    return {
        "id": "weather",
        "name": "weather",
        "description": "A simulated weather service.",
        "env_type": env_type,
        "env_kwargs": {"tool_persona": "You simulate a weather service API."},
        "tools": tools,
    }


COUNTER_NAME = {"type": "string", "enum": ["apples", "pears"]}


def stateful_env(grounding: Config | None = None) -> Config:
    shelves = [
        {"shelf": "A", "item": "apples"},
        {"shelf": "B", "item": "pears"},
        {"shelf": "C", "item": "plums"},
    ]
    env: Config = {
        "id": "pantry",
        "name": "pantry",
        "description": "Fruit counters with mutable state.",
        "env_type": "simulated",
        "env_kwargs": {
            "tool_persona": "Tools run in Python.",
            "cache_by_input": False,
            "state_params": {
                "state_schema": {
                    "type": "object",
                    "properties": {
                        "counters": {"type": "object"},
                        "shelves": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["counters", "shelves"],
                },
                "initial_state": {"counters": {"apples": 3, "pears": 0}, "shelves": shelves},
            },
        },
        "tools": [
            {
                "id": "counter_get",
                "name": "counter_get",
                "description": "Read a fruit counter.",
                "parameters": {
                    "type": "object",
                    "properties": {"name": COUNTER_NAME},
                    "required": ["name"],
                },
                "read_only": True,
                "executor": "parity_tools.counter_get",
            },
            {
                "id": "counter_add",
                "name": "counter_add",
                "description": "Add to a fruit counter.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "name": COUNTER_NAME,
                        "amount": {"type": "integer", "minimum": 1, "maximum": 5},
                    },
                    "required": ["name", "amount"],
                },
                "read_only": False,
                "executor": "parity_tools.counter_add",
            },
        ],
    }
    if grounding is not None:
        env["grounding"] = grounding
    return env


SKU = {"type": "string", "enum": ["A1", "B2", "C3", "Z9"]}


def database_env() -> Config:
    return {
        "id": "store",
        "name": "store",
        "description": "A stock table.",
        "env_type": "database",
        "env_kwargs": {
            "schema_sql": "CREATE TABLE items (sku TEXT PRIMARY KEY, qty INTEGER NOT NULL);",
            "seed_sql": "INSERT INTO items VALUES ('A1', 3), ('B2', 0), ('C3', 7);",
        },
        "tools": [
            {
                "id": "item_list",
                "name": "item_list",
                "description": "List the stock.",
                "parameters": {"type": "object", "properties": {}},
                "read_only": True,
                "executor": "parity_tools.item_list",
            },
            {
                "id": "item_get",
                "name": "item_get",
                "description": "Stock of one item.",
                "parameters": {
                    "type": "object",
                    "properties": {"sku": SKU},
                    "required": ["sku"],
                },
                "read_only": True,
                "executor": "parity_tools.item_get",
            },
            {
                "id": "item_restock",
                "name": "item_restock",
                "description": "Add stock to an item.",
                "parameters": {
                    "type": "object",
                    "properties": {"sku": SKU, "qty": {"type": "integer", "minimum": 1}},
                    "required": ["sku", "qty"],
                },
                "read_only": False,
                "executor": "parity_tools.item_restock",
            },
        ],
    }


TOOLS_FILE = {"parity_tools.py": HERE / "executors" / "parity_tools.py"}
AGENT = "You are a shop assistant. Use your tools, then answer."


def tool_case(
    name: str,
    api: str,
    environments: list[Config],
    *,
    turns: int = 2,
    assistant: str = AGENT,
    model: str | None = None,
    passthrough: list[str] | None = None,
    **extra: Any,
) -> Case:
    """A 3-sample conversation of ``turns`` rounds over ``environments``. Unless ``extra``
    says otherwise, ``available_environments`` names them all (synthc offers no tool
    to an attribute that names none; see tools_no_available_list)."""
    if "available_environments" not in extra and "available_tools" not in extra:
        extra["available_environments"] = [env["id"] for env in environments]
    extra = {k: v for k, v in extra.items() if v is not None}
    mt = multiturn(turns=(turns, turns), assistant=assistant, **extra)
    data = config(api, 3, model, environments=environments, sampled_attributes=[topic()])
    data["strategy_params"]["multiturn_attributes"] = [mt]
    if passthrough:
        data["strategy_params"]["passthrough_attributes"] = passthrough
    return Case(name, api, EXACT, data, copies=TOOLS_FILE)


# --- the cases ---------------------------------------------------------------------------


def multiturn_cases() -> list[Case]:
    cases = []
    for api in (OPENAI, ANTHROPIC):
        for rounds in (1, 2, 3):
            data = config(api, 3, sampled_attributes=[topic()])
            data["strategy_params"]["multiturn_attributes"] = [multiturn(turns=(rounds, rounds))]
            cases.append(Case(f"mt_{rounds}_round_{api}", api, EXACT, data))
        data = config(api, DRAW_SAMPLES, sampled_attributes=[topic(2)])
        data["strategy_params"]["multiturn_attributes"] = [multiturn(turns=(1, 3))]
        cases.append(Case(f"mt_turn_range_{api}", api, DRAWS, data))
    variants: dict[str, Config] = {
        "mt_output_system_plain": {"output_system_prompt": "You are a geography guide."},
        "mt_output_system_placeholders": {
            "output_system_prompt": "Guide for {topic} ({topic.description}), "
            "{topic.parent}: {topic.parent.description}.\n"
        },
        "mt_target_turns_in_personas": {
            "user": "You ask about {topic}; the chat has {target_turns} turns.",
            "assistant": "You answer in {target_turns} turns at most.",
        },
        "mt_current_turn_in_persona": {
            "user": "You ask about {topic}. This is turn {current_turn}.",
        },
        "mt_current_turn_in_planner": {
            "conversation_planner": "Plan it; we are at turn {current_turn}."
        },
        "mt_target_turns_in_output_system": {
            "output_system_prompt": "A {target_turns}-message chat about {topic}."
        },
        "mt_planner_placeholders": {
            "conversation_planner": "Plan {target_turns} turns about {topic} "
            "({topic.description}); keep it short.\n"
        },
        "mt_role_keys_lowercase": {"roles": ("user", "assistant")},
        "mt_role_keys_capitalized": {"roles": ("User", "Assistant")},
        "mt_passthrough_plan": {},
    }
    for name, extra in variants.items():
        data = config(OPENAI, 3, sampled_attributes=[topic()])
        data["strategy_params"]["multiturn_attributes"] = [multiturn(**extra)]
        if name == "mt_passthrough_plan":
            data["strategy_params"]["passthrough_attributes"] = ["chat", "chat_plan", "topic"]
        cases.append(Case(name, OPENAI, EXACT, data))
    data = config(OPENAI, 3, sampled_attributes=[topic()], generated_attributes=QA)
    data["strategy_params"]["multiturn_attributes"] = [
        multiturn(user="You ask: {question}", assistant="You know: {answer}")
    ]
    cases.append(Case("mt_with_generated", OPENAI, EXACT, data))
    data = config(ANTHROPIC, 3, sampled_attributes=[topic()])
    data["strategy_params"]["multiturn_attributes"] = [
        multiturn("first", turns=(1, 1)),
        multiturn("second", turns=(2, 2), user="You follow up on {topic}."),
    ]
    cases.append(Case("mt_two_attributes", ANTHROPIC, EXACT, data))
    data = config(ANTHROPIC, 3, CLAUDE_45, sampled_attributes=[topic()])
    data["strategy_params"]["multiturn_attributes"] = [multiturn()]
    note = "oumi sends the planner schema as output_config to Claude >= 4.5"
    cases.append(Case("mt_anthropic_claude45_planner", ANTHROPIC, EXACT, data, note=note))
    data = config(OPENAI, 3, sampled_attributes=[topic()])
    mt = multiturn()
    mt["role_instruction_messages"]["SYSTEM"] = "Both speakers stay on {topic}."
    data["strategy_params"]["multiturn_attributes"] = [mt]
    cases.append(Case("mt_system_role_persona", OPENAI, EXACT, data))
    return cases


def tool_cases() -> list[Case]:
    grounded = {"sample_size": 2, "seed": 5, "tools": {"book_status": {"fields": ["book_id"]}}}
    state_grounding = {
        "sample_size": 2,
        "seed": 3,
        "state": [{"state_path": "shelves", "fields": ["shelf", "item"]}],
    }
    cases = [
        tool_case("tools_lookup_openai", OPENAI, [lookup_env()]),
        tool_case("tools_lookup_anthropic", ANTHROPIC, [lookup_env()]),
        tool_case("tools_deterministic_alias", OPENAI, [lookup_env("deterministic")]),
        tool_case("tools_synthetic_openai", OPENAI, [simulated_env("synthetic")]),
        tool_case("tools_simulated_anthropic", ANTHROPIC, [simulated_env()]),
        tool_case(
            "tools_simulated_anthropic_claude45", ANTHROPIC, [simulated_env()], model=CLAUDE_45
        ),
        tool_case("tools_simulated_executor", OPENAI, [simulated_env(with_executor=True)], turns=3),
        tool_case("tools_stateful_executors", OPENAI, [stateful_env()], turns=3),
        tool_case("tools_database_openai", OPENAI, [database_env()], turns=3),
        tool_case("tools_database_anthropic", ANTHROPIC, [database_env()]),
        tool_case(
            "tools_available_environments",
            OPENAI,
            [lookup_env(), database_env()],
            available_environments=["store"],
        ),
        tool_case(
            "tools_available_tools",
            ANTHROPIC,
            [lookup_env(), database_env()],
            available_tools=["book_status", "item_get"],
        ),
        tool_case(
            "tools_unknown_available_tool",
            OPENAI,
            [lookup_env()],
            available_tools=["no_such_tool"],
        ),
        tool_case("tools_max_consecutive_1", OPENAI, [lookup_env()], max_consecutive_tool_turns=1),
        tool_case(
            "tools_max_consecutive_2_greedy",
            OPENAI,
            [lookup_env()],
            assistant=f"{AGENT} {GREEDY}",
            max_consecutive_tool_turns=2,
        ),
        tool_case(
            "tools_max_consecutive_1_anthropic",
            ANTHROPIC,
            [database_env()],
            max_consecutive_tool_turns=1,
        ),
        tool_case(
            "tools_grounding_lookup",
            OPENAI,
            [lookup_env(grounding=grounded)],
            conversation_planner="Plan a short shelf visit.",
        ),
        tool_case("tools_grounding_state", OPENAI, [stateful_env(state_grounding)]),
        tool_case(
            "tools_grounding_lookup_passthrough",
            OPENAI,
            [lookup_env(grounding=grounded)],
            conversation_planner="Plan a short shelf visit.",
            passthrough=["chat", "chat_plan"],
        ),
        tool_case(
            "tools_grounding_state_passthrough",
            OPENAI,
            [stateful_env(state_grounding)],
            passthrough=["topic", "chat", "chat_plan"],
        ),
        tool_case(
            "tools_no_available_list",
            OPENAI,
            [lookup_env()],
            available_environments=None,
            available_tools=None,
        ),
        tool_case(
            "tools_errors_openai",
            OPENAI,
            [lookup_env(), database_env()],
            turns=3,
            assistant=f"{AGENT} {FAULTY}",
        ),
        tool_case(
            "tools_errors_anthropic",
            ANTHROPIC,
            [database_env()],
            turns=3,
            assistant=f"{AGENT} {FAULTY}",
        ),
    ]
    data = config(OPENAI, DRAW_SAMPLES, environments=[lookup_env()], sampled_attributes=[topic(2)])
    mt = multiturn(turns=(1, 3), assistant=AGENT, available_environments=["shelf"])
    data["strategy_params"]["multiturn_attributes"] = [mt]
    cases.append(Case("tools_turn_range", OPENAI, DRAWS, data))
    data = config(OPENAI, 3, sampled_attributes=[topic()])
    data["environment_config_path"] = "environments.yaml"
    mt = multiturn(assistant=AGENT, available_environments=["shelf"])
    data["strategy_params"]["multiturn_attributes"] = [mt]
    env_file = json.dumps({"environments": [lookup_env()]}, indent=1)
    cases.append(
        Case(
            "tools_environment_config_path",
            OPENAI,
            EXACT,
            data,
            files={"environments.yaml": env_file},
        )
    )
    return cases


def transform_cases() -> list[Case]:
    base = {"sampled_attributes": [topic()], "generated_attributes": QA}
    chat = {
        "messages": [
            {"role": "SYSTEM", "content": "Quiz about {topic.parent}: {topic.description}"},
            {"role": "USER", "content": "{question}"},
            {"role": "ASSISTANT", "content": "{answer}"},
        ],
        "metadata": {"topic": "{topic}", "source": "parity"},
    }
    numeric = {
        "messages": [{"role": "USER", "content": 123}, {"role": "ASSISTANT", "content": "{answer}"}]
    }
    shapes = {
        "transform_string": transformed(
            "line", "STRING", "{topic} | {topic.description} | {topic.parent} | {question}"
        ),
        "transform_list": transformed("parts", "LIST", ["{question}", "{answer}", "{topic.name}"]),
        "transform_dict": transformed("pair", "DICT", {"q": "{question}", "a": "{answer}"}),
        "transform_chat": transformed("conversation", "CHAT", chat),
        "transform_chat_numeric_content": transformed("conversation", "CHAT", numeric),
    }
    cases = []
    for name, attribute in shapes.items():
        api = ANTHROPIC if name == "transform_chat" else OPENAI
        data = config(api, 3, **base, transformed_attributes=[attribute])
        cases.append(Case(name, api, EXACT, data))
    post = [
        generated(
            "raw",
            "Say: Answer: 42 END and more",
            id="cut",
            cut_prefix="Answer:",
            cut_suffix="END",
            added_prefix="[",
            added_suffix="]",
        ),
        generated(
            "raw2",
            "Numbers 17 and 99 ",
            id="number",
            regex=r"\d+",
            strip_whitespace=False,
            keep_original_text_attribute=False,
        ),
        generated("raw3", "  padded  ", id="missing_cut", cut_prefix="NOPE", cut_suffix="NOPE"),
    ]
    data = config(OPENAI, 2, sampled_attributes=[topic()], generated_attributes=post)
    cases.append(Case("postprocessing_params", OPENAI, EXACT, data))
    return cases


def sampling_cases() -> list[Case]:
    colors = [sampled("color", "Red", "Blue"), sampled("size", "Small", "Large")]
    shape = sampled("shape", "Circle")
    combo = [{"combination": {"color": "red", "size": "large"}, "sample_rate": 1.0}]
    describe = [generated("desc", "Describe a {color} {size} thing.")]
    with_shape = [generated("desc", "Describe a {color} {size} {shape}.")]
    examples = [{"q": f"Question {i}?", "a": f"Answer {i}."} for i in range(4)]
    rows = "".join(json.dumps({"task": f"task {i}", "hint": f"hint {i}"}) + "\n" for i in range(3))
    csv = "city,country\nOslo,Norway\nLima,Peru\n"
    cases = [
        Case(
            "combination_rate_1",
            OPENAI,
            EXACT,
            config(
                OPENAI,
                4,
                sampled_attributes=[*colors, shape],
                combination_sampling=combo,
                generated_attributes=describe,
            ),
        ),
        Case(
            "combination_rate_1_uses_other_attr",
            OPENAI,
            EXACT,
            config(
                OPENAI,
                4,
                sampled_attributes=[*colors, shape],
                combination_sampling=combo,
                generated_attributes=with_shape,
            ),
        ),
        Case(
            "combination_partial",
            OPENAI,
            DRAWS,
            config(
                OPENAI,
                DRAW_SAMPLES,
                sampled_attributes=colors,
                combination_sampling=[{**combo[0], "sample_rate": 0.5}],
                generated_attributes=describe,
            ),
        ),
        Case(
            "sample_rates",
            ANTHROPIC,
            DRAWS,
            config(
                ANTHROPIC,
                DRAW_SAMPLES,
                sampled_attributes=[sampled("tone", "Calm", "Loud", rates=[0.7, 0.3])],
                generated_attributes=[generated("line", "Say hi in a {tone} way.")],
            ),
        ),
        Case("empty_strategy_params", OPENAI, EXACT, config(OPENAI, 2)),
        Case(
            "generated_only",
            OPENAI,
            EXACT,
            config(OPENAI, 2, generated_attributes=[generated("fact", "Tell a fact.")]),
        ),
        Case(
            "input_examples_round_robin",
            OPENAI,
            EXACT,
            config(
                OPENAI,
                6,
                input_examples=[{"examples": examples[:3]}],
                generated_attributes=[generated("more", "Like '{q}' -> '{a}', ask another.")],
            ),
        ),
        Case(
            "input_examples_num_shots",
            OPENAI,
            DRAWS,
            config(
                OPENAI,
                DRAW_SAMPLES,
                input_examples=[{"id": "shots", "num_shots": 2, "examples": examples[:3]}],
                generated_attributes=[generated("more", "Like {shots[0].q} and {shots[1].q}")],
                passthrough_attributes=["more", "shots[0].q", "shots[1].q"],
            ),
        ),
        Case(
            "input_data_jsonl",
            OPENAI,
            EXACT,
            config(
                OPENAI,
                4,
                input_data=[
                    {"path": "data/rows.jsonl", "attribute_map": {"task": "job", "hint": "hint"}}
                ],
                generated_attributes=[generated("done", "Do {job} with {hint}.")],
            ),
            files={"data/rows.jsonl": rows},
        ),
        Case(
            "input_data_attribute_map_drops",
            OPENAI,
            EXACT,
            config(
                OPENAI,
                4,
                input_data=[{"path": "data/rows.jsonl", "attribute_map": {"task": "job"}}],
                generated_attributes=[generated("done", "Do {job} with {hint}.")],
            ),
            files={"data/rows.jsonl": rows},
            note="oumi keeps only the columns attribute_map names",
        ),
        Case(
            "input_data_csv",
            ANTHROPIC,
            EXACT,
            config(
                ANTHROPIC,
                3,
                input_data=[{"path": "data/cities.csv"}],
                generated_attributes=[generated("fact", "One fact about {city}, {country}.")],
            ),
            files={"data/cities.csv": csv},
        ),
    ]
    return cases


ALPACA = "".join(
    json.dumps({"instruction": f"Explain idea {i}.", "input": f"context {i}", "output": f"A{i}."})
    + "\n"
    for i in range(4)
)
SHIPPED: dict[str, tuple[str, str, dict[str, Any]]] = {
    # file: (mode, server path, extra Case fields)
    "question_answer_synth.yaml": (DRAWS, ANTHROPIC, {}),
    "instruction_following_synth.yaml": (DRAWS, ANTHROPIC, {}),
    "conversation_synth.yaml": (DRAWS, ANTHROPIC, {}),
    "data_augmentation_synth.yaml": (
        DRAWS,
        ANTHROPIC,
        {"files": {"data/dataset_examples/alpaca_format.jsonl": ALPACA}},
    ),
    "dynamic_few_shot_synth.yaml": (DRAWS, ANTHROPIC, {}),
    "multiturn_conversation_synth.yaml": (DRAWS, ANTHROPIC, {}),
    "domain_qa_synth.yaml": (DRAWS, ANTHROPIC, {}),
    "library_tool_use_synth.yaml": (DRAWS, OPENAI, {}),
    "ehr_database_synth.yaml": (
        DRAWS,
        OPENAI,
        {"copies": {"ehr_db.py": OUMI_EXAMPLES / "executors" / "ehr_db.py"}},
    ),
    "ehr_stateful_synth.yaml": (
        DRAWS,
        OPENAI,
        {"copies": {"ehr.py": OUMI_EXAMPLES / "executors" / "ehr.py"}},
    ),
    "mcp_docs_lookup_synth.yaml": (DRAWS, OPENAI, {}),
}


def shipped_cases() -> list[Case]:
    cases = []
    for file, (mode, api, extra) in SHIPPED.items():
        name = "oumi_" + file.removesuffix("_synth.yaml")
        cases.append(
            Case(name, api, mode, source=OUMI_EXAMPLES / file, num_samples=DRAW_SAMPLES, **extra)
        )
    return cases


# synthc's documented departures (README "Differences from oumi synth"): oumi 0.9 stops
# on these configs, synthc builds them
CURRENT_TURN = "{current_turn} works everywhere; oumi's planner formats personas without it"
ROLE_KEYS = "role keys in any case; oumi's YAML loader takes only USER/ASSISTANT"
GROUNDING = "grounding facts stay out of rows; oumi writes them and cannot serialize them"
DELIBERATE = {
    "mt_current_turn_in_persona": CURRENT_TURN,
    "mt_current_turn_in_planner": CURRENT_TURN,
    "mt_role_keys_lowercase": ROLE_KEYS,
    "mt_role_keys_capitalized": ROLE_KEYS,
    "tools_grounding_lookup": GROUNDING,
    "tools_grounding_state": GROUNDING,
}


def all_cases() -> list[Case]:
    cases = [
        *multiturn_cases(),
        *tool_cases(),
        *transform_cases(),
        *sampling_cases(),
        *shipped_cases(),
    ]
    return [replace(c, deliberate=DELIBERATE.get(c.name, "")) for c in cases]
