"""Build examples/geography_qa.yaml offline, against synthc's bundled loopback LLM server.

python examples/offline_demo.py          # first run: 20 requests
python examples/offline_demo.py          # second run: 0 requests, all cached
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import synthc
from synthc.testing import FakeLLMServer

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--workdir", type=Path, default=HERE, help="where the config, cache and output go"
    )
    workdir = parser.parse_args().workdir
    config = workdir / "geography_qa.yaml"
    if config != HERE / "geography_qa.yaml":
        shutil.copy(HERE / "geography_qa.yaml", config)
    with FakeLLMServer() as server:
        result = synthc.build(
            config,
            [
                "--inference_config.remote_params.api_url",
                server.url("/v1/messages"),
                "--inference_config.remote_params.api_key",
                "offline-demo",
                "--output_path",
                str(workdir / "geography_qa.jsonl"),
            ],
        )
        sent = server.count
    s = result.stats
    print(f"{s.nodes} nodes: {s.cached} cached, {s.generated} generated, {s.failed} failed")
    print(f"{sent} requests reached the server; {s.samples_written} rows in {result.output_path}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
