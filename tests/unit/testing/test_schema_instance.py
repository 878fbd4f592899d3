"""Schema instances: each validates against its schema; the same salt gives the same value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from synthc.planning.conversation import PLANNER_SCHEMA
from synthc.testing._schema import schema_instance

EXAMPLES = Path(__file__).resolve().parents[2] / "oumi_examples"
SCHEMAS: dict[str, Any] = {
    "planner": PLANNER_SCHEMA,
    "defs and refs": {
        "$defs": {
            "med": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "dose": {"type": "string"}},
                "required": ["name", "dose"],
                "additionalProperties": False,
            }
        },
        "type": "object",
        "properties": {"meds": {"type": "array", "items": {"$ref": "#/$defs/med"}}},
        "required": ["meds"],
    },
    "definitions ref at the root": {
        "definitions": {"id": {"type": "string", "minLength": 30}},
        "$ref": "#/definitions/id",
    },
    "anyOf, type lists, enum": {
        "type": "object",
        "properties": {
            "when": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
            "maybe": {"type": ["null", "integer"], "minimum": 5},
            "status": {"enum": ["active", "inactive"]},
            "kind": {"const": "ok"},
        },
        "required": ["when", "maybe", "status", "kind"],
    },
    "allOf and numbers in bounds": {
        "allOf": [
            {"type": "object", "properties": {"hr": {"type": "integer", "exclusiveMinimum": 30}}},
            {"properties": {"t": {"type": "number", "maximum": 0.5}}, "required": ["hr", "t"]},
        ]
    },
    "array sizes and unique items": {
        "type": "array",
        "items": {"type": "string", "maxLength": 12},
        "minItems": 3,
        "maxItems": 3,
        "uniqueItems": True,
    },
    "tuple": {"type": "array", "prefixItems": [{"type": "boolean"}, {"type": "integer"}]},
    "formats": {
        "type": "object",
        "properties": {
            f: {"type": "string", "format": f}
            for f in ("date", "date-time", "email", "uri", "ipv4")
        },
    },
    "untyped and empty": {"properties": {"anything": {}, "free": True}, "required": ["anything"]},
    "recursive": {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["name"],
            }
        },
        "$ref": "#/$defs/node",
    },
}


def _example_schemas() -> list[Any]:
    """Every tool ``parameters``/``output_schema`` and ``state_schema`` in oumi's examples."""
    found: list[Any] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("output_schema", "parameters", "state_schema") and isinstance(
                    value, dict
                ):
                    found.append(pytest.param(value, id=f"{where}:{key}:{len(found)}"))
                walk(value, where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for name in (
        "ehr_stateful_synth",
        "mcp_docs_lookup_synth",
        "library_tool_use_synth",
        "ehr_database_synth",
    ):
        walk(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()), name)
    return found


def _valid(schema: Any, value: Any) -> None:
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(value)


@pytest.mark.parametrize("salt", ["", "a1b2", "0123456789abcdef"])
@pytest.mark.parametrize("schema", list(SCHEMAS.values()), ids=list(SCHEMAS))
def test_instances_validate(schema: Any, salt: str) -> None:
    _valid(schema, schema_instance(schema, salt))


@pytest.mark.parametrize("schema", _example_schemas())
def test_instances_of_the_oumi_example_schemas_validate(schema: Any) -> None:
    _valid(schema, schema_instance(schema, "seed"))


def test_the_oumi_examples_have_the_schemas_this_test_is_about() -> None:
    assert len(_example_schemas()) >= 19  # 13 ehr_stateful + 6 mcp_docs_lookup at least


def test_oneof_takes_the_first_branch_and_all_properties_are_filled() -> None:
    ehr = yaml.safe_load((EXAMPLES / "ehr_stateful_synth.yaml").read_text())
    tools = ehr["environment_config"]["environments"][0]["tools"]
    record = next(t for t in tools if t["id"] == "get_patient")["output_schema"]
    value = schema_instance(record, "x")
    assert value["status"] == "ok"
    assert set(value["patient"]) == set(record["oneOf"][0]["properties"]["patient"]["properties"])


def test_planner_instance_is_usable_as_is() -> None:
    value = schema_instance(PLANNER_SCHEMA, "salt-1")
    turns = value["turns"]
    assert 1 <= len(turns) <= 2
    assert [t["turn"] for t in turns] == list(range(1, len(turns) + 1))
    assert all(t["instruction"].startswith(f"instruction-{t['turn']}-") for t in turns)


def test_same_salt_same_value_other_salt_other_strings() -> None:
    assert schema_instance(PLANNER_SCHEMA, "a") == schema_instance(PLANNER_SCHEMA, "a")
    ones = {schema_instance({"type": "string"}, salt) for salt in ("a", "b", "c")}
    assert len(ones) == 3
    assert {len(schema_instance({"type": "array"}, str(i))) for i in range(20)} == {1, 2}


def test_remote_refs_are_refused_with_the_ref() -> None:
    with pytest.raises(ValueError) as info:
        schema_instance({"$ref": "https://x/s.json"})
    assert str(info.value) == "only local $ref is supported, not 'https://x/s.json'"


def test_a_recursive_schema_stops_at_the_first_repeat() -> None:
    value = schema_instance(SCHEMAS["recursive"], "a")
    assert all(set(child) == {"name"} for child in value["children"])
    with pytest.raises(ValueError, match="nested over 48 deep"):
        schema_instance(
            {
                "$defs": {"n": {"required": ["n"], "properties": {"n": {"$ref": "#/$defs/n"}}}},
                "$ref": "#/$defs/n",
            }
        )
