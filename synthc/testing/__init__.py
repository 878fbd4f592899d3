"""Test helpers for synthc and its users: a local fake LLM server that speaks the real APIs,
a stand-in of the Hugging Face Hub's upload endpoints (``FakeHub``), and real object
stores on 127.0.0.1 for team-cache tests (``LocalS3``: moto; ``LocalAzurite``).

Names load on first use, so ``python -m synthc.testing.server`` runs the server
module as a script without importing it twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthc.testing._wire import default_reply
    from synthc.testing.azurite import LocalAzurite
    from synthc.testing.hub import FakeHub
    from synthc.testing.s3 import LocalS3
    from synthc.testing.server import FakeLLMServer, Fault

__all__ = ["FakeHub", "FakeLLMServer", "Fault", "LocalAzurite", "LocalS3", "default_reply"]

_HOMES = {
    "FakeHub": "synthc.testing.hub",
    "FakeLLMServer": "synthc.testing.server",
    "Fault": "synthc.testing.server",
    "LocalAzurite": "synthc.testing.azurite",
    "LocalS3": "synthc.testing.s3",
    "default_reply": "synthc.testing._wire",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
