"""synthc push: a build's rows, their messages and the dataset card to a Hub dataset repo.

huggingface_hub talks to a loopback stand-in of the Hub (``synthc.testing.hub``),
never the real one: the stand-in keeps the files each commit brought, the tokens
it was shown and any route it does not serve. The token comes from HF_TOKEN and
must never land in a file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import synthc
from synthc.testing.server import FakeLLMServer
from tests.conftest import REPO, pointed_at, run_cli

hub_library = pytest.importorskip("huggingface_hub", reason="huggingface_hub is not installed")
hub_constants = pytest.importorskip(
    "huggingface_hub.constants", reason="huggingface_hub is not installed"
)
from synthc.testing.hub import FakeHub  # noqa: E402 - needs aiohttp only, but is for the Hub

TOKEN = "hf_test_write_token_1234"
# huggingface_hub's own LFS upload calls an API it deprecated (not ours to fix).
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """A stand-in Hub, the environment pointing at it with a token, and huggingface_hub
    told not to use xet (its 1.x uploads take xet whenever hf_xet is installed)."""
    monkeypatch.setattr(hub_constants, "HF_HUB_DISABLE_XET", True)
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield fake


def _built(tmp_path: Path, server: FakeLLMServer, samples: int = 3) -> list[str]:
    shutil.copy(REPO / "examples" / "geography_qa.yaml", tmp_path / "geography_qa.yaml")
    command = [str(tmp_path / "geography_qa.yaml"), *pointed_at(server, "/v1/messages")]
    command += ["--num_samples", str(samples)]
    assert run_cli("build", *command).exit_code == 0
    return command


def test_push_uploads_what_hf_dir_exports_with_the_token_from_the_environment(
    tmp_path: Path, hub: FakeHub
) -> None:
    with FakeLLMServer() as server:
        command = _built(tmp_path, server)
        sent = server.count
        pushed = run_cli("push", command[0], "me/geo-qa", *command[1:], "--private")
        assert server.count == sent  # no LLM request
        exported = run_cli("export", *command, "--format", "hf-dir", "-o", str(tmp_path / "d"))
    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.stdout.startswith(
        "3 rows (rows and messages, dataset card) pushed to " + hub.url
    ), pushed.stdout
    assert exported.exit_code == 0
    folder = tmp_path / "d"
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.jsonl")}
    uploaded = hub.files("me/geo-qa")
    assert set(uploaded) == {"README.md", "data/train.jsonl", "messages/train.jsonl"}
    assert {p: uploaded[p] for p in ("data/train.jsonl", "messages/train.jsonl")} == {
        p: files[p] for p in ("data/train.jsonl", "messages/train.jsonl")
    }
    card = hub_library.DatasetCard(uploaded["README.md"].decode())
    assert card.data.to_dict()["configs"][1]["config_name"] == "messages"
    assert [(r.id, r.type, r.private) for r in hub.repos] == [("me/geo-qa", "dataset", True)]
    assert [c.message for c in hub.commits] == ["synthc: 3 rows"]
    assert hub.tokens == {TOKEN} and hub.unexpected == []
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in written if TOKEN.encode() in p.read_bytes()]  # stored nowhere


def test_a_second_push_after_a_bigger_build_commits_only_what_changed(
    tmp_path: Path, hub: FakeHub
) -> None:
    with FakeLLMServer() as server:
        command = _built(tmp_path, server)
        first = synthc.push(command[0], "me/geo-qa", command[1:], message="first")
        assert "3 rows to" in repr(first)
        again = synthc.push(command[0], "me/geo-qa", command[1:], message="unchanged")
        bigger = [*command[1:-1], "5"]
        assert run_cli("build", command[0], *bigger).exit_code == 0
        grown = synthc.push(command[0], "me/geo-qa", bigger, message="five rows")
    assert grown.exported.rows == 5 and again.pushed.repo_id == "me/geo-qa"
    assert hub.files("me/geo-qa")["data/train.jsonl"].count(b"\n") == 5
    changed = {path for _, path in hub.commits[-1].operations}
    # the card's date and counts and both data files changed; nothing else was sent
    assert changed == {"README.md", "data/train.jsonl", "messages/train.jsonl"}
    assert hub.commits[-1].message == "five rows"


def test_without_a_token_push_says_how_to_give_one_and_sends_nothing(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no login file there
    monkeypatch.setattr(hub_constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home/token"))
    with FakeLLMServer() as server:
        command = _built(tmp_path, server)
        result = run_cli("push", command[0], "me/geo-qa", *command[1:])
    assert result.exit_code == 1
    assert "no Hugging Face token: set HF_TOKEN" in result.stderr
    assert hub.count == 0


def test_push_needs_a_repo_id_and_names_a_malformed_one(tmp_path: Path, hub: FakeHub) -> None:
    with FakeLLMServer() as server:
        command = _built(tmp_path, server)
        missing = run_cli("push", command[0], *command[1:])
        malformed = run_cli("push", command[0], "not a repo!", *command[1:])
    assert missing.exit_code == 2 and "give the dataset's repo id" in missing.stderr
    assert malformed.exit_code == 1 and "cannot push to 'not a repo!'" in malformed.stderr
    assert hub.commits == []
