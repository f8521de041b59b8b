"""The collector's /healthz, /readyz and Prometheus /metrics on a small stdlib HTTP server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    ready: bool | None = None  # None: judged from broker and database alone
    reasons: tuple[str, ...] = ()  # why not ready, each readable by an operator
    oldest_unacked_s: float = 0.0
    silent_s: float | None = None
    detection_paused: bool = False
    held_sites: tuple[str, ...] = ()
    recoveries: Mapping[str, int] = field(default_factory=dict)
    gaps: Mapping[str, int] = field(default_factory=dict)  # unsettled seq gaps by state
    gap_totals: Mapping[str, int] = field(default_factory=dict)  # this process's gap scans

    @property
    def is_ready(self) -> bool:
        """Ready to take work: the watchdog's verdict where there is one."""
        if self.ready is not None:
            return self.ready
        return self.broker_connected and self.database_ok

# The reasons /readyz can give, as metric labels: a label per reason, not per sentence.
REASONS = ("broker disconnected", "database unavailable", "oldest unacknowledged",
           "nothing heard", "connected, waiting", "starting")


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
    Gauge("hourglass_collector_ready", "1 when /readyz answers ready", registry=reg) \
        .set(int(s.is_ready))
    why = Gauge("hourglass_collector_not_ready", "1 for each reason /readyz is not ready",
                ["reason"], registry=reg)
    for reason in REASONS:
        why.labels(reason).set(int(any(r.startswith(reason) for r in s.reasons)))
    Gauge("hourglass_collector_oldest_unacked_seconds",
          "Age of the oldest message received and not yet acknowledged",
          registry=reg).set(s.oldest_unacked_s)
    Gauge("hourglass_collector_silent_seconds",
          "Seconds since anything, a canary included, arrived (-1 when not connected)",
          registry=reg).set(-1 if s.silent_s is None else s.silent_s)
    Gauge("hourglass_collector_detection_paused",
          "1 while host-down and facility detection wait for our own input to flow",
          registry=reg).set(int(s.detection_paused))
    Gauge("hourglass_collector_sites_silent",
          "Sites silent at once, taken for an input outage and not judged",
          registry=reg).set(len(s.held_sites))
    rec = Gauge("hourglass_collector_silence_recoveries",
                "Resubscribes and reconnects for a silent subscription since start", ["action"],
                registry=reg)
    for action, n in s.recoveries.items():
        rec.labels(action).set(n)
    gaps = Gauge("hourglass_collector_seq_gaps",
                 "Seq gaps of the fleet not filled yet, as of this collector's last gap scan:"
                 " open (asking the agents) and unfilled (given up, still asking)", ["state"],
                 registry=reg)
    for state, n in s.gaps.items():
        gaps.labels(state).set(n)
    scans = Gauge("hourglass_collector_gap_scan",
                  "Since start, by this collector's gap scans: gaps found, seqs in them, "
                  "resend requests sent, gaps filled, gaps given up", ["what"], registry=reg)
    for what, n in s.gap_totals.items():
        scans.labels(what).set(n)
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
                ready = s.is_ready
                why = "; ".join(s.reasons) or "waiting for the broker or the database"
                self._send(200 if ready else 503, b"ready\n" if ready else
                           f"not ready: {why}\n".encode(), "text/plain")
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
