"""Broken .synth files beside the exact error each must give: file, line, column, the
source line with a caret, and what was expected in words; exit code 2, never a traceback.

To add a case, drop NAME.synth in bad_synth/ and write the message it must print to
NAME.expected.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

BAD = Path(__file__).resolve().parent / "bad_synth"
CASES = sorted(p.name.removesuffix(".synth") for p in BAD.glob("*.synth"))


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25
    assert all((BAD / f"{stem}.expected").exists() for stem in CASES)


@pytest.mark.parametrize("stem", CASES)
def test_broken_synth_gives_its_message(stem: str, tmp_path: Path) -> None:
    shutil.copy(BAD / f"{stem}.synth", tmp_path / f"{stem}.synth")
    result = run_cli("build", f"{stem}.synth")
    assert result.stderr == (BAD / f"{stem}.expected").read_text()
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: {stem}.synth:")  # file:line:col, then the line and caret
    assert result.stderr.rstrip("\n").splitlines()[-1].strip() == "^"
