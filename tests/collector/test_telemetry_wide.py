"""The wide telemetry layout (migration 019): lossless values, exactly once, and the
conversion of narrow rows (batched, resumable, every value compared)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from agent import messages
from collector import store, widecopy
from collector.decode import decode
from collector.model import Message, Received
from schemas import telemetry_convert
from schemas.migrate import available, migrate

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


def _bits(v: float) -> bytes:
    import struct
    return struct.pack("!d", v)


def _messages_of_values() -> list[list[float]]:
    """Decimals of k = 1..6 digits, a message each, at every magnitude float4's integers
    allow and just past (as json.loads makes them of the agent's text); then random
    doubles (the simulator's psu.watts, any magnitude) and edge cases."""
    import random
    rnd = random.Random(29)
    out: list[list[float]] = []
    top = (1 << 24) - 1
    for k in range(1, 7):
        one = [float(f"{n}e-{k}") for n in (1, -1, 7, top, -top, top + 2)]
        out.append(one + [round(rnd.uniform(-1, 1) * 10 ** rnd.randint(0, 7 - k), k)
                          for _ in range(30)])
    out.append([rnd.uniform(180, 260) for _ in range(20)]
               + [rnd.random() * 10 ** rnd.randint(-300, 30) for _ in range(20)])
    out.append([0.1 + 0.2, 1e-7, 1234567.8, 0.000001, 16_777_215.5, 41.3, 5400.0])
    out.append([round(0.01 * i + 40, 2) for i in range(40)])  # decimals only: no x
    out.append([math.pi * (i + 1) for i in range(40)])  # doubles only: no v array
    return out


def test_decimals_are_stored_as_scaled_float4_and_read_back_bit_for_bit(pg_url: str) -> None:
    messages = _messages_of_values()
    at = [T0 + timedelta(seconds=30 * i) for i in range(len(messages))]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _fleet(conn, ["web-01"])
        store.ensure_partitions(conn, T0, retention_days=90)  # T0's day, to roll it up
        batch = [_message("web-01", i + 1, c, at[i]) for i, c in enumerate(messages)]
        assert store.write_batch(conn, store.Directory(), batch, []).accepted == len(batch)
        got = {(t, m): v for t, m, v in conn.execute(
            "SELECT time, metric, value FROM telemetry")}
        for i, c in enumerate(messages):
            for j, v in enumerate(c):
                back = got[(at[i], f"m.r{j}")]
                assert _bits(back) == _bits(v) or (math.isnan(v) and math.isnan(back)), (v, back)
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT time, v IS NULL, d IS NULL, coalesce(cardinality(array_remove(x, NULL)), 0)"
            " FROM telemetry_rows")}
        for i in range(6):  # one k a message: only the value past 2^24 x 10^-k goes to x
            assert rows[at[i]] == (False, False, 1)
        assert rows[at[6]] == (True, True, 40)  # random doubles: none reads back as a decimal
        assert rows[at[8]] == (False, False, 0)  # decimals only: no x array
        assert rows[at[9]] == (True, True, 40)  # doubles only: no v array
        # the roll-up reads the scaled values the same way
        store.ensure_partitions(conn, T0 + timedelta(days=91), retention_days=90)
        rolled = {m: (lo, hi, n) for m, lo, hi, n in conn.execute(
            "SELECT metric, min, max, n FROM telemetry_hourly_rows")}
        for j in range(40):
            vals = [c[j] for c in messages if len(c) > j]
            assert rolled[f"m.r{j}"] == (min(vals), max(vals), len(vals))


def test_an_hour_holding_1e300_beside_small_values_rolls_up(pg_url: str) -> None:
    """float8's avg() overflows on 1e300 beside other values (its sum of squared deviations);
    the view and the roll-up average in numeric (migration 030), so the day still rolls up
    and the raw partition is still dropped."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _fleet(conn, ["web-01"])
        store.ensure_partitions(conn, T0, retention_days=90)
        batch = [_message("web-01", i + 1, [v], T0 + timedelta(seconds=30 * i))
                 for i, v in enumerate([1e300, 1.0, -3.5e299])]
        assert store.write_batch(conn, store.Directory(), batch, []).accepted == 3
        view = conn.execute("SELECT avg, min, max, n FROM telemetry_hourly").fetchone()
        assert view == (pytest.approx((1e300 + 1.0 - 3.5e299) / 3), -3.5e299, 1e300, 3)
        store.ensure_partitions(conn, T0 + timedelta(days=91), retention_days=90)
        rolled = conn.execute("SELECT avg, min, max, n FROM telemetry_hourly_rows").fetchone()
        assert rolled == view
        assert conn.execute("SELECT count(*) FROM telemetry_rows").fetchone() == (0,)


@pytest.mark.parametrize(("value", "k"), [(0.1, 1), (12.08, 2), (41.3, 1), (0.37, 2),
                                          (12.064, 3), (-7.125, 3), (1e-6, 6), (1e-7, 0),
                                          (1_677_721.5, 1), (1_677_721.55, 0), (1e300, 0),
                                          (218.73412345, 0)])
def test_digits_finds_the_fewest_decimals_that_read_back(value: float, k: int) -> None:
    assert widecopy.digits(value) == k


@pytest.mark.fuzz
def test_any_short_decimal_reads_back_exactly() -> None:
    """Every decimal of up to 6 digits below 2^24 x 10^-k: n / 10^k is the agent's double."""
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.integers(-(1 << 24) + 1, (1 << 24) - 1), st.integers(1, 6))
    def check(n: int, k: int) -> None:
        value = float(f"{n}e-{k}")  # what json.loads makes of the agent's text
        d = widecopy.digits(value)
        assert 1 <= d <= k or widecopy.fits_float4(value)
        if d:
            scaled = round(value * 10 ** d)
            assert abs(scaled) < 1 << 24
            assert float(scaled) / 10.0 ** d == value

    check()


def test_history_finds_a_hosts_hours_through_the_host_hour_index(blank_db: str) -> None:
    """Migration 031, applied to a database holding rows: the wide rows are indexed by
    (host, UTC hour); `hourglass history` bounds the hour, so the index finds only the
    hours asked for, and the time the rows in them."""
    from dispatcher.store import telemetry as history

    migrate(blank_db, log=lambda m: None, before=31)
    hosts = [f"web-{i:02d}" for i in range(1, 21)]
    with psycopg.connect(blank_db, autocommit=True) as conn:
        _fleet(conn, hosts)
        store.ensure_partitions(conn, T0, 30, 400)
        directory = store.Directory()
        # five hours of one message every 5 minutes from 20 hosts, batch by batch
        for slot in range(60):
            at = T0 + timedelta(minutes=5 * slot)
            store.write_batch(conn, directory, [
                _message(h, slot + 1, [float(slot), float(i)], at)
                for i, h in enumerate(hosts)], [])
        stored = conn.execute("SELECT count(*) FROM telemetry_rows").fetchone()
        assert stored == (60 * 20,)
        # docs/scaling.md: a large database builds a partition's index beforehand without
        # blocking ingest; 031 then attaches it rather than building a second one
        sql = next(m.sql for m in available() if m.version == 31 and m.variant == "plain")
        conn.execute(sql[sql.index("CREATE OR REPLACE FUNCTION"):sql.index("$$;") + 3])
        row = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'telemetry_rows'::regclass AND c.relname LIKE '%20261124'"
        ).fetchone()
        assert row is not None
        part = row[0]
        conn.execute(f"CREATE INDEX CONCURRENTLY early ON {part} (host, telemetry_hour(time))")
    assert migrate(blank_db, log=lambda m: None) == ["031_telemetry_hour_index (plain)"]
    with psycopg.connect(blank_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry_rows").fetchone() == stored
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname ="
                            " 'telemetry_rows_host_hour'").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname ="
                            " 'telemetry_rows_host_time'").fetchone() == (0,)
        conn.execute("ANALYZE telemetry_rows")
        since, until = T0 + timedelta(minutes=62), T0 + timedelta(minutes=125)
        got = history.points(conn, "web-07", since, until, "host:web-07", "m.r0")
        # (62, 125] holds the messages at 65, 70, ..., 125 minutes: slots 13..25
        assert [(p.time, p.value) for p in got] == [
            (T0 + timedelta(minutes=5 * s), float(s)) for s in range(13, 26)]
        assert len(history.points(conn, "web-07", since, until)) == 2 * 13
        conn.execute("SET enable_seqscan = off")  # a small table: ask what the plan would be
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN " + history._HOST.replace("%(cap)s", "100"),
            {"host": "web-07", "since": since, "until": until}).fetchall())
        assert conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = %s", (part,)).fetchone() == (1,)
        assert "Index Scan on early" in plan, plan  # the one built beforehand, attached
        assert "Index Cond: ((host = h.id) AND (date_bin(" in plan, plan


def test_metric_set_keys_are_equal_exactly_when_the_names_are() -> None:
    """The set cache's key is one string (components '/'-joined, a newline, metrics);
    names holding '/' or a newline (which decode refuses, but a message built past it may
    carry) must not make two lists one key. decode's key is the same string."""
    from types import SimpleNamespace
    from typing import Any, cast

    def key(pairs: list[tuple[str, str]]) -> str:
        readings = [SimpleNamespace(component=c, metric=m) for c, m in pairs]
        return widecopy.set_key(cast(Any, SimpleNamespace(set_key="", telemetry=SimpleNamespace(
            readings=readings))))

    lists = [[("disk:a", "m.x")], [("disk:a/m.x", "y")], [("disk:a", "m.x/y")],
             [("disk:a", "m.x"), ("disk:b", "m.y")], [("disk:a", "m.x/disk:b"), ("m.y", "z")],
             [("disk:a/m.x/disk:b", "m.y")], [("disk:a", "")], [("", "m.x")], [],
             [("disk:a/disk:b", "m.x/m.y")], [("disk:a", "disk:b\nm.x")],
             [("disk:a\ndisk:b", "m.x")], [("disk:a", "m.x"), ("disk:b\nm.x", "m.y")]]
    keys = [key(p) for p in lists]
    assert len(set(keys)) == len(lists)
    assert key([("disk:a", "m.x"), ("disk:b", "m.y")]) == "disk:a/disk:b\nm.x/m.y"
    assert keys == [key(p) for p in lists]  # the same names, the same key
    body = messages.telemetry("h1", "s1", 1, datetime.now(UTC), interval_s=30.0,
                              readings=[messages.Reading("disk:a", "m.x", 1.0),
                                        messages.Reading("disk:b", "m.y", 2.0)], components=[])
    got = decode(Received("hg/v1/s1/h1/telemetry", json.dumps(body).encode(), 1, 1,
                                 datetime.now(UTC)))
    assert isinstance(got, Message)
    assert got.set_key == "disk:a/disk:b\nm.x/m.y" == widecopy.set_key(got)
