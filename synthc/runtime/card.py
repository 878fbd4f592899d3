"""Describe a built dataset as a Hugging Face dataset card: a build's facts in, Markdown out.

The card is ``README.md``-shaped: YAML metadata (``configs`` naming the data file,
``dataset_info.features`` read from the rows, ``size_categories``, ``tags`` with
``synthetic``, ``task_categories``, ``pretty_name``) between ``---`` lines, then
the provenance a reader needs to trust or reproduce the data: the model, synthc's
version, the seed, the counts, the tokens every node of the dataset took (each
node once, whether this build or an earlier one paid for it) and what they cost
at the price table's rates, the config's digest and the config itself with
secret-looking values masked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import yaml

from synthc.core.redact import mask_line

SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)
DTYPES = {str: "string", bool: "bool", int: "int64", float: "float64"}


@dataclass(frozen=True)
class CardFacts:
    """What a card says of one build."""

    name: str  # the dataset's name (the output's stem)
    data_files: dict[str, str]  # config name → its rows, relative to the card ("default" first)
    rows: int
    num_samples: int
    samples_missing: int  # samples without a row: failed, or (an export) not built yet
    seed: int
    engine: str
    model: str
    identity: str  # what node keys hash for the model
    synthc_version: str
    config_name: str
    config_text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: the model's price is not in the table
    created: str  # ISO date


def card_text(facts: CardFacts, first_rows: dict[str, dict[str, Any]]) -> str:
    """The card for ``facts``; each config's features are read from its first row
    (``first_rows`` by config name; a config without one gets none)."""
    metadata: dict[str, Any] = {
        "pretty_name": facts.name,
        "configs": [
            {"config_name": name, "data_files": [{"split": "train", "path": path}]}
            for name, path in facts.data_files.items()
        ],
        "size_categories": [size_category(facts.rows)],
        "tags": ["synthetic", "synthc"],
        "task_categories": ["text-generation"],
    }
    info = [
        {"config_name": name, "features": features}
        for name in facts.data_files
        if (features := _features(first_rows.get(name)))
    ]
    if len(facts.data_files) == 1 and info:
        metadata["dataset_info"] = {"features": info[0]["features"]}
    elif info:
        metadata["dataset_info"] = info
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    cost = "unknown (the model is not in the price table)"
    if facts.cost_usd is not None:
        cost = f"${facts.cost_usd:,.4f} at list prices (input and output tokens as reported)"
    missing = f"{facts.samples_missing:,}"
    masked = "\n".join(mask_line(line) for line in facts.config_text.splitlines())
    digest = hashlib.sha256(facts.config_text.encode()).hexdigest()
    return f"""---
{front}---

# {facts.name}

Synthetic data made by synthc {facts.synthc_version} from the config
`{facts.config_name}` with `{facts.model}` ({facts.engine}).

| | |
| --- | --- |
| rows | {facts.rows:,} of {facts.num_samples:,} samples ({missing} failed or not built) |
| model | {facts.engine} `{facts.model}` (identity `{facts.identity}`) |
| seed | {facts.seed} |
| tokens | {facts.input_tokens:,} input, {facts.output_tokens:,} output |
| cost | {cost} |
| config digest | sha256 `{digest}` |
| built | {facts.created} with synthc {facts.synthc_version} |

Every row is reproducible: the same config and seed draw the same samples and
send the same requests, and `synthc build` with the cache that made it rewrites
the same bytes. Rows are model output: review them before training on them.

## Config

```{"yaml" if not facts.config_name.endswith(".synth") else ""}
{masked}
```
"""


def size_category(rows: int) -> str:
    """The Hub's size category for ``rows`` rows."""
    for bound, name in SIZE_CATEGORIES:
        if rows < bound:
            return name
    return "100M<n<1B"


def _features(row: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The Hub's feature list for rows shaped like ``row`` (a nested value by its first
    item)."""
    if not row:
        return []
    return [f for name, value in row.items() if (f := _feature(name, value)) is not None]


def _feature(name: str, value: Any) -> dict[str, Any] | None:
    shape = _shape(value)
    return None if shape is None else {"name": name, **shape}


def _shape(value: Any) -> dict[str, Any] | None:
    """``{"dtype": ...}``, ``{"struct": [...]}``, ``{"list": ...}`` or ``{"sequence":
    ...}`` for ``value``; None for what has no shape to give (empty, or null)."""
    for kind, dtype in DTYPES.items():
        if type(value) is kind:
            return {"dtype": dtype}
    if isinstance(value, dict):
        fields = [f for k, v in value.items() if (f := _feature(str(k), v)) is not None]
        return {"struct": fields} if fields else None
    if isinstance(value, list) and value:
        item = _shape(value[0])
        if item is None:
            return None
        if "struct" in item:
            return {"list": item["struct"]}
        if "dtype" in item:
            return {"sequence": item["dtype"]}
        return {"list": item}
    return None
