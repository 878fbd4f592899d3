"""Broken configs live as files beside the exact error each must give: file, line, column,
the source line with a caret, and what was expected; exit code 2, never a traceback.

To add a case, drop NAME.yaml (and NAME.args for command-line overrides, one per
line) in bad/, and write the message it must print to NAME.expected.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

BAD = Path(__file__).resolve().parent / "bad"
CASES = sorted(p.name for p in BAD.glob("*.expected"))


def test_there_are_cases() -> None:
    assert len(CASES) >= 6


@pytest.mark.parametrize("expected", CASES)
def test_bad_input_gives_its_message(expected: str, tmp_path: Path) -> None:
    stem = expected.removesuffix(".expected")
    shutil.copy(BAD / f"{stem}.yaml", tmp_path / f"{stem}.yaml")
    args = BAD / f"{stem}.args"
    overrides = args.read_text().splitlines() if args.exists() else []
    result = run_cli("build", f"{stem}.yaml", *overrides)
    assert result.stderr == (BAD / expected).read_text()
    assert result.exit_code == 2
