"""Errors synthc raises, and the source spans they point at.

    SynthError                      every error synthc raises on purpose
     ├── ConfigError                bad input: YAML, schema, overrides, templates
     │    └── (carries Diagnostics, each with an optional Span)
     ├── UnsupportedFeature         valid config that needs a later synthc
     ├── EngineError                a backend that cannot be set up
     ├── CacheError                 the cache directory cannot be used
     ├── BuildFailed                some nodes failed for good; the rest is saved
     └── BatchesPending             --no-wait: requests are still with the provider

    KeyboardInterrupt
     └── BuildInterrupted           Ctrl-C during a build, with how many answers were saved

User-facing errors render as ``file:line:col: message``, the source line and a
caret; no traceback reaches a user for bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from synthc.core.redact import mask_line


@dataclass(frozen=True)
class Span:
    """A place in a source file: 1-based line and column.

    Line 0 marks a place that is not in a file, such as a command-line
    override; it renders as the bare ``file`` text.
    """

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        if self.line == 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in the input, with where it is."""

    message: str
    span: Span | None = None

    def render(self, source: str | None = None) -> str:
        if self.span is None:
            return self.message
        text = f"{self.span}: {self.message}"
        line = _source_line(self.span, source)
        if line is not None:
            caret = " " * (self.span.col - 1) + "^"
            text += f"\n    {line}\n    {caret}"
        return text


def _source_line(span: Span, source: str | None) -> str | None:
    if span.line == 0:
        return None
    if source is None:
        try:
            source = Path(span.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    lines = source.splitlines()
    if 1 <= span.line <= len(lines):
        return mask_line(lines[span.line - 1].expandtabs(1))  # no secret rides along
    return None


class SynthError(Exception):
    """Base of every error synthc raises on purpose."""

    exit_code = 1

    def render(self) -> str:
        return str(self)


class ConfigError(SynthError):
    """The configuration is invalid; holds every problem found, not just the first."""

    exit_code = 2

    def __init__(
        self,
        diagnostics: Iterable[Diagnostic],
        source: str | None = None,
        source_file: str | None = None,
    ):
        self.diagnostics = tuple(diagnostics)
        self.source = source
        self.source_file = source_file  # the file ``source`` is the text of, when known
        super().__init__("; ".join(_one_line(d) for d in self.diagnostics))

    @classmethod
    def at(cls, message: str, span: Span | None = None) -> ConfigError:
        return cls([Diagnostic(message, span)])

    def with_source(self, source: str, source_file: str | None = None) -> ConfigError:
        """Attach the config text so rendering shows the offending line."""
        self.source, self.source_file = source, source_file
        return self

    def render(self) -> str:
        parts = [d.render(self._source_of(d)) for d in self.diagnostics]
        if len(parts) > 1:
            parts.append(f"{len(parts)} errors")
        return "\n".join(parts)

    def _source_of(self, d: Diagnostic) -> str | None:
        """The text ``d`` points into; None (read the file) when it is another file's."""
        elsewhere = self.source_file and d.span is not None and d.span.file != self.source_file
        return None if elsewhere else self.source


def _one_line(d: Diagnostic) -> str:
    return f"{d.span}: {d.message}" if d.span else d.message


class UnsupportedFeature(SynthError):
    """A valid configuration asks for something this synthc cannot run yet."""

    exit_code = 2

    def __init__(self, feature: str, span: Span | None):
        where = f" ({span})" if span else ""
        super().__init__(f"not supported yet: {feature}{where}")
        self.feature = feature
        self.span = span


class EngineError(SynthError):
    """An inference engine cannot be set up (missing library, bad endpoint, no key)."""

    exit_code = 2


class CacheError(SynthError):
    """The cache cannot be opened or written."""

    exit_code = 2


class ClusterError(SynthError):
    """A build spread over a cluster could not run: Ray is missing or unreachable, or a
    shard failed more often than it is retried. What the shards built is in the cache."""

    exit_code = 1


class BuildFailed(SynthError):
    """Some nodes failed for good; everything else was built and saved."""

    exit_code = 1

    def __init__(self, message: str, failed: int):
        super().__init__(message)
        self.failed = failed


class BatchesPending(SynthError):
    """A batch build told not to wait stopped with requests still at the provider; the
    same build again collects them. Not a failure: nothing is lost or paid twice."""

    exit_code = 0

    def __init__(self, requests: int, batch_ids: Sequence[str]):
        ids = ", ".join(batch_ids)
        super().__init__(f"{requests:,} requests are with the provider in batches {ids}")
        self.requests = requests
        self.batch_ids = list(batch_ids)


class BuildInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a build; ``saved`` new answers were written to the cache first."""

    def __init__(self, saved: int):
        super().__init__(saved)
        self.saved = saved
