"""Prometheus metrics of the dispatcher, read from the database at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from dispatcher import metrics_promise
from dispatcher.service import auditor
from dispatcher.store import ingest as ingest_store

# The default risk lead (dispatcher.risk_lead_minutes): /metrics reads no configuration,
# and a gauge that meant a different thing per dispatcher could not be aggregated.
RISK_LEAD_MIN = 15


# Probe statuses that leave parts unwatched ('no_devices' is a host without such parts),
# and the probes that report them (agent/probes/coverage.py).
SHORT = ("tool_missing", "permission_denied", "no_answer")
COVERAGE_PROBES = ("smart", "ipmi")


class _Rows(Collector):
    """The counters and histograms metrics_promise reads from the rows."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def collect(self) -> list[Metric]:
        """Read at scrape time."""
        return metrics_promise.families(self.conn)


def render(conn: Any) -> str:
    """Current gauges in the Prometheus text format."""
    reg = CollectorRegistry()
    by_state = Gauge("hourglass_incidents", "Incidents by state", ["state"], registry=reg)
    for row in conn.execute("SELECT state, count(*) AS n FROM incidents GROUP BY state"):
        by_state.labels(row["state"]).set(row["n"])
    overdue = Gauge("hourglass_incidents_past_deadline",
                    "Open incidents whose deadline has passed", registry=reg)
    row = conn.execute("SELECT count(*) AS n FROM incidents WHERE state NOT IN"
                       " ('verified', 'closed') AND deadline < now()").fetchone()
    overdue.set(row["n"] if row else 0)
    reg.register(_Rows(conn))
    at_risk = Gauge("hourglass_incidents_at_risk", "Open incidents with no one on site within "
                    f"{RISK_LEAD_MIN} min of their deadline or past it", registry=reg)
    row = conn.execute("SELECT count(*) AS n FROM incidents WHERE state IN ('detected',"
                       " 'dispatched', 'acknowledged') AND deadline < now() + %s * interval"
                       " '1 minute'", (RISK_LEAD_MIN,)).fetchone()
    at_risk.set(row["n"] if row else 0)
    short = Gauge("hourglass_hosts_coverage_short", "Hosts whose agent cannot watch a kind of "
                  "part, by probe and why (their latest birth)", ["probe", "status"],
                  registry=reg)
    for probe in COVERAGE_PROBES:
        for status in SHORT:
            short.labels(probe, status).set(0)  # each series present, so alerts can clear
    for row in conn.execute("SELECT probe, status, count(*) AS n FROM probe_coverage"
                            " WHERE status = ANY(%s) GROUP BY probe, status", (list(SHORT),)):
        short.labels(row["probe"], row["status"]).set(row["n"])
    late = Gauge("hourglass_timers_overdue_seconds", "How far past its due time the oldest "
                 "timer not fired yet is (0 when none is due): a stuck dispatcher loop",
                 registry=reg)
    row = conn.execute("SELECT coalesce(extract(epoch FROM now() - min(due_at)), 0)::float8"
                       " AS s FROM timers WHERE fired_at IS NULL AND due_at < now()").fetchone()
    late.set(row["s"] if row else 0)
    audit = auditor.check(auditor.read_facts(conn), datetime.now(UTC))
    Gauge("hourglass_incidents_without_next_action", "Open incidents with no pending timer,"
          " no one assigned and no one told (must be 0)", registry=reg).set(len(audit.stranded))
    Gauge("hourglass_incidents_without_next_action_oldest_seconds", "Seconds since the last"
          " activity of the oldest incident without a next action (0 when none)",
          registry=reg).set(audit.oldest_s)
    ingest = ingest_store.read(conn, datetime.now(UTC))
    states = Gauge("hourglass_ingest_collectors", "Collectors by state (ready, not_ready, "
                   "silent: no word for 30 s)", ["state"], registry=reg)
    for state in ("ready", "not_ready", "silent"):
        states.labels(state).set(sum(c.state == state for c in ingest.collectors))
    Gauge("hourglass_ingest_ok", "1 when every collector reports ready (0 with none)",
          registry=reg).set(int(ingest.ok))
    gaps = Gauge("hourglass_ingest_seq_gaps", "Seq gaps of the last day: messages the broker "
                 "acknowledged and no collector stored; open (agents asked to resend), "
                 "unfilled (given up, an alert), filled (in the last 24 h)", ["state"],
                 registry=reg)
    gaps.labels("open").set(ingest.gaps.open)
    gaps.labels("unfilled").set(ingest.gaps.unfilled)
    gaps.labels("filled").set(ingest.gaps.filled_24h)
    Gauge("hourglass_ingest_missing_seqs", "Messages in open and unfilled seq gaps",
          registry=reg).set(ingest.gaps.missing_seqs)
    Gauge("hourglass_ingest_detection_paused", "Collectors whose host-down and facility "
          "detection wait for their own input", registry=reg).set(
              sum(c.detection_paused for c in ingest.collectors))
    return generate_latest(reg).decode()
