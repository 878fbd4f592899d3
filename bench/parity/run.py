"""Run the parity cases through oumi 0.9 and synthc against one loopback LLM server.

    .oumi/bin/python bench/parity/run.py [--only SUBSTR] [--keep DIR] [-v]

Prints one line per case (rows each tool wrote, and the verdict), a summary,
and with -v the first differing row pair or the error messages of each case
that is not "same", plus the warnings each tool logged. See README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")  # oumi reports usage home otherwise
os.environ.setdefault("TQDM_DISABLE", "1")  # oumi's progress bars

INSTALL = """\
oumi is not importable from this interpreter ({error}).
The parity harness runs oumi 0.9 and synthc in one virtualenv:

    python3 -m venv .oumi && . .oumi/bin/activate
    pip install uv
    printf 'torch==2.13.0\\ntorchvision; sys_platform == "never"\\n' > oumi-overrides.txt
    uv pip install --find-links "$(pip config get global.find-links)" \\
        --override oumi-overrides.txt "oumi[synthesis]==0.9"
    uv pip install -e .          # synthc, from the repository root

then run .oumi/bin/python bench/parity/run.py (see bench/parity/README.md)."""

SAME = ("same", "same (both refuse)", "same (shape)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        load_oumi()
    except ImportError as exc:
        print(INSTALL.format(error=exc), file=sys.stderr)
        return 2
    from cases import all_cases

    cases = [c for c in all_cases() if args.only is None or args.only in c.name]
    if not cases:
        print(f"no case name contains {args.only!r}", file=sys.stderr)
        return 1
    with workspace(args.keep) as root:
        results = run_all(cases, root)
    report(results, args.verbose)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="SUBSTR", help="run the cases whose name has SUBSTR")
    parser.add_argument("--keep", metavar="DIR", type=Path, help="keep configs and outputs here")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what differs")
    return parser.parse_args(argv)


def load_oumi() -> None:
    """Import oumi's synthesis stack (20-40 s), its import-time chatter swallowed."""
    import oumi

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        import oumi.core.synthesis.synthesis_pipeline
        import oumi.environments  # noqa: F401


@contextlib.contextmanager
def workspace(keep: Path | None) -> Any:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="synthc-parity-") as tmp:
        yield Path(tmp)


def run_all(cases: list[Any], root: Path) -> list[dict[str, Any]]:
    import echo
    import oumi_adapters
    from runners import Capture, quiet_logging

    from synthc.testing.server import FakeLLMServer

    capture = Capture()
    quiet_logging(capture)
    oumi_adapters.register()
    results = []
    with FakeLLMServer(reply=echo.reply, record=False) as server:
        for case in cases:
            started = time.monotonic()
            result = run_case(case, root / case.name, server, capture)
            results.append(result)
            oumi, synthc, verdict = result["oumi"], result["synthc"], result["verdict"]
            line = f"{case.name:<40} {len(oumi.rows):>4} {len(synthc.rows):>4}  {verdict.result}"
            print(f"{line}  ({time.monotonic() - started:.1f}s)", file=sys.stderr, flush=True)
    return results


def run_case(case: Any, case_dir: Path, server: Any, capture: Any) -> dict[str, Any]:
    """Both tools on one case, and the verdict; a harness failure is a verdict too."""
    from compare import Verdict, compare, draw_spec
    from runners import Outcome, describe, prepare, run_oumi, run_side, run_synthc

    oumi = synthc = Outcome()
    try:
        config_path, data = prepare(case, case_dir, server.url(api_path(case)))
        capture.take()
        oumi = run_side(run_oumi, config_path, capture, lambda: server.count)
        synthc = run_side(run_synthc, config_path, capture, lambda: server.count)
        if oumi.error and synthc.error:
            verdict = Verdict("same (both refuse)")
        elif oumi.error and case.deliberate:
            verdict = Verdict("deliberate", case.deliberate)
        elif oumi.error or synthc.error:
            verdict = Verdict("oumi error" if oumi.error else "synthc error")
        else:
            verdict = compare(case.mode, oumi.rows, synthc.rows, draw_spec(data, case_dir))
    except Exception as exc:  # a broken case must not stop the others
        verdict = Verdict("harness error", describe(exc))
    return {"case": case, "oumi": oumi, "synthc": synthc, "verdict": verdict}


def api_path(case: Any) -> str:
    from cases import PATHS

    return PATHS[case.api]


# --- the report ------------------------------------------------------------------------------


def report(results: list[dict[str, Any]], verbose: bool) -> None:
    width = max(len(r["case"].name) for r in results) + 2
    print(f"{'case':<{width}}{'mode':<7}{'api':<11}{'oumi rows':>10}{'synthc rows':>13}  result")
    print("-" * (width + 55))
    for r in results:
        case = r["case"]
        print(
            f"{case.name:<{width}}{case.mode:<7}{case.api:<11}"
            f"{len(r['oumi'].rows):>10}{len(r['synthc'].rows):>13}  {r['verdict'].result}"
        )
    same = sum(1 for r in results if r["verdict"].result in SAME)
    open_ = sum(1 for r in results if r["verdict"].result == "inconclusive")
    deliberate = sum(1 for r in results if r["verdict"].result == "deliberate")
    different = len(results) - same - open_ - deliberate
    tail = f", {open_} inconclusive" if open_ else ""
    print(
        f"\n{same} same, {deliberate} deliberate (oumi 0.9 refuses, synthc builds), "
        f"{different} different{tail} ({len(results)} cases)"
    )
    if verbose:
        print()
        for r in results:
            details(r)


def details(result: dict[str, Any]) -> None:
    case, verdict = result["case"], result["verdict"]
    oumi, synthc = result["oumi"], result["synthc"]
    if verdict.result == "same" and not (oumi.note or synthc.note):
        print(f"== {case.name}: same — {verdict.detail}")
        return
    detail = f" — {verdict.detail}" if verdict.detail else ""
    print(f"\n== {case.name}: {verdict.result}{detail}")
    if case.note:
        print(f"   note: {case.note}")
    print(f"   requests: oumi {oumi.requests}, synthc {synthc.requests}")
    for label, outcome in (("oumi", oumi), ("synthc", synthc)):
        if outcome.error:
            print(f"   {label} error: {outcome.error}")
        if outcome.note:
            print(f"   {label} note: {outcome.note}")
        for warning in outcome.warnings[:4]:
            print(f"   {label} warned: {clip(warning, 300)}")
    if verdict.pair is not None:
        show_pair(*verdict.pair)


def show_pair(oumi_row: Any, synthc_row: Any) -> None:
    """Each key the two rows disagree on, down to the first value that differs."""
    from compare import first_difference

    if not (isinstance(oumi_row, dict) and isinstance(synthc_row, dict)):
        print(f"   oumi:   {clip(dump(oumi_row), 600)}")
        print(f"   synthc: {clip(dump(synthc_row), 600)}")
        return
    keys = [k for k in {**oumi_row, **synthc_row} if oumi_row.get(k) != synthc_row.get(k)]
    print(f"   differing keys: {', '.join(keys)}")
    for key in keys:
        found = first_difference(
            {key: oumi_row.get(key, "<absent>")}, {key: synthc_row.get(key, "<absent>")}
        )
        if found:
            path, a, b = found
            print(f"   {path}:")
            print(f"      oumi   {clip(dump(a), 500)}")
            print(f"      synthc {clip(dump(b), 500)}")


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
