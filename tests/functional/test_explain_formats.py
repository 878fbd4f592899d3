"""explain's formats from the real CLI: JSON against its published schema, DOT through
Graphviz, and the HTML page in headless Chromium (Debian's ``chromium`` and ``graphviz``).

One scenario, built once against a loopback server: explain before any build,
build, explain again (all cached), then edit a template and grow num_samples so
that nodes run, wait on an upstream, and carry reasons.
"""

from __future__ import annotations

import html.parser
import json
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from synthc.planning.formats.dot import to_dot
from synthc.planning.formats.html import to_html
from synthc.testing.server import FakeLLMServer
from tests.conftest import REPO, run_cli

SCHEMA = json.loads((REPO / "docs" / "explain.schema.json").read_text(encoding="utf-8"))
DOT = shutil.which("dot") or "/usr/bin/dot"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
needs_dot = pytest.mark.skipif(
    not Path(DOT).exists(), reason="Graphviz `dot` not installed (apt-get install graphviz)"
)
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="`chromium` not installed (apt-get install chromium)"
)

CONFIG = """\
num_samples: 10
output_path: qa.jsonl
seed: 3
strategy_params:
  input_examples:
    - examples:
      - {style: "terse"}
  sampled_attributes:
    - id: topic
      name: Topic
      description: What the question is about
      possible_values:
        - {id: rivers, name: Rivers, description: Rivers of the world}
        - {id: deserts, name: Déserts, description: "Hot & cold <deserts>"}
  generated_attributes:
    - id: question
      instruction_messages:
        - {role: SYSTEM, content: "You write {style} quiz questions."}
        - {role: USER, content: "Write one question about {topic}."}
      postprocessing_params: {id: clean_question, strip_whitespace: true}
    - id: answer
      instruction_messages:
        - {role: USER, content: "Answer: {question}"}
  transformed_attributes:
    - id: conversation
      transformation_strategy:
        type: CHAT
        chat_transform:
          messages:
            - {role: USER, content: "{question}"}
            - {role: ASSISTANT, content: "{answer}"}
inference_config:
  model: {model_name: quiz-model}
  engine: OPENAI
  generation: {temperature: 0.7, max_new_tokens: 32}
  remote_params: {num_workers: 4, api_key: sk-test}
"""


EMPTY: dict[str, Any] = {  # the smallest valid document
    "schema_version": 1,
    "model": {"engine": "OPENAI", "name": "m", "identity": "m"},
    "num_samples": 0,
    "rules": [],
    "totals": {"cached": 0, "run": 0, "blocked": 0, "failed": 0, "nodes": 0},
    "estimate": {
        "requests": 0,
        "input_tokens": 0,
        "output_tokens_max": 0,
        "cost_usd_max": None,
        "batch": False,
    },
    "nodes": [],
    "nodes_omitted": 0,
}


@dataclass
class Scenario:
    config: Path
    cache: Path
    json: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage → explain JSON

    def explain(self, *args: str) -> str:
        result = run_cli("explain", str(self.config), "--cache-dir", str(self.cache), *args)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    def explain_json(self, *args: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.explain("--format", "json", *args))
        return data


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("explain")
    config = root / "qa.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    s = Scenario(config, root / "cache")
    s.json["before"] = s.explain_json()
    with FakeLLMServer() as server:
        url = server.url("/v1/chat/completions")
        result = run_cli(
            "build", str(config), "--cache-dir", str(s.cache),
            "--inference_config.remote_params.api_url", url,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert server.count == 20
    s.json["built"] = s.explain_json()
    config.write_text(CONFIG.replace("Write one question", "Write one hard question"))
    s.json["edited"] = s.explain_json("--num_samples", "12")
    s.json["capped"] = s.explain_json("--num_samples", "40")
    yield s


def _validate(data: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)


# --- JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["before", "built", "edited", "capped"])
def test_json_validates_against_the_published_schema(scenario: Scenario, stage: str) -> None:
    _validate(scenario.json[stage])


def test_json_stages_say_what_the_build_would_do(scenario: Scenario) -> None:
    before, built, edited = (scenario.json[k] for k in ("before", "built", "edited"))
    assert before["totals"] == {"cached": 0, "run": 10, "blocked": 10, "failed": 0, "nodes": 20}
    assert {r["check"] for n in before["nodes"] for r in n["reasons"]} == {"new"}
    assert built["totals"]["run"] == built["totals"]["blocked"] == 0 and built["nodes"] == []
    assert edited["totals"] == {"cached": 0, "run": 12, "blocked": 12, "failed": 0, "nodes": 24}
    checks = {r["check"] for n in edited["nodes"] for r in n["reasons"]}
    assert {"new", "modified.template", "modified.upstream"} <= checks
    assert [r["id"] for r in edited["rules"]] == [
        "question",
        "clean_question",
        "answer",
        "conversation",
    ]
    capped = scenario.json["capped"]
    assert len(capped["nodes"]) == 50 and capped["nodes_omitted"] == 30


def test_schema_is_strict() -> None:
    data = EMPTY
    _validate(data)
    for bad in (
        {**data, "extra": 1},
        {**data, "schema_version": 2},
        {**data, "rules": [{"id": "a", "kind": "generated", "deps": []}]},
        {**data, "nodes": [{"id": "a[0]", "rule": "a", "sample": 0, "status": "cached",
                            "key": None, "reasons": [{"check": "new", "detail": ""}]}]},
    ):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            _validate(bad)


# --- DOT ----------------------------------------------------------------------------------


def _dot_svg(source: str, tmp_path: Path) -> str:
    path = tmp_path / "graph.dot"
    path.write_text(source, encoding="utf-8")
    done = subprocess.run(
        [DOT, "-Tsvg", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return html.unescape(done.stdout)


@needs_dot
@pytest.mark.parametrize("nodes", [False, True])
def test_dot_output_is_accepted_by_graphviz(
    scenario: Scenario, tmp_path: Path, nodes: bool
) -> None:
    source = scenario.explain("--format", "dot", "--num_samples", "12", *(["--nodes"] * nodes))
    svg = _dot_svg(source, tmp_path)
    for name in ("question", "clean_question", "answer", "conversation", "topic", "style"):
        assert f">{name}<" in svg
    assert ("question[11]" in svg) is nodes
    assert "run 12" in svg


@needs_dot
def test_dot_escapes_every_label(tmp_path: Path) -> None:
    data = _awkward_data()
    _validate(data)
    svg = _dot_svg(to_dot(data, nodes=True), tmp_path)
    assert data["rules"][0]["id"].split("\n")[0] in svg  # a newline becomes a line break
    assert 'in "put\\ é 日本' in svg and "x\\x01y" in svg and "&amp;<b>" in svg


# --- HTML ---------------------------------------------------------------------------------


WATCH = ("shown-count", "total-run", "estimate-requests")


class _Page(html.parser.HTMLParser):
    """What a test needs from a DOM dump: rows, graph boxes, script bodies, texts by id."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.boxes: list[str] = []
        self.scripts: list[str] = []
        self.texts: dict[str, str] = {}  # id → text, for elements in WATCH
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "tr" and "node-row" in classes:
            self.rows.append(a)
        if tag == "g" and "rule-box" in classes:
            self.boxes.append(a.get("data-rule") or "")
        self._in = "script" if tag == "script" else a.get("id") if a.get("id") in WATCH else None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in is not None:
            self.texts[self._in] = self.texts.get(self._in, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def visible(self) -> list[dict[str, str | None]]:
        return [row for row in self.rows if "hidden" not in row]


def _chromium(profile: Path, *args: str) -> str:
    done = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def page(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "explain.html"
    scenario.explain("--format", "html", "--num_samples", "12", "-o", str(path))
    return path


def test_html_embeds_the_data_and_loads_nothing(scenario: Scenario, page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    parsed = _Page(text)
    assert json.loads(parsed.scripts[0]) == scenario.json["edited"]
    for needle in ("http://", "https://", "src=", "<link", "@import", "url(http"):
        assert needle not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_html_escapes_text_and_the_embedded_json() -> None:
    data = _awkward_data()
    data["nodes"][0]["reasons"][0]["detail"] = "</script><script>alert(1)</script>\u2028"
    parsed = _Page(to_html(data))
    assert len(parsed.scripts) == 2 and "alert" not in parsed.scripts[1]
    assert json.loads(parsed.scripts[0]) == data
    assert parsed.boxes == [data["rules"][0]["id"]]


@needs_chromium
def test_html_renders_in_chromium_and_filters_by_status(page: Path, tmp_path: Path) -> None:
    url = page.as_uri()
    everything = _Page(_chromium(tmp_path / "p1", "--dump-dom", url))
    assert everything.boxes == ["question", "clean_question", "answer", "conversation"]
    assert len(everything.visible()) == len(everything.rows) == 24
    assert everything.texts["shown-count"] == "24 of 24 listed nodes shown"

    running = _Page(_chromium(tmp_path / "p2", "--dump-dom", url + "#status=run"))
    assert len(running.rows) == 24
    assert {r["data-status"] for r in running.visible()} == {"run"}
    assert len(running.visible()) == 12
    assert running.texts["shown-count"] == "12 of 24 listed nodes shown"

    new_blocked = _Page(
        _chromium(tmp_path / "p3", "--dump-dom", url + "#status=blocked&reason=new")
    )
    assert [r["data-rule"] for r in new_blocked.visible()] == ["answer", "answer"]


@needs_chromium
def test_html_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    _chromium(tmp_path / "profile", f"--screenshot={shot}", page.as_uri())
    width, height, colours = _png_colours(shot.read_bytes())
    assert (width, height) == (1280, 1000)
    assert colours > 20  # text, boxes in four status colours, the table: far from one colour


def _png_colours(png: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct pixel colours of an 8-bit RGB(A) PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    bpp = 3 if colour_type == 2 else 4
    rows = _unfilter(zlib.decompress(idat), width * bpp, height, bpp)
    pixels = {bytes(row[i : i + bpp]) for row in rows for i in range(0, len(row), bpp)}
    return width, height, len(pixels)


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytearray]:
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 2:  # "up", the commonest: no dependency along the row
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind != 0:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                corner = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _predict(kind, left, previous[i], corner)) & 0xFF
        rows.append(line)
        previous = line
    return rows


def _predict(kind: int, left: int, up: int, corner: int) -> int:
    """PNG filters 1 (sub), 3 (average) and 4 (Paeth); 0 and 2 never reach here."""
    if kind in (1, 3):
        return left if kind == 1 else (left + up) // 2
    p = left + up - corner
    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
    return left if pa <= pb and pa <= pc else up if pb <= pc else corner


def _awkward_data() -> dict[str, Any]:
    """Explain JSON whose every name needs escaping somewhere."""
    rule = 'q"uo\\te\nnl é 日本 &amp;<b>'
    counts = {"cached": 0, "run": 1, "blocked": 0, "failed": 0}
    return {
        **EMPTY,
        "model": {"engine": "OPENAI", "name": 'm"\\x', "identity": 'm"\\x'},
        "num_samples": 1,
        "rules": [
            {"id": rule, "kind": "generated", "deps": ['in "put\\ é 日本', "x\x01y"],
             "counts": counts, "failed_last_time": 0},
        ],
        "totals": {**counts, "nodes": 1},
        "nodes": [
            {"id": f"{rule}[0]", "rule": rule, "sample": 0, "status": "run", "key": "0" * 32,
             "reasons": [{"check": "new", "detail": "d"}]},
        ],
        "nodes_omitted": 3,
    }  # fmt: skip
