"""Draw each sample's sampled attributes and example rows: (seed, sample index) in, values out.

Every draw is a pure function of (seed, sample index, attribute id), so raising
``num_samples`` leaves samples 0..n-1 alone and editing one attribute's values
leaves the other attributes' draws alone. Rates follow oumi: unset rates share
what the set ones leave, and all act as weights. A combination from
``combination_sampling`` is chosen with its rate, and such a sample holds exactly
the values it names, in its order (oumi 0.9 draws nothing else for it); an
ordinary draw that lands on a combination is redrawn, so each combination's
rate is exact.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from synthc.compiler.spec import ExampleSource
from synthc.compiler.template import SampledValue
from synthc.core.keys import NodeKey, derive_seed, node_key, unit_draw

MAX_REDRAWS = 100


@dataclass(frozen=True)
class Choice:
    """One sampled attribute: its values and their cumulative weights."""

    id: str
    values: tuple[SampledValue, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def build(cls, values: tuple[SampledValue, ...], weights: list[float]) -> Choice:
        return cls(values[0].attribute_id, values, tuple(accumulate(weights)))

    def pick(self, u: float) -> SampledValue:
        index = bisect_right(self.cumulative, u * self.cumulative[-1])
        return self.values[min(index, len(self.values) - 1)]

    def value(self, value_id: str) -> SampledValue:
        return next(v for v in self.values if v.id == value_id)


@dataclass(frozen=True)
class Combination:
    values: dict[str, str]  # attribute id → value id
    rate: float


@dataclass(frozen=True)
class Source:
    """The rows an example, dataset or document source offers. Each sample takes row
    ``i % len(rows)`` into its values, or, with ``num_shots`` above 1, a list of
    ``num_shots`` distinct rows under ``id``, drawn from (seed, i, id) like everything else."""

    id: str
    rows: tuple[dict[str, Any], ...]
    num_shots: int | None = None

    @property
    def sampled(self) -> bool:
        return self.num_shots is not None and self.num_shots > 1

    def take(self, seed: int, index: int, values: dict[str, Any]) -> None:
        if not self.sampled:
            values.update(self.rows[index % len(self.rows)])
            return
        rng = random.Random(derive_seed(seed, index, f"\x1dshots\x1f{self.id}"))
        picks = rng.sample(range(len(self.rows)), min(self.num_shots or 0, len(self.rows)))
        values[self.id] = [self.rows[j] for j in picks]


def example_sources(examples: Sequence[ExampleSource]) -> list[Source]:
    """The inline ``input_examples`` as sources (an unnamed one is ``input_examples[i]``)."""
    return [
        Source(s.id or f"input_examples[{i}]", tuple(s.examples), s.num_shots)
        for i, s in enumerate(examples)
    ]


@dataclass(frozen=True)
class Sampler:
    seed: int
    sources: tuple[Source, ...]  # examples, datasets, documents: in oumi's order
    choices: tuple[Choice, ...]
    combinations: tuple[Combination, ...] = ()

    def draw(self, index: int, seed: int | None = None) -> dict[str, Any]:
        """Sample ``index``'s source rows and sampled values, in oumi's column order;
        ``seed`` draws them from another seed (a slot's later attempt) than the config's."""
        seed = self.seed if seed is None else seed
        values: dict[str, Any] = {}
        for source in self.sources:
            source.take(seed, index, values)
        fixed = self._combination(seed, index)
        if fixed:
            choices = {c.id: c for c in self.choices}
            values.update((a, choices[a].value(v)) for a, v in fixed.items())
            return values
        for attempt in range(MAX_REDRAWS):
            drawn = {c.id: self._pick(c, seed, index, attempt) for c in self.choices}
            if not self._matches_combination(drawn):
                break
        values.update(drawn)
        return values

    def _pick(self, choice: Choice, seed: int, index: int, attempt: int) -> SampledValue:
        name = choice.id if attempt == 0 else f"{choice.id}\x1d{attempt}"
        return choice.pick(unit_draw(seed, index, name))

    def _combination(self, seed: int, index: int) -> dict[str, str]:
        total = sum(c.rate for c in self.combinations)
        if not self.combinations or total <= 0:
            return {}
        u = unit_draw(seed, index, "\x1dcombination")
        if u >= total:
            return {}
        bound = 0.0
        for combination in self.combinations:
            bound += combination.rate
            if u < bound:
                return combination.values
        return self.combinations[-1].values

    def _matches_combination(self, drawn: dict[str, SampledValue]) -> bool:
        return any(
            all(drawn[a].id == v for a, v in c.values.items() if a in drawn)
            for c in self.combinations
        )

    def sample_key(self, index: int, values: dict[str, Any], seed: int | None = None) -> NodeKey:
        """The key of sample ``index``: what was drawn for it and from what definitions."""
        drawn = {k: v.id if isinstance(v, SampledValue) else v for k, v in values.items()}
        seed = self.seed if seed is None else seed
        return node_key("sample", {"seed": seed, "index": index, "values": drawn})
