"""A real S3-compatible server on 127.0.0.1 for tests and benchmarks: moto's standalone
server (``pip install 'moto[server]'``) in a background thread.

    with LocalS3() as s3:
        s3.make_bucket("team-cache")
        os.environ.update(s3.env())          # what a teammate's shell would export
        ... synthc build qa.yaml --remote-cache s3://team-cache/synthc

It speaks the S3 REST protocol over HTTP (moto checks no signatures, so the
credentials are placeholders), conditional writes included; ``stop`` makes it go
away mid-build. moto keeps buckets per process, not per server: each LocalS3 starts
empty, and two at once in one process would share them.
"""

from __future__ import annotations

import http.client
import logging

from synthc.testing._local import Stoppable

# moto does not check signatures, but treats a request with no Authorization at all as
# anonymous (an overwrite is then refused): any header of the right shape will do
_AUTH = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request"


class LocalS3(Stoppable):
    """moto's S3 server on a free loopback port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.host, self.port = "127.0.0.1", 0
        self.running = False

    def __enter__(self) -> LocalS3:
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        self.running = True
        # moto keeps its buckets in the process, whichever server made them: start empty
        self.request("POST", "/moto-api/reset")
        return self

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self, region: str = "us-east-1") -> dict[str, str]:
        """The environment an S3 client reads to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def make_bucket(self, name: str) -> None:
        status, body = self.request("PUT", f"/{name}")
        if status != 200:
            raise RuntimeError(f"cannot create bucket {name!r}: HTTP {status} {body[:200]!r}")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One plain HTTP request to the server (``/bucket/key``): its status and body."""
        return s3_request(self.endpoint, method, path, body)

    def stop(self) -> None:
        if self.running:
            self.running = False
            self._server.stop()


def s3_request(
    endpoint: str, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    """One plain HTTP request to the S3 server at ``endpoint`` (``http://host:port``) for
    ``path`` (``/bucket/key``): its status and body."""
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, body=body, headers={"Authorization": _AUTH})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
