"""The collector's /healthz, /readyz and Prometheus /metrics on a small stdlib HTTP server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Gauge, generate_latest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What the collector reports about itself at one instant."""

    broker_connected: bool
    database_ok: bool
    queue_depth: int
    totals: Mapping[str, int]


def render(s: Snapshot) -> bytes:
    """The snapshot in the Prometheus text format."""
    reg = CollectorRegistry()
    Gauge("hourglass_collector_broker_connected", "1 when subscribed to the broker",
          registry=reg).set(int(s.broker_connected))
    Gauge("hourglass_collector_database_ok", "1 when the last database step succeeded",
          registry=reg).set(int(s.database_ok))
    Gauge("hourglass_collector_queue_depth", "Messages received, not yet committed",
          registry=reg).set(s.queue_depth)
    totals = Gauge("hourglass_collector_messages", "Messages since start, by outcome",
                   ["outcome"], registry=reg)
    for outcome, n in s.totals.items():
        totals.labels(outcome).set(n)
    return generate_latest(reg)


def serve(addr: str, snapshot: Callable[[], Snapshot]) -> ThreadingHTTPServer | None:
    """Serve health and metrics in a daemon thread; None (logged) if the address is taken."""
    host, _, port = addr.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            s = snapshot()
            if self.path == "/healthz":
                self._send(200, b"ok\n", "text/plain")
            elif self.path == "/readyz":
                ready = s.broker_connected and s.database_ok
                self._send(200 if ready else 503, (b"ready\n" if ready else
                           b"not ready: waiting for the broker or the database\n"), "text/plain")
            elif self.path == "/metrics":
                self._send(200, render(s), "text/plain; version=0.0.4")
            else:
                self._send(404, b"try /healthz, /readyz or /metrics\n", "text/plain")

        def _send(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes every few seconds are not worth a log line."""

    try:
        server = ThreadingHTTPServer((host, int(port)), Handler)
    except OSError as exc:
        log.warning("health/metrics endpoint not served: %s is taken (%s); set "
                    "HOURGLASS_COLLECTOR_HTTP_ADDR to a free address", addr, exc.strerror)
        return None
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("health and metrics on http://%s/", addr)
    return server
