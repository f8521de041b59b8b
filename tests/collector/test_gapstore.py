"""collector.gapstore on a real database: a hole becomes a gap, is asked for, filled, or
recorded unfilled with its reason; will seqs are no gap; one collector scans at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg

from collector import gapstore
from collector.gaps import Policy
from tests.collector.live import seed

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
P = Policy(grace_s=10, give_up_s=900, retention_s=86400)


def keys(conn: psycopg.Connection[tuple[object, ...]], host: str, seqs: list[int],
         at: datetime) -> None:
    conn.cursor().executemany(
        "INSERT INTO ingest_keys (host_id, seq, kind, received_at) VALUES (%s, %s, 'telemetry',"
        " %s)", [(host, s, at) for s in seqs])
    conn.execute("INSERT INTO host_state (host_id, state, seq, ts, last_message) VALUES"
                 " (%s, 'online', %s, %s, %s) ON CONFLICT (host_id) DO UPDATE SET seq ="
                 " EXCLUDED.seq, last_message = EXCLUDED.last_message",
                 (host, max(seqs), at, at))


def test_a_gap_is_asked_for_given_up_with_a_reason_and_filled_late(pg_url: str) -> None:
    seed(pg_url, "iad1", {"r1": ["web-01", "web-02"]})
    sent: list[tuple[str, dict[str, object]]] = []

    def send(topic: str, payload: bytes) -> None:
        sent.append((topic, json.loads(payload)))

    with psycopg.connect(pg_url, autocommit=True) as conn:
        keys(conn, "web-01", [1, 2, 3, 6, 7], T0)  # 4 and 5 lost
        keys(conn, "web-02", [1, 3], T0)  # 2 is its will's seq, never fired
        conn.execute("INSERT INTO ingest_reserved (host_id, seq) VALUES ('web-02', 2)")
        done = gapstore.scan(conn, T0 + timedelta(seconds=5), P, send)
        assert done is not None
        assert done.found == 0  # within grace: likely on its way
        done = gapstore.scan(conn, T0 + timedelta(seconds=20), P, send)
        assert done is not None
        assert (done.found, done.seqs, done.asked) == (1, 2, 1)
        assert sent == [("hg/v1/iad1/web-01/cmd/resend", {
            "v": 1, "kind": "resend", "host": "web-01", "site": "iad1", "first_seq": 4,
            "last_seq": 5, "ts": "2026-12-03T09:00:20.000Z", "gap": sent[0][1]["gap"]})]
        # not asked again before its time; given up after give_up_s, with its reason
        gapstore.scan(conn, T0 + timedelta(seconds=30), P, send)
        assert len(sent) == 1
        done = gapstore.scan(conn, T0 + timedelta(seconds=20 + 901), P, send)
        assert done is not None
        assert done.given_up == 1
        row = conn.execute("SELECT state, reason, missing, requests FROM ingest_gaps").fetchone()
        assert row is not None
        assert row[0] == "unfilled"
        assert row[1].startswith("2 of seqs 4-5 not resent within 15 min, asked 1 times")
        assert gapstore.summary(conn) == {"open": 0, "filled": 0, "unfilled": 1}
        # the agent resends them after all: filled
        conn.execute("INSERT INTO ingest_keys (host_id, seq, kind) VALUES ('web-01', 4,"
                     " 'telemetry'), ('web-01', 5, 'telemetry')")
        done = gapstore.scan(conn, T0 + timedelta(seconds=20 + 960), P, send)
        assert done is not None
        assert done.filled == 1
        assert gapstore.summary(conn) == {"open": 0, "filled": 1, "unfilled": 0}


def test_one_collector_scans_at_a_time(pg_url: str) -> None:
    seed(pg_url, "iad1", {"r1": ["web-01"]})
    with psycopg.connect(pg_url) as holder, psycopg.connect(pg_url, autocommit=True) as conn:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (gapstore.GAP_LOCK,))
        assert gapstore.scan(conn, T0, P, lambda t, p: None) is None
