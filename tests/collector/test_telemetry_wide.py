"""The wide telemetry layout (migration 019): lossless values, exactly once, and the
conversion of narrow rows (batched, resumable, every value compared)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from collector import store, widecopy
from collector.decode import decode
from collector.model import Message, Received
from schemas import telemetry_convert
from schemas.migrate import migrate

T0 = datetime(2026, 11, 24, 10, tzinfo=UTC)
#: Values float4 holds (integers, halves, zeros) and values it would round or refuse.
TRICKY = [0.0, -0.0, 45.0, 45.5, 5400.0, 16_777_216.0, 0.1, 12.064, 16_777_217.0,
          1e300, -1e300, 1e-300, 3.4e38, 1.0e-45, 2.5e-39, 123_456_789_012.0, -7.25]


@pytest.mark.parametrize("value", [*TRICKY, math.nan, math.inf, -math.inf])
def test_float4_holds_only_what_it_holds_exactly(value: float) -> None:
    import struct
    if math.isnan(value) or math.isinf(value):
        assert widecopy.fits_float4(value)
        return
    try:
        back = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        back = None
    assert widecopy.fits_float4(value) == (back == value)


def _fleet(conn: psycopg.Connection[tuple[object, ...]], hosts: list[str]) -> None:
    conn.execute("INSERT INTO sites (id, name) VALUES ('iad1', 'Ashburn 1')")
    conn.execute("INSERT INTO customers (id, name) VALUES ('acme', 'Acme')")
    for h in hosts:
        conn.execute("INSERT INTO hosts (id, customer_id, site_id) VALUES (%s, 'acme', 'iad1')",
                     (h,))


def _message(host: str, seq: int, values: list[float], at: datetime) -> Message:
    readings = ",".join(f'{{"component":"host:{host}","metric":"m.r{i}","value":{v!r}}}'
                        for i, v in enumerate(values))
    payload = (f'{{"v":1,"kind":"telemetry","host":"{host}","site":"iad1","seq":{seq},'
               f'"ts":"{at:%Y-%m-%dT%H:%M:%S.%f}Z","interval_s":30,"readings":[{readings}],'
               f'"components":[]}}').encode()
    msg = decode(Received(f"hg/v1/iad1/{host}/telemetry", payload, seq, 1, at))
    assert isinstance(msg, Message), msg
    return msg


def test_the_collector_stores_every_value_exactly_once_and_exactly(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _fleet(conn, ["web-01", "web-02"])
        directory = store.Directory()
        batch = [_message("web-01", 1, TRICKY, T0),
                 _message("web-01", 2, [1.0, 2.0, 3.0], T0 + timedelta(seconds=30)),
                 _message("web-02", 1, TRICKY[::-1], T0)]
        first = store.write_batch(conn, directory, batch, [])
        again = store.write_batch(conn, directory, batch, [])  # a redelivery: all repeats
        assert (first.accepted, again.accepted, again.duplicates) == (3, 0, 3)
        rows = conn.execute("SELECT host_id, time, metric, value FROM telemetry"
                            " ORDER BY host_id, time, metric").fetchall()
        got = {(h, t, m): v for h, t, m, v in rows}
        assert len(rows) == len(got) == 2 * len(TRICKY) + 3
        for i, v in enumerate(TRICKY):
            assert got[("web-01", T0, f"m.r{i}")] == v
            assert math.copysign(1, got[("web-01", T0, f"m.r{i}")]) == math.copysign(1, v)
            assert got[("web-02", T0, f"m.r{i}")] == TRICKY[::-1][i]
        # a message whose values all fit float4 has no x array: 4 bytes a value
        assert conn.execute("SELECT count(*) FILTER (WHERE x IS NULL), count(*)"
                            " FROM telemetry_rows").fetchone() == (1, 3)


def _narrow_values(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Narrow rows over four days (and the default partition), tricky values, repeats."""
    for day in range(4):
        d = (T0 + timedelta(days=day)).date()
        conn.execute(f"CREATE TABLE telemetry_{d:%Y%m%d} PARTITION OF telemetry"
                     f" FOR VALUES FROM ('{d}') TO ('{d + timedelta(days=1)}')")
    conn.execute(
        "INSERT INTO telemetry (time, host_id, component, metric, value)"
        " SELECT %s::timestamptz + make_interval(secs => 30 * s), 'host-' || h,"
        "        CASE WHEN k %% 3 = 0 THEN 'disk:S' || h ELSE 'host:host-' || h END,"
        "        'm.r' || (k %% 7), v.v * (1 + k)"
        " FROM generate_series(0, 4 * 2880 - 1, 97) s, generate_series(1, 5) h,"
        "      generate_series(0, 9) k, unnest(%s::float8[]) WITH ORDINALITY v(v, o)"
        " WHERE o = 1 + (s + h + k) %% %s",
        (T0, TRICKY, len(TRICKY)))
    conn.execute("INSERT INTO telemetry VALUES ('2020-01-01', 'host-1', 'fan:fan1', 'fan.rpm',"
                 " 5400), ('2020-01-01', 'host-1', 'fan:fan1', 'fan.rpm', 5400)")  # default


def test_migration_019_converts_narrow_rows_batched_resumable_and_keeps_every_value(
        blank_db: str) -> None:
    migrate(blank_db, log=lambda m: None, before=19)
    with psycopg.connect(blank_db, autocommit=True) as conn:
        _narrow_values(conn)
        query = ("SELECT time, host_id, component, metric, value, value::text FROM telemetry"
                 " ORDER BY 1, 2, 3, 4, 5, 6")
        before = conn.execute(query).fetchall()
    assert len(before) > 5000
    batches: list[str] = []

    def stop_after_two_batches(line: str) -> None:
        if line.startswith("telemetry: moved"):  # not "applying NNN" nor "converting"
            batches.append(line)
        if len(batches) == 2:
            raise KeyboardInterrupt  # a migrate stopped mid-way

    with pytest.raises(KeyboardInterrupt):
        migrate(blank_db, log=stop_after_two_batches)
    with psycopg.connect(blank_db, autocommit=True) as conn:
        assert telemetry_convert.pending(conn)
        midway = conn.execute(query).fetchall()  # the view reads both tables meanwhile
        assert midway == before
        left = conn.execute("SELECT count(*) FROM telemetry_narrow").fetchone()
        assert left is not None
        assert 0 < left[0] < len(before)
        telemetry_convert.convert(conn, step=timedelta(hours=20), log=lambda m: None)
        assert not telemetry_convert.pending(conn)
        after = conn.execute(query).fetchall()
        assert after == before  # every value, bit for bit (and its text), none twice
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'telemetry\\_%%'"
                            " AND relname ~ '^telemetry_(narrow|[0-9])'").fetchone() == (0,)
        hourly = conn.execute("SELECT sum(n) FROM telemetry_hourly").fetchone()
        assert hourly == (len(before),)
    assert migrate(blank_db, log=lambda m: None) == []


def test_a_day_past_retention_is_rolled_up_then_dropped_whole(pg_url: str) -> None:
    day = datetime(2026, 8, 1, tzinfo=UTC)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _fleet(conn, ["web-01"])
        store.ensure_partitions(conn, day, retention_days=90)  # that day's partition exists
        batch = [_message("web-01", i + 1, [float(i), 0.1 * i, 1e300], day + timedelta(
            minutes=7 * i)) for i in range(400)]  # two days of messages, 7 minutes apart
        assert store.write_batch(conn, store.Directory(), batch, []).accepted == 400
        query = "SELECT * FROM telemetry_hourly ORDER BY bucket, component, metric"
        before = conn.execute(query).fetchall()
        store.ensure_partitions(conn, day + timedelta(days=91), retention_days=90)
        parts = {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relname"
                                            " LIKE 'telemetry\\_%%\\_2026%%'")}
        assert "telemetry_rows_20260801" not in parts  # dropped, its hours rolled up
        assert "telemetry_rows_20260802" in parts  # 90 days back: kept
        assert {"telemetry_hourly_rows_202610", "telemetry_hourly_rows_202611"} <= parts
        after = conn.execute(query).fetchall()
        assert [r[:4] + r[5:] for r in after] == [r[:4] + r[5:] for r in before]
        assert [r[4] for r in after] == pytest.approx([r[4] for r in before], rel=1e-12)
        rolled = conn.execute("SELECT count(*), sum(n) FROM telemetry_hourly_rows").fetchone()
        assert rolled == (24 * 3, 206 * 3)  # the first day: 24 hours, 206 messages, 3 metrics
        # the roll-ups go too, a month at a time, past their own retention
        store.ensure_partitions(conn, day + timedelta(days=800), retention_days=90,
                                rollup_days=730)
        assert conn.execute("SELECT count(*) FROM telemetry_hourly_rows").fetchone() == (0,)
