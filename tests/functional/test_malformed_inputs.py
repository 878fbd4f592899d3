"""Damaged or unusable input files stop the build with the config line that names them.

(A tool call to an unknown tool and a plan that is not JSON are not input errors: the
first is answered with an error the model sees, tests/functional/test_tool_use.py; the
second is retried, then fails its conversation until a run gets a plan, test_multiturn.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

CONFIG = """\
num_samples: 2
strategy_params:
  {section}:
    - path: {name}
{extra}  generated_attributes:
    - id: x
      instruction_messages:
        - {{role: USER, content: "Say {{{placeholder}}}"}}
inference_config: {{engine: OPENAI, model: {{model_name: gpt-4o-mini}}}}
"""

CASES = {  # file name: (its bytes, the expected message, the attribute_map line or "")
    "empty.jsonl": (b"", "dataset empty.jsonl has no rows", ""),
    "rows.jsonl": (
        b'{"a": 1, "b": 2}\n',
        "row 0 has no column 'zzz' to map; columns: a, b",
        "      attribute_map: {a: alpha, zzz: zeta}\n",
    ),
    "bad.jsonl": (b'{"a": 1}\n{broken\n', "Expecting property name enclosed in double quotes", ""),
    "bad.json": (b"[1, 2", "Expecting ',' delimiter", ""),
    "bad.csv": (b"a,b\n1,2,3\n", "row 0 (line 2) has more fields than the header", ""),
    "bad.parquet": (b"garbage", "not a readable Parquet file (ArrowInvalid", ""),
    "bad.xlsx": (b"garbage", "not a readable .xlsx workbook (BadZipFile", ""),
    "bad.pdf": (b"%PDF-1.4\ngarbage\n", "not a readable PDF (", ""),
    "bad.docx": (b"PK\x03\x04garbage", "not a readable DOCX (", ""),
}
NEEDS = {".parquet": "pyarrow", ".xlsx": "openpyxl", ".pdf": "pypdf", ".docx": "docx"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_damaged_input_file_is_a_located_error(name: str, tmp_path: Path) -> None:
    suffix = Path(name).suffix
    if suffix in NEEDS:
        pytest.importorskip(NEEDS[suffix], reason=f"{NEEDS[suffix]} is not installed")
    content, message, extra = CASES[name]
    (tmp_path / name).write_bytes(content)
    document = suffix in (".pdf", ".docx")
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.format(
            section="input_documents" if document else "input_data",
            name=name,
            extra=extra + ("      id: doc\n" if document else ""),
            placeholder="doc" if document else "alpha" if extra else "a",
        )
    )
    result = run_cli("build", str(config))
    assert result.exit_code == 2, result.stdout
    assert "Traceback" not in result.stderr
    line, col = (5, 33) if extra else (4, 7)
    assert result.stderr.startswith(f"error: {config}:{line}:{col}: "), result.stderr
    assert message in result.stderr
