"""Helpers of the customer self-service tests (API and page): telemetry written by the
collector's own decoder and batch writer, and a local webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import psycopg
import pytest

from collector import store
from collector.decode import decode
from collector.model import Message, Received
from tests.conftest import free_port

Conn = psycopg.Connection[tuple[Any, ...]]


def write_readings(conn: Conn, host: str, component: str, metric: str,
                   series: list[tuple[datetime, float]], seq0: int) -> None:
    """Telemetry messages through the collector's decoder and batch writer, one per point."""
    store.ensure_partitions(conn, datetime.now(UTC), 30)
    batch: list[Message] = []
    for n, (at, value) in enumerate(series):
        payload = json.dumps({
            "v": 1, "kind": "telemetry", "host": host, "site": "iad1", "seq": seq0 + n,
            "ts": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "interval_s": 30,
            "readings": [{"component": component, "metric": metric, "value": value}],
            "components": []}).encode()
        msg = decode(Received(f"hg/v1/iad1/{host}/telemetry", payload, seq0 + n, 1, at))
        assert isinstance(msg, Message), msg
        batch.append(msg)
    store.write_batch(conn, store.Directory(), batch, [])


class Hook(BaseHTTPRequestHandler):
    """A webhook receiver: keeps each body posted to it."""

    got: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 -- http.server's name
        """Keep the body, answer 204."""
        n = int(self.headers.get("Content-Length", "0"))
        Hook.got.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    """A local webhook receiver on a free port."""
    server = HTTPServer(("127.0.0.1", free_port()), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
