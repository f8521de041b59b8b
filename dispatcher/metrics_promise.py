"""The promise's counters and histograms, computed from the database at scrape time.

Every dispatcher answers the same fleet-wide figures, whichever of them acted: the rows are
the record (an acknowledgement, a fired timer, a delivery), so a restart loses nothing and
two dispatchers never split one histogram between them. Prometheus sees each series once
per dispatcher; rules and the dashboard take `max without (instance)`. The rows these read
are never deleted, so each count only grows, as a counter must.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

# Minutes matter for people: an acknowledgement is due in 5 min, a promise is 60 min.
PEOPLE_BUCKETS = (60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0,
                  14400.0)
# A timer fires within one loop tick (1 s) of its due time when all is well.
LATE_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
# An email or webhook goes out in seconds; retries back off from 30 s to an hour.
DELIVERY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

CHANNELS = ("email", "webhook", "billing", "push")  # outbox.channel's CHECK
TIMER_KINDS = ("ack_timeout", "risk", "breach", "verify_timeout")  # timers.kind's CHECK

# Each query yields (label, seconds) rows; label '' where the histogram has none. date_part
# is float8 (extract's numeric made the bucket comparisons cost half the scrape, measured
# on 200,000 outbox rows).
ACK_SQL = ("SELECT '' AS label, date_part('epoch', acknowledged_at - dispatched_at) AS v"
           " FROM jobs WHERE acknowledged_at IS NOT NULL")
ARRIVE_SQL = ("SELECT '' AS label, date_part('epoch', min(j.on_site_at) - i.detected_at) AS v"
              " FROM incidents i JOIN jobs j ON j.incident_id = i.id"
              " WHERE j.on_site_at IS NOT NULL GROUP BY i.id, i.detected_at")
FIX_SQL = ("SELECT '' AS label, date_part('epoch', verified_at - detected_at) AS v"
           " FROM incidents WHERE verified_at IS NOT NULL")
LATE_SQL = ("SELECT kind AS label, greatest(0, date_part('epoch', fired_at - due_at)) AS v"
            " FROM timers WHERE fired_at IS NOT NULL")
DELIVERY_SQL = ("SELECT channel AS label, date_part('epoch', done_at - created_at) AS v"
                " FROM outbox WHERE state = 'sent'")


def families(conn: Any) -> list[Metric]:
    """The counters and histograms of the promise and its notifications."""
    return [
        _histogram(conn, "hourglass_jobs_time_to_acknowledge_seconds", "From a job's "
                   "dispatch to its technician's acknowledgement", ACK_SQL, PEOPLE_BUCKETS),
        _histogram(conn, "hourglass_incidents_time_to_arrive_seconds", "From detection to "
                   "the first technician on site", ARRIVE_SQL, PEOPLE_BUCKETS),
        _histogram(conn, "hourglass_incidents_time_to_fix_seconds", "From detection to the "
                   "verified fix (the SLA's fix time; pauses not left out)", FIX_SQL,
                   PEOPLE_BUCKETS),
        _histogram(conn, "hourglass_escalation_lateness_seconds", "How long after its due "
                   "time each timer (ack timeout, risk, breach, verify) fired", LATE_SQL,
                   LATE_BUCKETS, "kind", TIMER_KINDS),
        _histogram(conn, "hourglass_notification_delivery_seconds", "From a message "
                   "queued to its successful delivery, retries included", DELIVERY_SQL,
                   DELIVERY_BUCKETS, "channel", CHANNELS),
        *_counters(conn),
    ]


def _counters(conn: Any) -> list[Metric]:
    """Credits, promises kept, notifications and dead letters, all from their rows."""
    issued = CounterMetricFamily("hourglass_credits_issued", "Credits issued (the ledger)")
    amount = CounterMetricFamily("hourglass_credits_amount", "Sum of the credits issued",
                                 labels=["currency"])
    row = conn.execute("SELECT count(*) AS n FROM credits").fetchone()
    issued.add_metric([], row["n"])
    for r in conn.execute("SELECT currency, sum(amount)::float8 AS s FROM credits"
                          " GROUP BY currency"):
        amount.add_metric([r["currency"]], r["s"])
    promise = CounterMetricFamily("hourglass_promise", "Verified fixes, kept (by the deadline)"
                                  " or missed", labels=["outcome"])
    row = conn.execute("SELECT count(*) FILTER (WHERE verified_at <= deadline) AS kept,"
                       " count(*) FILTER (WHERE verified_at > deadline) AS missed"
                       " FROM incidents WHERE verified_at IS NOT NULL").fetchone()
    promise.add_metric(["kept"], row["kept"])
    promise.add_metric(["missed"], row["missed"])
    sent = CounterMetricFamily("hourglass_notifications", "Delivery attempts by channel and "
                               "outcome (sent, retry: failed and tried again, failed: given "
                               "up)", labels=["channel", "outcome"])
    counts = {(r["channel"], r["outcome"]): r["n"] for r in conn.execute(
        "SELECT o.channel, d.outcome, count(*) AS n FROM deliveries d"
        " JOIN outbox o ON o.id = d.outbox_id GROUP BY o.channel, d.outcome")}
    for channel in CHANNELS:  # every series present from the start, so rate() sees a rise
        for outcome in ("sent", "retry", "failed"):
            sent.add_metric([channel, outcome], counts.get((channel, outcome), 0))
    dead = CounterMetricFamily("hourglass_dead_letters", "Refused MQTT payloads stored, all "
                               "collectors (the table is never pruned)")
    row = conn.execute("SELECT count(*) AS n FROM dead_letters").fetchone()
    dead.add_metric([], row["n"])
    foreseen = CounterMetricFamily("hourglass_breaches_foreseen", "Dispatches whose predicted "
                                   "fix already landed past the deadline, told to the site "
                                   "manager at once")
    row = conn.execute("SELECT count(*) AS n FROM incident_events WHERE kind = 'escalated'"
                       " AND detail->>'step' = 'breach_foreseen'").fetchone()
    foreseen.add_metric([], row["n"])
    return [issued, amount, promise, sent, dead, foreseen]


def _histogram(conn: Any, name: str, doc: str, values_sql: str, bounds: Sequence[float],
               label: str | None = None, known: Sequence[str] = ("",)) -> Metric:
    """One histogram family, counted in one pass by the database; each known label value
    has its series, zero or not."""
    counts = ", ".join(f"count(*) FILTER (WHERE v <= {float(b)!r}) AS b{i}"
                       for i, b in enumerate(bounds))
    sql = (f"SELECT label, {counts}, count(*) AS n, coalesce(sum(v), 0)::float8 AS s"
           f" FROM ({values_sql} OFFSET 0) AS x GROUP BY label")  # OFFSET 0: v computed once
    family = HistogramMetricFamily(name, doc, labels=[label] if label else None)
    zero = {"n": 0, "s": 0.0, **{f"b{i}": 0 for i in range(len(bounds))}}
    found = {r["label"]: r for r in conn.execute(sql)}
    rows = [found.get(k, {"label": k, **zero}) for k in known]
    rows += [r for k, r in sorted(found.items()) if k not in known]
    for r in rows:
        buckets = [(repr(float(b)), r[f"b{i}"]) for i, b in enumerate(bounds)]
        buckets.append(("+Inf", r["n"]))
        family.add_metric([r["label"]] if label else [], buckets, r["s"])
    return family
