"""sampling: (seed, sample index) in, example rows and sampled values out; pure, per attribute."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synthc.compiler.graph import Graph
from synthc.compiler.sampling import Choice, Combination, Sampler, Source
from synthc.compiler.template import SampledValue
from synthc.compiler.validate import Spec

N = 20_000
TOLERANCE = 0.015  # > 4 standard deviations of a rate estimated from 20k draws


def _choice(attr: str, weights: dict[str, float]) -> Choice:
    values = tuple(
        SampledValue(attr, attr.title(), f"about {attr}", vid, vid.title(), f"{vid}!")
        for vid in weights
    )
    return Choice.build(values, list(weights.values()))


def _ids(sample: dict[str, Any]) -> dict[str, Any]:
    return {k: v.id if isinstance(v, SampledValue) else v for k, v in sample.items()}


def _frequencies(sampler: Sampler, attr: str, n: int = N) -> dict[str, float]:
    counts = Counter(sampler.draw(i)[attr].id for i in range(n))
    return {k: c / n for k, c in counts.items()}


LEVEL = _choice("level", {"easy": 0.4, "medium": 0.4, "hard": 0.2})
TOPIC = _choice("topic", {"math": 1, "art": 1, "music": 1, "law": 1})


def test_fixed_seed_is_reproducible() -> None:
    first = Sampler(7, (), (LEVEL, TOPIC))
    again = Sampler(7, (), (LEVEL, TOPIC))
    assert [_ids(first.draw(i)) for i in range(200)] == [_ids(again.draw(i)) for i in range(200)]


def test_draws_are_pinned() -> None:
    """Golden: an accidental change to the draw function fails here."""
    sampler = Sampler(0, (), (LEVEL, TOPIC))
    assert [(s["level"].id, s["topic"].id) for s in map(sampler.draw, range(6))] == [
        ("easy", "music"),
        ("easy", "music"),
        ("easy", "art"),
        ("hard", "music"),
        ("medium", "music"),
        ("medium", "law"),
    ]


def test_different_seeds_differ() -> None:
    a = [_ids(Sampler(1, (), (LEVEL, TOPIC)).draw(i)) for i in range(100)]
    b = [_ids(Sampler(2, (), (LEVEL, TOPIC)).draw(i)) for i in range(100)]
    differing = sum(x != y for x, y in zip(a, b, strict=True))
    assert differing > 40  # about 1 - (0.36 * 0.25) = 91% expected


def test_draw_depends_only_on_index() -> None:
    sampler = Sampler(3, (), (LEVEL, TOPIC))
    forward = [_ids(sampler.draw(i)) for i in range(50)]
    backward = [_ids(sampler.draw(i)) for i in reversed(range(50))][::-1]
    assert forward == backward


def test_editing_one_attribute_leaves_the_others_alone() -> None:
    edited = _choice("level", {"easy": 0.1, "medium": 0.1, "hard": 0.7, "expert": 0.1})
    before = Sampler(5, (), (LEVEL, TOPIC))
    after = Sampler(5, (), (edited, TOPIC))
    topics_before = [before.draw(i)["topic"].id for i in range(500)]
    topics_after = [after.draw(i)["topic"].id for i in range(500)]
    assert topics_before == topics_after
    levels_before = [before.draw(i)["level"].id for i in range(500)]
    levels_after = [after.draw(i)["level"].id for i in range(500)]
    assert levels_before != levels_after


def test_adding_an_attribute_leaves_the_others_alone() -> None:
    before = Sampler(5, (), (TOPIC,))
    after = Sampler(5, (), (LEVEL, TOPIC))
    assert [before.draw(i)["topic"] for i in range(300)] == [
        after.draw(i)["topic"] for i in range(300)
    ]


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"easy": 0.4, "medium": 0.4, "hard": 0.2}, {"easy": 0.4, "medium": 0.4, "hard": 0.2}),
        # weights as SampledAttribute.weights() gives them for rates (0.5, unset, unset)
        ({"a": 0.5, "b": 0.25, "c": 0.25}, {"a": 0.5, "b": 0.25, "c": 0.25}),
        # all set, summing to 0.5: relative weights, as random.choices treats them
        ({"a": 0.1, "b": 0.4}, {"a": 0.2, "b": 0.8}),
        ({"a": 0.0, "b": 1.0}, {"b": 1.0}),
    ],
)
def test_frequencies_match_rates(weights: dict[str, float], expected: dict[str, float]) -> None:
    frequencies = _frequencies(Sampler(11, (), (_choice("x", weights),)), "x")
    assert set(frequencies) == set(expected)  # a zero weight is never drawn
    for value, rate in expected.items():
        assert frequencies[value] == pytest.approx(rate, abs=TOLERANCE)


def test_unset_rates_share_the_rest_end_to_end(
    write: Callable[..., Path], load_spec: Callable[..., Spec], lower_spec: Callable[[Spec], Graph]
) -> None:
    path = write(
        """\
        num_samples: 5
        strategy_params:
          sampled_attributes:
            - id: x
              name: X
              description: d
              possible_values:
                - {id: a, name: A, description: a, sample_rate: 0.6}
                - {id: b, name: B, description: b}
                - {id: c, name: C, description: c}
        """,
        model=True,
    )
    sampler = lower_spec(load_spec(path)).sampler
    frequencies = _frequencies(sampler, "x")
    assert frequencies["a"] == pytest.approx(0.6, abs=TOLERANCE)
    assert frequencies["b"] == pytest.approx(0.2, abs=TOLERANCE)
    assert frequencies["c"] == pytest.approx(0.2, abs=TOLERANCE)


COLOR = _choice("color", {"red": 0.5, "blue": 0.5})
SIZE = _choice("size", {"small": 0.5, "large": 0.5})
SHAPE = _choice("shape", {"round": 0.5, "square": 0.5})
RED_SMALL = Combination({"color": "red", "size": "small"}, 0.3)
BLUE_LARGE = Combination({"color": "blue", "size": "large"}, 0.1)


def test_combinations_occur_at_their_rate() -> None:
    sampler = Sampler(13, (), (COLOR, SIZE, SHAPE), (RED_SMALL, BLUE_LARGE))
    pairs = Counter()
    for i in range(N):
        drawn = sampler.draw(i)
        pairs[(drawn["color"].id, drawn["size"].id)] += 1
    # If ordinary draws could land on a combination, red+small would be 0.3 + 0.6 * 0.25 = 0.45.
    assert pairs[("red", "small")] / N == pytest.approx(0.3, abs=TOLERANCE)
    assert pairs[("blue", "large")] / N == pytest.approx(0.1, abs=TOLERANCE)
    # the rest is shared by the two pairs no combination names
    assert pairs[("red", "large")] / N == pytest.approx(0.3, abs=TOLERANCE)
    assert pairs[("blue", "small")] / N == pytest.approx(0.3, abs=TOLERANCE)


def test_a_combination_sample_holds_only_the_combination_in_its_order() -> None:
    """oumi 0.9 draws nothing beyond a chosen combination's values: the sample (and its
    row) holds exactly them, in the combination's order; other samples hold every
    attribute in config order."""
    size_first = Combination({"size": "small", "color": "red"}, 0.3)
    sampler = Sampler(13, (), (COLOR, SIZE, SHAPE), (size_first,))
    shapes = Counter()
    for i in range(N):
        drawn = sampler.draw(i)
        keys = list(drawn)
        if keys == ["size", "color"]:
            assert (drawn["size"].id, drawn["color"].id) == ("small", "red")
        else:
            assert keys == ["color", "size", "shape"]
            shapes[(drawn["color"].id, drawn["size"].id)] += 1
    assert sum(shapes.values()) / N == pytest.approx(0.7, abs=TOLERANCE)
    assert ("red", "small") not in shapes  # ordinary draws avoid the combination


def test_combinations_filling_every_sample() -> None:
    sampler = Sampler(2, (), (COLOR, SIZE), (Combination({"color": "blue", "size": "small"}, 1.0),))
    assert {(d["color"].id, d["size"].id) for d in map(sampler.draw, range(200))} == {
        ("blue", "small")
    }


def test_impossible_to_avoid_combination_terminates() -> None:
    only = (_choice("a", {"x": 1.0}), _choice("b", {"y": 1.0}))
    sampler = Sampler(0, (), only, (Combination({"a": "x", "b": "y"}, 0.5),))
    assert [(d["a"].id, d["b"].id) for d in map(sampler.draw, range(20))] == [("x", "y")] * 20


def test_zero_rate_combinations_are_never_chosen() -> None:
    sampler = Sampler(2, (), (COLOR, SIZE), (Combination({"color": "red", "size": "small"}, 0.0),))
    # rate 0: never forced, and ordinary draws avoid it
    assert all(
        (d["color"].id, d["size"].id) != ("red", "small") for d in map(sampler.draw, range(2000))
    )


def test_examples_round_robin() -> None:
    first = ({"q": "a"}, {"q": "b"}, {"q": "c"})
    second = ({"x": 1, "y": 2}, {"x": 3, "y": 4})
    sampler = Sampler(0, (Source("a", first), Source("b", second)), ())
    assert [sampler.draw(i) for i in range(7)] == [
        {"q": first[i % 3]["q"], **second[i % 2]} for i in range(7)
    ]


def test_later_source_overwrites_same_key_and_order_is_examples_then_sampled() -> None:
    sources = (Source("a", ({"k": "first", "a": 1},)), Source("b", ({"k": "second"},)))
    sampler = Sampler(0, sources, (LEVEL,))
    drawn = sampler.draw(0)
    assert list(drawn) == ["k", "a", "level"]
    assert drawn["k"] == "second"


def test_draw_does_not_mutate_example_rows() -> None:
    rows = ({"q": "a"},)
    sampler = Sampler(0, (Source("a", rows),), (LEVEL,))
    drawn = sampler.draw(0)
    drawn["q"] = "changed"
    assert rows[0] == {"q": "a"}


def test_sample_keys_are_per_index_and_stable() -> None:
    sampler = Sampler(4, (Source("e", ({"q": "a"},)),), (LEVEL, TOPIC))
    keys = [sampler.sample_key(i, sampler.draw(i)) for i in range(100)]
    assert len(set(keys)) == 100
    assert keys == [
        Sampler(4, (Source("e", ({"q": "a"},)),), (LEVEL, TOPIC)).sample_key(i, sampler.draw(i))
        for i in range(100)
    ]
    assert all(len(k) == 32 for k in keys)


def test_raising_num_samples_keeps_earlier_samples(
    write: Callable[..., Path], load_spec: Callable[..., Spec], lower_spec: Callable[[Spec], Graph]
) -> None:
    path = write(
        """\
        num_samples: 10
        strategy_params:
          input_examples:
            - examples: [{q: one}, {q: two}, {q: three}]
          sampled_attributes:
            - id: level
              name: Level
              description: d
              possible_values:
                - {id: easy, name: Easy, description: e}
                - {id: hard, name: Hard, description: h}
        """,
        model=True,
    )
    small = lower_spec(load_spec(path)).sampler
    large_graph = lower_spec(load_spec(path, ["--num_samples", "50"]))
    assert large_graph.num_samples == 50
    large = large_graph.sampler
    for i in range(10):
        assert small.draw(i) == large.draw(i)
        assert small.sample_key(i, small.draw(i)) == large.sample_key(i, large.draw(i))


def test_seed_override_changes_draws(
    write: Callable[..., Path], load_spec: Callable[..., Spec], lower_spec: Callable[[Spec], Graph]
) -> None:
    path = write(
        """\
        strategy_params:
          sampled_attributes:
            - id: level
              name: Level
              description: d
              possible_values:
                - {id: easy, name: Easy, description: e}
                - {id: hard, name: Hard, description: h}
        """,
        model=True,
    )
    default = lower_spec(load_spec(path)).sampler
    seeded = lower_spec(load_spec(path, ["--seed", "99"])).sampler
    assert default.seed == 0 and seeded.seed == 99
    assert [default.draw(i)["level"].id for i in range(64)] != [
        seeded.draw(i)["level"].id for i in range(64)
    ]


def test_num_shots_draws_distinct_rows_per_sample_reproducibly() -> None:
    rows = tuple({"n": n} for n in range(6))
    sampler = Sampler(4, (Source("shots", rows, num_shots=3),), ())
    draws = [sampler.draw(i)["shots"] for i in range(50)]
    assert all(len(d) == 3 and len({r["n"] for r in d}) == 3 for d in draws)
    assert len({tuple(r["n"] for r in d) for d in draws}) > 10  # samples differ
    again = Sampler(4, (Source("shots", rows, num_shots=3),), ())
    assert [again.draw(i)["shots"] for i in range(50)] == draws
    assert Sampler(4, (Source("shots", rows[:2], num_shots=3),), ()).draw(0)["shots"] != []
