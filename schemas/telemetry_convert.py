"""Moves narrow telemetry rows into the wide layout of migration 019, batched and resumable.

`hourglass db migrate` runs it after the SQL files, every time: it does nothing once
`telemetry_narrow` is gone. Each batch (one time range of `step`) is one transaction
that deletes the narrow rows and inserts their wide rows, so a batch is moved whole or
not at all: a migrate stopped at any point and run again continues where it stopped,
and the `telemetry` view, which reads both tables until the end, never shows a value
twice or misses one. A message's readings are grouped by (time, host) and ordered by
(component, metric, value); values go where float4 holds them exactly, else to `x`.
An emptied narrow partition is dropped; the last batch drops the narrow table and
redefines the view over the wide rows alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]
STEP = timedelta(hours=6)  # about 30 M narrow rows a batch at 10,000 hosts

# float4 holds v exactly: finite within its normal range, and equal once cast back
# (CASE first, so the cast never sees a value it would refuse as out of range)
FITS = ("CASE WHEN e.v = 'NaN' OR e.v IN ('Infinity', '-Infinity') OR e.v = 0 THEN true"
         " WHEN abs(e.v) > 3.4028234663852886e38 OR abs(e.v) < 1.1754943508222875e-38"
         " THEN false ELSE e.v::real::double precision = e.v END")

_BATCH = """
CREATE TEMP TABLE telemetry_batch ON COMMIT DROP AS
WITH moved AS (DELETE FROM telemetry_narrow WHERE time >= %(a)s AND time < %(b)s RETURNING *)
SELECT time, host_id,
       array_agg(component ORDER BY component, metric, value) AS c,
       array_agg(metric ORDER BY component, metric, value) AS m,
       array_agg(value ORDER BY component, metric, value) AS vals,
       sha256(string_agg(convert_to(component, 'UTF8') || '\\x00'::bytea
                         || convert_to(metric, 'UTF8') || '\\x00'::bytea, ''::bytea
                         ORDER BY component, metric, value)) AS digest
FROM moved GROUP BY time, host_id
"""
_IDS = ("""
INSERT INTO telemetry_hosts (host_id) SELECT DISTINCT host_id FROM telemetry_batch ORDER BY 1
ON CONFLICT DO NOTHING
""", """
INSERT INTO telemetry_sets (digest, components, metrics)
SELECT DISTINCT ON (digest) digest, c, m FROM telemetry_batch ORDER BY digest
ON CONFLICT DO NOTHING
""")
_ROWS = f"""
INSERT INTO telemetry_rows (time, host, set_id, v, x)
SELECT b.time, h.id, s.id,
       ARRAY(SELECT CASE WHEN {FITS} THEN e.v::real END
             FROM unnest(b.vals) WITH ORDINALITY AS e(v, i) ORDER BY e.i),
       CASE WHEN bool_and_fits THEN NULL ELSE
       ARRAY(SELECT CASE WHEN {FITS} THEN NULL ELSE e.v END
             FROM unnest(b.vals) WITH ORDINALITY AS e(v, i) ORDER BY e.i) END
FROM (SELECT b.*, (SELECT bool_and({FITS}) FROM unnest(b.vals) AS e(v)) AS bool_and_fits
      FROM telemetry_batch b) b
JOIN telemetry_hosts h ON h.host_id = b.host_id
JOIN telemetry_sets s ON s.digest = b.digest
"""

_FINAL_VIEW = """
CREATE OR REPLACE VIEW telemetry AS
SELECT r.time, h.host_id, u.component, u.metric, telemetry_value(u.x, u.v, r.d, u.i) AS value
FROM telemetry_rows r
JOIN telemetry_hosts h ON h.id = r.host
JOIN telemetry_sets s ON s.id = r.set_id
CROSS JOIN LATERAL unnest(s.components, s.metrics, r.v, r.x) WITH ORDINALITY
    AS u(component, metric, v, x, i)
"""  # as migration 029 defines it (d: the scaled decimals)


def pending(conn: Conn) -> bool:
    """Whether narrow rows (or the emptied narrow table) are still there."""
    row = conn.execute("SELECT to_regclass('telemetry_narrow') IS NOT NULL").fetchone()
    return bool(row and row[0])


def convert(conn: Conn, step: timedelta = STEP,
            log: Callable[[str], None] = print) -> int:
    """Move every narrow row (autocommit connection, a transaction per batch); the count."""
    moved = 0
    while pending(conn):
        row = conn.execute("SELECT min(time) FROM telemetry_narrow").fetchone()
        start: datetime | None = row[0] if row else None
        if start is None:
            _finish(conn)
            log(f"telemetry: {moved:,} narrow values moved to telemetry_rows")
            break
        with conn.transaction():
            conn.execute(_BATCH, {"a": start, "b": start + step})
            for statement in _IDS:
                conn.execute(statement)
            conn.execute(_ROWS)
            got = conn.execute("SELECT sum(cardinality(vals)) FROM telemetry_batch").fetchone()
            conn.execute("DROP TABLE telemetry_batch")
            _drop_empty_partitions(conn)
        moved += int(got[0]) if got and got[0] else 0
        log(f"telemetry: moved the narrow values from {start.isoformat()} on ({moved:,})")
    return moved


def _drop_empty_partitions(conn: Conn) -> None:
    """Drop the narrow partitions left empty (whole tables, not rows)."""
    for (name,) in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'telemetry_narrow'::regclass").fetchall():
        empty = conn.execute(f'SELECT NOT EXISTS (SELECT 1 FROM "{name}")').fetchone()
        if empty and empty[0]:
            conn.execute(f'DROP TABLE "{name}"')


def _finish(conn: Conn) -> None:
    """The view over the wide rows alone; the narrow table gone."""
    with conn.transaction():
        conn.execute(_FINAL_VIEW)
        conn.execute("DROP TABLE telemetry_narrow")
