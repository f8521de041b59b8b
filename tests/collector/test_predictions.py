"""Predictions through the store on a real database: no SLA incident, one open per slug."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg

from agent import messages
from collector import store
from collector.decode import decode
from collector.model import Message, Received

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DISK = "disk:SN1"


def tel(seq: int, at: int, status: str = "ok", failure: str | None = None,
        reallocated: float = 0.0) -> Message:
    body = messages.telemetry(
        "h-01", "s1", seq, T0 + timedelta(seconds=at), interval_s=30.0,
        readings=[messages.Reading(DISK, "smart.attr_5_raw", reallocated)],
        components=[messages.ComponentState(DISK, "disk", status, "sda", "SN1", failure)])
    got = decode(Received("hg/v1/s1/h-01/telemetry", json.dumps(body).encode(), seq, 1,
                          T0 + timedelta(seconds=at)))
    assert isinstance(got, Message)
    return got


def seed(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES ('s1', 'Site 1')")
        conn.execute("INSERT INTO customers (id, name) VALUES ('c1', 'C1')")
        conn.execute("INSERT INTO hosts (id, customer_id, site_id) VALUES ('h-01', 'c1', 's1')")


def write(url: str, batches: list[list[Message]]) -> list[store.BatchResult]:
    directory = store.Directory()
    with psycopg.connect(url, autocommit=True) as conn:
        directory.reload(conn)
        return [store.write_batch(conn, directory, b, []) for b in batches]


def predictions(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT component, prediction, rule, state, detected_at, last_seen, repeats,"
            " customer_id FROM predictions ORDER BY id").fetchall()


def test_agent_warning_opens_one_prediction_and_no_incident(pg_url: str) -> None:
    seed(pg_url)
    results = write(pg_url, [[tel(1, 0, "warning", "nvme_wear")],
                             [tel(2, 30, "warning", "nvme_wear")],
                             [tel(3, 60, "warning", "nvme_wear")]])
    assert [len(r.predicted) for r in results] == [1, 0, 0]
    assert [r.opened for r in results] == [[], [], []]
    assert predictions(pg_url) == [(DISK, "nvme_wear", "nvme_wear", "open", T0,
                                    T0 + timedelta(seconds=60), 3, "c1")]


def test_smart_baseline_survives_batches_in_the_database(pg_url: str) -> None:
    seed(pg_url)
    # the baseline is set by the first batch; the rise is seen by a later one (another
    # collector, or after a restart): state lives in rule_state, not in memory
    write(pg_url, [[tel(1, 0, reallocated=8.0)], [tel(2, 30, reallocated=8.0)],
                   [tel(3, 60, reallocated=9.0)]])
    got = predictions(pg_url)
    assert [(g[0], g[1], g[2], g[4]) for g in got] == [
        (DISK, "smart_counter_rising", "smart_baseline", T0 + timedelta(seconds=60))]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM incidents").fetchone() == (0,)


def test_stale_reading_in_one_batch_is_skipped(pg_url: str) -> None:
    seed(pg_url)
    # seq 3 (rise) and the older seq 2 in one batch: evaluated in seq order either way
    write(pg_url, [[tel(1, 0, reallocated=8.0)],
                   [tel(3, 60, reallocated=9.0), tel(2, 30, reallocated=8.0)]])
    assert [(g[1], g[4]) for g in predictions(pg_url)] == [
        ("smart_counter_rising", T0 + timedelta(seconds=60))]
