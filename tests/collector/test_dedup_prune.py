"""Deduplication keys are pruned past collector.dedup_days, and repeats stay refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from collector import store
from hourglass.config import CollectorConfig
from tests.collector.test_predictions import seed, tel, write

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def keys(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return [(r[0], int(r[1])) for r in conn.execute(
            "SELECT host_id, seq FROM ingest_keys ORDER BY host_id, seq")]


def age(url: str, seqs: range, days: float) -> None:
    """Make these keys of h-01 look received `days` before NOW."""
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE ingest_keys SET received_at = %s WHERE seq = ANY(%s)",
                     (NOW - timedelta(days=days), list(seqs)))


def test_old_keys_go_and_the_floor_refuses_their_repeats(pg_url: str) -> None:
    seed(pg_url)
    write(pg_url, [[tel(s, s * 30) for s in range(1, 11)]])
    age(pg_url, range(1, 7), 7.01)  # seqs 1-6 are just past a 7-day horizon
    age(pg_url, range(7, 11), 6.99)  # 7-10 just inside it
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert store.prune_keys(conn, NOW, 7, chunk=4) == 6  # two chunks, then a short one
        assert conn.execute("SELECT host_id, seq FROM ingest_floor").fetchall() == [("h-01", 6)]
        assert store.prune_keys(conn, NOW, 7) == 0  # nothing more to do: a no-op
    assert keys(pg_url) == [("h-01", s) for s in range(7, 11)]
    # a redelivery of a pruned message, of a kept one, and a new message
    (old, kept, new) = write(pg_url, [[tel(3, 90)], [tel(8, 240)], [tel(11, 330)]])
    assert (old.accepted, old.duplicates, old.rows) == (0, 1, 0)
    assert (kept.accepted, kept.duplicates) == (0, 1)
    assert (new.accepted, new.rows) == (1, 1)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (11,)


def test_the_floor_only_rises(pg_url: str) -> None:
    seed(pg_url)
    write(pg_url, [[tel(s, s * 30) for s in range(1, 5)]])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ingest_floor VALUES ('h-01', 100)")
        age(pg_url, range(1, 5), 30)
        assert store.prune_keys(conn, NOW, 7) == 4
        assert conn.execute("SELECT seq FROM ingest_floor").fetchone() == (100,)


def test_dedup_days_below_one_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="collector.dedup_days"):
        CollectorConfig(dedup_days=0).validate()
