"""keys: canonical JSON in, content keys and per-sample seeds out. Golden values are pinned:
if one of these fails, every cache in the world is invalidated — bump KEY_VERSION on purpose."""

from __future__ import annotations

import json
import math

import pytest
import xxhash
from hypothesis import example, given, settings
from hypothesis import strategies as st

from synthc.core.keys import (
    KEY_VERSION,
    canonical_json,
    derive_seed,
    digest,
    node_id,
    node_key,
    unit_draw,
)


def test_key_version() -> None:
    assert KEY_VERSION == 1


@pytest.mark.parametrize(
    ("kind", "parts", "key"),
    [
        (
            "llm",
            {
                "model": "gpt-4o-mini",
                "messages": [["user", "Hi"]],
                "params": {"temperature": 0.7},
                "seed": 42,
            },
            "3694fc14455ac6800d0a07db0caf09ca",
        ),
        ("sample", {"seed": 0, "index": 0, "values": {}}, "5ead8199046e5aac38c792a177e192cc"),
        ("sample", {"seed": 0, "index": 1, "values": {}}, "d7b0af9344315a7665dfa2c3799135c3"),
        (
            "transform",
            {"text": "café ☕", "n": [1, 2.5, None, True]},
            "39175d60bf7b6b061afd831563b78895",
        ),
    ],
)
def test_node_key_golden(kind: str, parts: dict[str, object], key: str) -> None:
    assert node_key(kind, parts) == key


def test_node_key_is_xxh3_128_of_canonical_payload() -> None:
    parts = {"b": 2, "a": 1}
    payload = {"kind": "k", "key_version": KEY_VERSION, "parts": parts}
    assert node_key("k", parts) == xxhash.xxh3_128_hexdigest(canonical_json(payload))


def test_node_key_ignores_dict_order_but_not_list_order() -> None:
    assert node_key("x", {"a": 1, "b": 2}) == node_key("x", {"b": 2, "a": 1})
    assert node_key("x", {"a": [1, 2]}) != node_key("x", {"a": [2, 1]})


def test_node_key_separates_kinds_and_types() -> None:
    assert node_key("llm", {"a": 1}) != node_key("transform", {"a": 1})
    assert node_key("x", {"a": 1}) != node_key("x", {"a": "1"})
    assert node_key("x", {"a": 1}) != node_key("x", {"a": 1.5})


def test_digest_golden() -> None:
    assert digest({"b": 1, "a": [1, 2]}) == "299931ea45b07bf6"
    assert digest({"a": [1, 2], "b": 1}) == "299931ea45b07bf6"


def test_derive_seed_golden() -> None:
    assert derive_seed(0, 0, "answer") == 4104805075227726606
    assert derive_seed(7, 3, "question") == 7446209234798333638
    assert derive_seed(0, 1, "answer") == 8975092373443491801
    assert 0 <= derive_seed(2**40, 10**9, "x" * 1000) < 2**63


def test_unit_draw_golden() -> None:
    assert unit_draw(0, 0, "level") == 0.014436726582864545
    assert unit_draw(7, 3, "topic") == 0.8411375270970732
    assert unit_draw(0, 1, "level") == 0.01716989897002763


def test_unit_draw_range_and_spread() -> None:
    draws = [unit_draw(1, i, "a") for i in range(5000)]
    assert all(0.0 <= d < 1.0 for d in draws)
    assert sum(draws) / len(draws) == pytest.approx(0.5, abs=0.02)
    assert sum(d < 0.1 for d in draws) / len(draws) == pytest.approx(0.1, abs=0.02)


def test_unit_draw_never_reaches_one() -> None:
    # the largest possible hash maps below 1.0 (a plain /2**64 would round up to 1.0)
    assert ((2**64 - 1) >> 11) / 2.0**53 < 1.0


def test_seed_inputs_do_not_run_together() -> None:
    assert derive_seed(1, 12, "a") != derive_seed(11, 2, "a")
    assert unit_draw(1, 12, "a") != unit_draw(11, 2, "a")
    assert derive_seed(0, 0, "a") != derive_seed(0, 0, "b")


def test_canonical_json_sorted_compact_utf8() -> None:
    text = canonical_json({"b": [1, {"d": "é", "c": None}], "a": 1.5})
    assert text == '{"a":1.5,"b":[1,{"c":null,"d":"é"}]}'.encode()
    assert json.loads(text) == {"b": [1, {"d": "é", "c": None}], "a": 1.5}


def test_canonical_json_keeps_unicode_raw() -> None:
    assert canonical_json("☕\n") == b'"\xe2\x98\x95\\n"'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"a": [math.nan]}])
def test_canonical_json_refuses_nan(value: object) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        canonical_json(value)


def test_canonical_json_refuses_non_json() -> None:
    with pytest.raises(TypeError):
        canonical_json({"a": {1, 2}})


def test_node_id() -> None:
    assert node_id("answer", 17) == "answer[17]"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(JSON)
@example(6.103515625e-05)  # orjson: 0.00006103515625
@example([1e-05, 0.0001, 1e16, 1.2345678901234568e16, 5e-324, -1e-7, 1e-4 * 0.999])
@example({"a": "1e-7 in a string", "b": 0.0000001})
def test_canonical_json_is_json_dumps_text_whichever_encoder_writes_it(value: object) -> None:
    """Keys hash json.dumps's text; the fast path must write the very same bytes."""
    expected = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
    assert canonical_json(value) == expected
