"""Wills that came with our loss of the broker are relabelled 'broker'; others stay 'lost'."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg

from agent import messages
from collector import store
from collector.decode import decode
from collector.model import Message, Received

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def will(host: str, received: datetime) -> Message:
    body = messages.state(host, "s1", 9, T0, False, reason="lost", session=f"s-{host}")
    got = decode(Received(f"hg/v1/s1/{host}/state", json.dumps(body).encode(), 1, 1, received))
    assert isinstance(got, Message)
    return got


def test_only_wills_inside_the_window_are_the_brokers(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES ('s1', 'S1')")
        conn.execute("INSERT INTO customers (id, name) VALUES ('c1', 'C1')")
        conn.execute("INSERT INTO hosts (id, customer_id, site_id) VALUES ('a', 'c1', 's1'),"
                     " ('b', 'c1', 's1'), ('c', 'c1', 's1')")
        directory = store.Directory()
        lost_at = T0 + timedelta(minutes=5)
        store.write_batch(conn, directory, [  # type: ignore[arg-type]
            will("a", lost_at - timedelta(seconds=1)),  # just before our connection dropped
            will("b", lost_at - timedelta(minutes=2)),  # a host that really vanished
            will("c", lost_at + timedelta(seconds=40))], [])  # queued, delivered once back
        n = store.relabel_broker_wills(conn, lost_at - timedelta(seconds=2),  # type: ignore[arg-type]
                                       lost_at + timedelta(seconds=35 + 5))
        rows = dict(conn.execute("SELECT host_id, offline_reason FROM host_state").fetchall())
        status = dict(conn.execute("SELECT host_id, status FROM components").fetchall())
    assert n == 2
    assert rows == {"a": "broker", "b": "lost", "c": "broker"}
    assert status == {"a": "unknown", "b": "warning", "c": "unknown"}
