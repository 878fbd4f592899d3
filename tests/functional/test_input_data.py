"""Dataset sources and dynamic few-shot: every format, globs, attribute_map, hf: datasets,
num_shots, and incrementality by request counts (editing one row reruns only its samples)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from synthc.testing.server import FakeLLMServer
from tests.conftest import build_and_count, run_cli

CONFIG = """\
num_samples: {samples}
output_path: out.jsonl
strategy_params:
  input_data:
    - path: "{path}"
{extra}  generated_attributes:
    - id: reply
      instruction_messages:
        - {{role: USER, content: "{prompt}"}}
inference_config:
  model: {{model_name: m}}
  engine: REMOTE
  generation: {{temperature: 0.7}}
  remote_params: {{num_workers: 4}}
"""

ROWS = [{"city": f"City {i}", "country": f"Country {i}", "pop": i * 1000} for i in range(5)]


def _config(tmp_path: Path, path: str, prompt: str, samples: int = 10, extra: str = "") -> Path:
    config = tmp_path / "data.yaml"
    config.write_text(CONFIG.format(samples=samples, path=path, prompt=prompt, extra=extra))
    return config


_build = build_and_count


def _rows(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_editing_one_row_reruns_only_the_samples_that_used_it(
    llm_server: FakeLLMServer, tmp_path: Path
) -> None:
    _write_jsonl(tmp_path / "cities.jsonl", ROWS)
    config = _config(tmp_path, "cities.jsonl", "Describe {city} in {country}.")
    assert _build(llm_server, config) == 10
    assert [r["city"] for r in _rows(tmp_path)] == [f"City {i % 5}" for i in range(10)]
    edited = [dict(r) for r in ROWS]
    edited[2]["city"] = "Springfield"
    _write_jsonl(tmp_path / "cities.jsonl", edited)
    assert _build(llm_server, config) == 2  # samples 2 and 7 use row 2
    assert _build(llm_server, config) == 0


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".parquet", ".xlsx"])
def test_every_file_format(llm_server: FakeLLMServer, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"cities{suffix}"
    _write(path, ROWS)
    config = _config(tmp_path, path.name, "Describe {city}.", samples=5)
    assert _build(llm_server, config) == 5
    assert [r["city"] for r in _rows(tmp_path)] == [r["city"] for r in ROWS]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    if path.suffix in (".csv", ".tsv"):
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(
                handle, list(rows[0]), delimiter="," if path.suffix == ".csv" else "\t"
            )
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        import openpyxl

        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(list(rows[0]))
        for row in rows:
            sheet.append(list(row.values()))
        book.save(path)


def test_recursive_glob_in_sorted_order_and_attribute_map(
    llm_server: FakeLLMServer, tmp_path: Path
) -> None:
    _write_jsonl(tmp_path / "data" / "b" / "deep" / "two.jsonl", ROWS[2:])
    _write_jsonl(tmp_path / "data" / "a" / "one.jsonl", ROWS[:2])
    extra = "      attribute_map: {city: place}\n"
    config = _config(tmp_path, "data/**/*.jsonl", "Describe {place}.", samples=5, extra=extra)
    assert _build(llm_server, config) == 5
    rows = _rows(tmp_path)
    assert [r["place"] for r in rows] == [r["city"] for r in ROWS]
    assert all(list(r) == ["place", "reply"] for r in rows)  # only mapped columns are kept


def test_unknown_column_in_a_template_is_a_compile_error(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "cities.jsonl", ROWS)
    config = _config(tmp_path, "cities.jsonl", "Describe {town}.")
    result = run_cli("build", str(config))
    assert result.exit_code == 2
    assert (
        "{town}: undefined attribute 'town'; defined ids: city, country, pop, reply"
        in result.stderr
    )


def test_missing_file_names_the_config_line(tmp_path: Path) -> None:
    config = _config(tmp_path, "nowhere/*.jsonl", "Describe {city}.")
    result = run_cli("build", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {config}:5:7: no file matches 'nowhere/*.jsonl'")


def test_hf_dataset_from_a_local_directory(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    pytest.importorskip("datasets", reason="the datasets library is not installed")
    _write_jsonl(tmp_path / "local_hub" / "train.jsonl", ROWS)
    config = _config(tmp_path, "hf:local_hub", "Describe {city}.", samples=5)
    assert _build(llm_server, config) == 5
    assert [r["city"] for r in _rows(tmp_path)] == [r["city"] for r in ROWS]


SHOTS = """\
num_samples: 8
output_path: out.jsonl
seed: 3
strategy_params:
  input_examples:
    - id: shots
      num_shots: 2
      examples: EXAMPLES
  generated_attributes:
    - id: task
      instruction_messages:
        - {role: USER, content: "Like {shots[0].task} and {shots[1].task}, write a task."}
inference_config:
  model: {model_name: m}
  engine: REMOTE
  generation: {temperature: 0.7}
"""


def test_num_shots_draws_per_sample_and_editing_an_example_reruns_its_samples(
    llm_server: FakeLLMServer, tmp_path: Path
) -> None:
    tasks = [{"task": f"task {i}"} for i in range(6)]
    config = tmp_path / "shots.yaml"
    config.write_text(SHOTS.replace("EXAMPLES", json.dumps(tasks)))
    assert _build(llm_server, config) == 8
    rows = _rows(tmp_path)
    assert all(len(r["shots"]) == 2 and r["shots"][0] != r["shots"][1] for r in rows)
    users = sum(1 for r in rows if {"task": "task 4"} in r["shots"])
    tasks[4]["task"] = "task four"
    config.write_text(SHOTS.replace("EXAMPLES", json.dumps(tasks)))
    assert _build(llm_server, config) == users
