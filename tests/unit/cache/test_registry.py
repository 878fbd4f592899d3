"""registry: builds on one cache directory see each other; a dead build's registration is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthc.cache.registry import BUILDS, Registry

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="registrations need flock")


def _join(cache: Path) -> Registry:
    registry = Registry.join(cache)
    assert registry is not None
    return registry


def test_builds_see_each_other_and_their_acknowledgements(tmp_path: Path) -> None:
    first, second = _join(tmp_path), _join(tmp_path)
    try:
        assert first.id != second.id and first.id.startswith(f"{os.getpid()}-")
        assert first.peers() == {second.id: frozenset()}
        second.acknowledge(first.id)
        assert first.peers() == {second.id: frozenset({first.id})}
        assert second.is_live(first.id) and first.is_live(first.id)
    finally:
        second.leave()
    assert first.peers() == {}
    assert not first.is_live(second.id)
    first.leave()
    assert list((tmp_path / BUILDS).iterdir()) == []


def test_an_unlocked_registration_is_a_dead_build_and_is_removed(tmp_path: Path) -> None:
    registry = _join(tmp_path)
    try:
        dead = tmp_path / BUILDS / "999999-0badf00d"
        dead.write_text("")  # what a killed build leaves: the file, no lock
        assert not registry.is_live(dead.name)
        dead.write_text("")
        assert registry.peers() == {}
        assert not dead.exists()
    finally:
        registry.leave()


def test_a_sigkilled_build_stops_counting_at_once(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from synthc.cache.registry import Registry; "
        "r = Registry.join(Path(sys.argv[1])); print(r.id, flush=True); time.sleep(60)"
    )
    registry = _join(tmp_path)
    command = [sys.executable, "-c", code, str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            child_id = child.stdout.readline().strip()
            assert set(registry.peers()) == {child_id}
        finally:
            child.kill()
            child.wait()
    try:
        assert registry.peers() == {}
        assert not (tmp_path / BUILDS / child_id).exists()
    finally:
        registry.leave()


def test_is_live_refuses_names_that_are_not_registrations(tmp_path: Path) -> None:
    registry = _join(tmp_path)
    try:
        for name in ("", "../x", ".hidden", "a/b"):
            assert not registry.is_live(name)
    finally:
        registry.leave()
