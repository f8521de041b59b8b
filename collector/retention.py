"""Telemetry partitions and retention: raw days ahead and dropped, roll-ups kept longer.

Plain PostgreSQL: raw telemetry (`telemetry_rows`, or the narrow `telemetry` table before
migration 019) is partitioned by day. Partitions are made a few days ahead; a day past
`retention_days` is rolled up into `telemetry_hourly_rows` and dropped in one
transaction, so each hour is either raw or rolled up, never both or neither. Roll-ups
live in monthly partitions, dropped past `rollup_days`. Nothing is deleted row by row.

TimescaleDB: chunks and the continuous aggregate are Timescale's; their retention
policies (jobs) are set to the same two figures.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

Conn = psycopg.Connection[tuple[Any, ...]]
PARTITION_LOCK = 0x68675F70617274  # "hg_part": collectors make and drop partitions in turn
ROLLUP = "telemetry_hourly_rows"

# One hour of a raw day partition, aggregated as the telemetry_hourly view does (UTC hours;
# the average in numeric, as migration 030 explains: float8's avg() overflows with 1e300)
_ROLL_UP = """
INSERT INTO telemetry_hourly_rows (bucket, host, component, metric, avg, min, max, n)
SELECT date_trunc('hour', r.time, 'UTC'), r.host, u.component, u.metric,
       avg(u.value::numeric)::float8, min(u.value), max(u.value), count(*)
FROM {part} r JOIN telemetry_sets s ON s.id = r.set_id
CROSS JOIN LATERAL (SELECT e.component, e.metric, telemetry_value(e.x, e.v, r.d, e.i) AS value
                    FROM unnest(s.components, s.metrics, r.v, r.x) WITH ORDINALITY
                         AS e(component, metric, v, x, i)) u
WHERE r.time >= %(a)s AND r.time < %(b)s
GROUP BY 1, 2, 3, 4
"""


def ensure_partitions(conn: Conn, now: datetime, retention_days: int,
                      rollup_days: int = 730, ahead_days: int = 3) -> None:
    """Raw partitions ahead, raw days past retention rolled up and dropped, old roll-ups
    dropped; on TimescaleDB, its retention jobs set to the same figures."""
    parent = _partitioned_parent(conn)
    if parent is None:
        timescale_retention(conn, retention_days, rollup_days)
        return
    today = now.astimezone(UTC).date()
    for offset in range(-1, ahead_days + 1):
        day = today + timedelta(days=offset)
        _make(conn, parent, f"{parent}_{day:%Y%m%d}", day, day + timedelta(days=1))
    cutoff = today - timedelta(days=retention_days)
    for name, day in _dated(conn, parent, 8):
        if day < cutoff:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
                if parent == "telemetry_rows" and _exists(conn, name):
                    _roll_up_day(conn, name, day)
                conn.execute(f"DROP TABLE IF EXISTS {name}")
    if _exists(conn, ROLLUP):
        month = today.replace(day=1)
        for start in (month, _next_month(month)):
            _make(conn, ROLLUP, f"{ROLLUP}_{start:%Y%m}", start, _next_month(start))
        oldest = today - timedelta(days=rollup_days)
        for name, start in _dated(conn, ROLLUP, 6):
            if _next_month(start) <= oldest:  # the whole month is past the roll-ups' retention
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
                    conn.execute(f"DROP TABLE IF EXISTS {name}")


def _roll_up_day(conn: Conn, part: str, day: date) -> None:
    """The day's hourly roll-up, an hour a statement (a day at 100k hosts is ~10^10 values)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for hour in range(24):
        a = start + timedelta(hours=hour)
        conn.execute(_ROLL_UP.format(part=part), {"a": a, "b": a + timedelta(hours=1)})


def _make(conn: Conn, parent: str, name: str, start: date, end: date) -> None:
    """One range partition, unless it exists (or its rows already sit in the default one)."""
    try:
        with conn.transaction():
            # IF NOT EXISTS is not safe against a second collector doing the same at once
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
            conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent}"
                         f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
    except psycopg.errors.CheckViolation:
        pass  # rows of that range already sit in the default partition; keep them there


def _dated(conn: Conn, parent: str, digits: int) -> list[tuple[str, date]]:
    """The parent's partitions named parent_YYYYMMDD (8 digits) or parent_YYYYMM (6)."""
    fmt = "%Y%m%d" if digits == 8 else "%Y%m"
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s"
        " AND c.relname ~ ('^' || %s || '_[0-9]{' || %s || '}$')",
        (parent, parent, digits)).fetchall()
    return [(r[0], datetime.strptime(r[0][-digits:], fmt).replace(tzinfo=UTC).date())
            for r in rows]


def _next_month(d: date) -> date:
    return (d.replace(day=1) + timedelta(days=32)).replace(day=1)


def _exists(conn: Conn, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def _partitioned_parent(conn: Conn) -> str | None:
    """The partitioned raw telemetry table of this database, or None (TimescaleDB)."""
    row = conn.execute(
        "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
        " WHERE c.relname IN ('telemetry_rows', 'telemetry')"
        " ORDER BY c.relname = 'telemetry_rows' DESC LIMIT 1").fetchone()
    return str(row[0]) if row else None


# Timescale's retention jobs, by the relation they drop chunks of: the hypertable, and
# the continuous aggregate's materialization hypertable (jobs name that one).
_TS_JOBS = """
SELECT j.hypertable_name, j.config->>'drop_after'
FROM timescaledb_information.jobs j
WHERE j.proc_name = 'policy_retention'
"""
_TS_CAGG = """
SELECT materialization_hypertable_name FROM timescaledb_information.continuous_aggregates
WHERE view_name = 'telemetry_hourly'
"""


def timescale_retention(conn: Conn, retention_days: int, rollup_days: int) -> None:
    """Set TimescaleDB's retention jobs to the configured days (no-op when they match or
    the extension is absent). Written for TimescaleDB 2.x; not run on this project's CI,
    which has no TimescaleDB (tests/collector/test_timescale.py runs where it is)."""
    if not _exists(conn, "timescaledb_information.jobs"):
        return
    cagg = conn.execute(_TS_CAGG).fetchone()
    jobs: dict[str, str] = dict(conn.execute(_TS_JOBS).fetchall())
    want = {"telemetry": (f"{retention_days} days", retention_days)}
    if cagg:
        want[str(cagg[0])] = (f"{rollup_days} days", rollup_days)
    for relation, (text, days) in want.items():
        if jobs.get(relation) == text:
            continue
        target = "telemetry" if relation == "telemetry" else "telemetry_hourly"
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
            conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (target,))
            conn.execute("SELECT add_retention_policy(%s, make_interval(days => %s))",
                         (target, days))
