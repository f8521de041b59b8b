"""Prometheus metrics of the dispatcher, read from the database at scrape time."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest


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
    credits = Gauge("hourglass_credits", "Credits issued", registry=reg)
    row = conn.execute("SELECT count(*) AS n FROM credits").fetchone()
    credits.set(row["n"] if row else 0)
    dead = Gauge("hourglass_dead_letters", "Refused MQTT payloads", registry=reg)
    row = conn.execute("SELECT count(*) AS n FROM dead_letters").fetchone()
    dead.set(row["n"] if row else 0)
    return generate_latest(reg).decode()
