"""Document sources: .txt/.md/.html/.pdf/.docx read offline, token windows with the embedded
model's tokenizer, and editing one document reruns only the samples that used it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from synthc.testing.server import FakeLLMServer
from tests.conftest import build_and_count, run_cli

CONFIG = """\
num_samples: {samples}
output_path: out.jsonl
strategy_params:
  input_documents:
    - path: docs
      id: document
{segmentation}  generated_attributes:
    - id: summary
      instruction_messages:
        - {{role: USER, content: "Summarise: {{{field}}}"}}
inference_config:
  model: {{model_name: m}}
  engine: REMOTE
  generation: {{temperature: 0.7}}
"""


def _config(tmp_path: Path, samples: int, segmentation: str = "", field: str = "document") -> Path:
    config = tmp_path / "docs.yaml"
    config.write_text(CONFIG.format(samples=samples, segmentation=segmentation, field=field))
    return config


_build = build_and_count


def _rows(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


def write_pdf(path: Path, text: str) -> None:
    """A one-page PDF with ``text`` in Helvetica, written by hand (no PDF library needed)."""
    stream = f"BT /F1 18 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))


def write_docx(path: Path, paragraphs: list[str]) -> None:
    docx = pytest.importorskip("docx", reason="python-docx is not installed")
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))


def test_every_document_format_reads(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    pytest.importorskip("pypdf", reason="pypdf is not installed")
    docs = tmp_path / "docs"
    (docs / "nested").mkdir(parents=True)
    (docs / "a.txt").write_text("Plain text about rivers.")
    (docs / "b.md").write_text("# Heading\nMarkdown about lakes.")
    (docs / "c.html").write_text("<p>HTML about seas.</p>")
    write_pdf(docs / "nested" / "d.pdf", "Hello PDF world")
    write_docx(docs / "nested" / "e.docx", ["First paragraph.", "Second paragraph."])
    (docs / "ignored.bin").write_bytes(b"\x00\x01")
    assert _build(llm_server, _config(tmp_path, 5)) == 5
    texts = [row["document"] for row in _rows(tmp_path)]
    assert texts[:3] == [
        "Plain text about rivers.",
        "# Heading\nMarkdown about lakes.",
        "<p>HTML about seas.</p>",
    ]
    assert "Hello PDF world" in texts[3]
    assert texts[4] == "First paragraph.\nSecond paragraph."


SEGMENTATION = """\
      segmentation_params:
        id: passage
        tokenizer: smollm2
        segment_length: 16
        segment_overlap: 4
        keep_original_text: true
"""


def test_token_windows_with_the_embedded_tokenizer(
    llm_server: FakeLLMServer, tmp_path: Path
) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed")
    from synthc.runtime.documents import load_tokenizer

    docs = tmp_path / "docs"
    docs.mkdir()
    text = " ".join(f"Sentence number {i} talks about the ocean and its tides." for i in range(6))
    (docs / "long.txt").write_text(text)
    tokenizer = load_tokenizer("smollm2", str(tmp_path))
    tokens = tokenizer.encode(text, add_special_tokens=False)
    windows = math.ceil(len(tokens) / (16 - 4))
    assert _build(llm_server, _config(tmp_path, windows, SEGMENTATION, "passage")) == windows
    rows = _rows(tmp_path)
    assert all(row["document"] == text for row in rows)  # keep_original_text
    assert all(
        len(tokenizer.encode(row["passage"], add_special_tokens=False)) <= 17 for row in rows
    )
    assert rows[0]["passage"].startswith("Sentence number 0")
    assert len({row["passage"] for row in rows}) == windows


def test_a_tokenizer_that_needs_the_hub_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("text")
    segmentation = SEGMENTATION.replace("tokenizer: smollm2", "tokenizer: no-such-org/no-such-tok")
    result = run_cli("build", str(_config(tmp_path, 1, segmentation, "passage")))
    assert result.exit_code == 2
    assert "tokenizer 'no-such-org/no-such-tok' cannot be loaded offline" in result.stderr
    assert "use 'smollm2'" in result.stderr


def test_editing_one_document_reruns_only_its_samples(
    llm_server: FakeLLMServer, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in "abc":
        (docs / f"{name}.txt").write_text(f"Document {name}.")
    config = _config(tmp_path, 6)
    assert _build(llm_server, config) == 6
    (docs / "b.txt").write_text("Document b, revised.")
    assert _build(llm_server, config) == 2  # samples 1 and 4


def test_the_embedded_tokenizer_is_saved_once_and_loads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed")
    from synthc.runtime import documents

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    documents.load_tokenizer.cache_clear()  # loaded once per process otherwise
    first = documents.load_tokenizer("smollm2", str(tmp_path))
    saved = list((tmp_path / "cache" / "synthc" / "tokenizers").iterdir())
    assert len(saved) == 1 and (saved[0] / "tokenizer_config.json").is_file()
    documents.load_tokenizer.cache_clear()
    again = documents.load_tokenizer("smollm2", str(tmp_path))
    text = "Tides rise twice a day, and the ocean's edge moves with them."
    assert again is not first
    assert again.encode(text) == first.encode(text)
    documents.load_tokenizer.cache_clear()
