"""Read a spec's example, dataset and document sources: a Spec in, the rows each source offers out.

Sources are read once, before lowering, so lowering can check placeholders
against the columns that really exist. Rows enter node keys only through
the prompts and sample values they produce, never through a file's path:
editing one row reruns only the samples that used it.

Datasets: ``.jsonl .json .csv .tsv .parquet .xlsx`` files and globs (``**``
included, matched in sorted order so every machine reads the same rows), and
``hf:NAME`` through the ``datasets`` library (a local dataset directory works
offline). ``attribute_map`` keeps only the mapped columns, renamed, as oumi does.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from synthc.compiler.sampling import Source, example_sources
from synthc.compiler.source import PathKey
from synthc.compiler.spec import DatasetSource, DocumentSource
from synthc.compiler.validate import Spec
from synthc.runtime.documents import document_rows
from synthc.runtime.files import resolve_files

SP: PathKey = ("strategy_params",)


def load_inputs(spec: Spec) -> tuple[Source, ...]:
    """Every source of ``spec`` in oumi's order: examples, datasets, then documents."""
    params = spec.config.strategy_params
    sources = example_sources(params.input_examples or ())
    for i, data in enumerate(params.input_data or ()):
        rows = _dataset_rows(spec, data, (*SP, "input_data", i))
        sources.append(Source(data.id or f"input_data[{i}]", rows, data.num_shots))
    for i, doc in enumerate(params.input_documents or ()):
        rows = document_rows(spec, doc, (*SP, "input_documents", i))
        sources.append(Source(_document_id(doc), rows, doc.num_shots))
    return tuple(sources)


def _document_id(doc: DocumentSource) -> str:
    return doc.segmentation_params.id if doc.segmentation_params else doc.id


def _dataset_rows(spec: Spec, data: DatasetSource, path: PathKey) -> tuple[dict[str, Any], ...]:
    if data.path.startswith("hf:"):
        rows = _hf_rows(spec, data, path)
    else:
        files = resolve_files(spec, data.path, path)
        rows = [row for file in files for row in _read_file(spec, file, path)]
    if not rows:
        raise spec.error(f"dataset {data.path} has no rows", *path, "path")
    if data.attribute_map:
        rows = [_mapped(spec, row, data.attribute_map, path, n) for n, row in enumerate(rows)]
    return tuple(rows)


def _mapped(
    spec: Spec, row: dict[str, Any], mapping: dict[str, str], path: PathKey, n: int
) -> dict[str, Any]:
    missing = [old for old in mapping if old not in row]
    if missing:
        raise spec.error(
            f"row {n} has no column {missing[0]!r} to map; columns: {', '.join(map(str, row))}",
            *path,
            "attribute_map",
            missing[0],
        )
    return {new: row[old] for old, new in mapping.items()}


def _read_file(spec: Spec, file: Path, path: PathKey) -> list[dict[str, Any]]:
    suffix = file.suffix.lower()
    try:
        rows: list[dict[str, Any]] = READERS[suffix](file)
    except KeyError:
        raise spec.error(
            f"cannot read {file.name}: expected .jsonl, .json, .csv, .tsv, .parquet or .xlsx",
            *path,
            "path",
        ) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise spec.error(f"cannot read {file}: {exc}", *path, "path") from None
    bad = next((n for n, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        raise spec.error(
            f"{file.name}: row {bad} is not an object with named columns", *path, "path"
        )
    return rows


def _jsonl(file: Path) -> list[Any]:
    with file.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _json(file: Path) -> list[Any]:
    data = json.loads(file.read_text(encoding="utf-8"))
    return data if isinstance(data, list) else [data]


def _delimited(delimiter: str) -> Any:
    def read(file: Path) -> list[Any]:
        with file.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter=delimiter))
        for n, row in enumerate(rows):
            if None in row:  # DictReader files surplus fields under None
                raise ValueError(f"row {n} (line {n + 2}) has more fields than the header")
        return rows

    return read


def _parquet(file: Path) -> list[Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("reading .parquet needs pyarrow: pip install pyarrow") from None
    try:
        rows: list[Any] = pq.read_table(file).to_pylist()
    except OSError:
        raise
    except Exception as exc:  # pyarrow's ArrowInvalid and kin for a damaged file
        raise ValueError(f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    return rows


def _xlsx(file: Path) -> list[Any]:
    try:
        import openpyxl
    except ImportError:
        raise ValueError("reading .xlsx needs openpyxl: pip install openpyxl") from None
    try:
        sheet = openpyxl.load_workbook(file, read_only=True, data_only=True).active
        values = list(sheet.iter_rows(values_only=True))
    except OSError:
        raise
    except Exception as exc:  # a damaged zip or workbook; openpyxl has no common base
        raise ValueError(f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    if not values:
        return []
    header = [str(h) for h in values[0]]
    return [
        dict(zip(header, row, strict=False))
        for row in values[1:]
        if any(v is not None for v in row)
    ]


READERS = {
    ".jsonl": _jsonl,
    ".json": _json,
    ".csv": _delimited(","),
    ".tsv": _delimited("\t"),
    ".parquet": _parquet,
    ".xlsx": _xlsx,
}


def _hf_rows(spec: Spec, data: DatasetSource, path: PathKey) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise spec.error(
            "hf: datasets need the datasets library: pip install datasets", *path, "path"
        ) from None
    name = data.path.removeprefix("hf:")
    local = (spec.path.resolve().parent / name) if not Path(name).is_absolute() else Path(name)
    source = str(local) if local.exists() else name
    try:
        loaded = datasets.load_dataset(
            source, split=data.hf_split or "train", revision=data.hf_revision
        )
    except Exception as exc:  # datasets raises many kinds; all mean "cannot load"
        raise spec.error(f"cannot load dataset {name!r}: {exc}", *path, "path") from None
    return [dict(row) for row in loaded]
