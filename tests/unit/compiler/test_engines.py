"""engines: every engine of the enum has one row of facts, and the rows hang together."""

from __future__ import annotations

import json

import pytest

from synthc.compiler.engines import ENGINES, Engine, Wire
from synthc.core.keys import canonical_json

IN_PROCESS = {Wire.LLAMACPP, Wire.TRANSFORMERS, Wire.VLLM}


def test_every_engine_has_a_row() -> None:
    assert set(ENGINES) == set(Engine)


@pytest.mark.parametrize("engine", list(Engine))
def test_local_rows_say_what_to_install(engine: Engine) -> None:
    facts = ENGINES[engine]
    assert facts.local is (facts.wire in IN_PROCESS)
    if facts.local:
        assert facts.modules and facts.install and facts.label
        assert facts.api_url is facts.api_key_env is None and not facts.key_required
    else:
        assert not facts.modules and facts.install is facts.label is facts.default_rank is None


@pytest.mark.parametrize("engine", list(Engine))
def test_only_engines_synthc_cannot_run_lack_a_backend(engine: Engine) -> None:
    facts = ENGINES[engine]
    assert (facts.backend is None) is (facts.unsupported is not None)
    if facts.backend is not None:
        assert facts.backend.startswith("synthc.runtime.backends.") and ":" in facts.backend


def test_the_embedded_model_prefers_llamacpp_then_transformers() -> None:
    ranked = sorted((f.default_rank, e) for e, f in ENGINES.items() if f.default_rank)
    assert [e for _, e in ranked] == [Engine.LLAMACPP, Engine.NATIVE]


def test_engines_without_tool_calling() -> None:
    assert {e for e, f in ENGINES.items() if not f.tools} == {Engine.LLAMACPP, Engine.NATIVE}


@pytest.mark.parametrize("engine", list(Engine))
def test_every_spelling_of_an_engine_parses(engine: Engine) -> None:
    for spelling in (engine.name, engine.value, engine.name.lower(), engine.value.title()):
        assert Engine(spelling) is engine


def test_an_engine_reads_as_its_name_and_keeps_oumis_value() -> None:
    gemini = Engine.GOOGLE_GEMINI
    assert gemini.value == "GEMINI"  # what oumi and the .synth formatter write
    assert gemini == "GOOGLE_GEMINI" and str(gemini) == f"{gemini}" == "GOOGLE_GEMINI"
    assert canonical_json({"engine": gemini}) == b'{"engine":"GOOGLE_GEMINI"}'  # node keys
    assert json.loads(json.dumps([gemini])) == ["GOOGLE_GEMINI"]
    assert ENGINES["GOOGLE_GEMINI"] is ENGINES[gemini]
