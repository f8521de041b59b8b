"""The collector's /healthz, /readyz and Prometheus /metrics on a small stdlib HTTP server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.histo import COMMIT_BUCKETS, DEAD_CLASSES, LATENCY_BUCKETS, Buckets, empty

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
    dead_reasons: Mapping[str, int] = field(default_factory=dict)  # dead letters by class
    latency: Buckets = field(default_factory=lambda: empty(LATENCY_BUCKETS))
    commit: Buckets = field(default_factory=lambda: empty(COMMIT_BUCKETS))
    broker_cert_not_after: float | None = None  # Unix seconds, as the TLS handshake showed
    broker_ca_not_after: float | None = None  # the trusted CA that issued it

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
    reg.register(_Counts(s))
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
    gaps = Gauge("hourglass_collector_seq_gaps",
                 "Seq gaps of the fleet not filled yet, as of this collector's last gap scan:"
                 " open (asking the agents) and unfilled (given up, still asking)", ["state"],
                 registry=reg)
    for state, n in s.gaps.items():
        gaps.labels(state).set(n)
    if s.broker_cert_not_after is not None:
        Gauge("hourglass_collector_broker_cert_expiry_timestamp_seconds",
              "notAfter of the certificate the broker showed this collector in its last TLS "
              "handshake (absent without mqtts)", registry=reg).set(s.broker_cert_not_after)
    if s.broker_ca_not_after is not None:
        Gauge("hourglass_collector_broker_ca_expiry_timestamp_seconds",
              "notAfter of the CA in this collector's trust store (SSL_CERT_FILE) that issued "
              "the broker's certificate", registry=reg).set(s.broker_ca_not_after)
    return generate_latest(reg)


class _Counts(Collector):
    """The snapshot's running counts and histograms as Prometheus counter families."""

    def __init__(self, s: Snapshot) -> None:
        self.s = s

    def collect(self) -> list[Metric]:
        """Families built from the snapshot (they restart at 0 with the process)."""
        s = self.s
        return [
            _counter("hourglass_collector_messages", "Messages since start, by outcome: "
                     "accepted, duplicates (redelivered, stored once), dead (refused, kept "
                     "as dead letters), dropped (a dead letter the database refused too)",
                     "outcome", {k: s.totals.get(k, 0) for k in OUTCOMES}),
            *(_plain(f"hourglass_collector_{name}", doc, s.totals.get(key, 0))
              for key, (name, doc) in OTHER_TOTALS.items()),
            _counter("hourglass_collector_dead_letters", "Dead letters since start, by the "
                     "class of their reason (the sentence is in `hourglass collector "
                     "dead-letters`)", "reason",
                     {c: s.dead_reasons.get(c, 0) for c in DEAD_CLASSES}),
            _counter("hourglass_collector_silence_recoveries", "Resubscribes and reconnects "
                     "for a silent subscription since start", "action", s.recoveries),
            _counter("hourglass_collector_gap_scan", "Since start, by this collector's gap "
                     "scans: gaps found, seqs in them, resend requests sent, gaps filled, "
                     "gaps given up", "what", s.gap_totals),
            _histogram("hourglass_collector_publish_to_commit_seconds", "From a message's "
                       "envelope ts (the agent's clock) to the commit that stored it",
                       s.latency),
            _histogram("hourglass_collector_batch_commit_seconds", "One batch's store "
                       "transaction, first statement to commit", s.commit),
        ]


# The collector's running counts that are messages, and the others, each its own counter.
OUTCOMES = ("accepted", "duplicates", "dead", "dropped")
OTHER_TOTALS = {
    "rows": ("telemetry_rows", "Telemetry rows stored since start"),
    "incidents": ("incidents_opened", "Incidents opened since start"),
    "isolated_batches": ("isolated_batches", "Batches a message spoiled, stored one by one"),
    "upkeep_errors": ("upkeep_errors", "Upkeep steps (sweep, partitions, gaps) that failed"),
    "broker_wills": ("broker_wills", "Last wills relabelled as our own loss of the broker"),
}


def _plain(name: str, doc: str, n: int) -> Metric:
    """A counter family without labels."""
    family = CounterMetricFamily(name, doc)
    family.add_metric([], n)
    return family


def _counter(name: str, doc: str, label: str, values: Mapping[str, int]) -> Metric:
    """A counter family with one label."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, n in values.items():
        family.add_metric([key], n)
    return family


def _histogram(name: str, doc: str, b: Buckets) -> Metric:
    """A histogram family from cumulative bucket counts."""
    buckets = [(_le(bound), n) for bound, n in zip(b.bounds, b.cumulative, strict=False)]
    buckets.append(("+Inf", b.count))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=b.total)


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it."""
    return repr(float(bound))


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
