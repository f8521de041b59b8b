"""Planned work follows shifts on a real database: a planned job whose technician went off
shift past the window, or inactive, goes to a colleague on shift, keeping its spare."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dispatcher.service import proactive
from dispatcher.store import spares
from tests.dispatcher.world import at, setup_fleet, tick

Conn = psycopg.Connection[Any]


@pytest.fixture
def url(pg_url: str) -> str:
    """iad1 (UTC): Ana works 00:00-09:30, Bob 09:00-21:00 (T0 is 09:00); 3 disks in stock;
    one open disk prediction, planned at T0 for Ana (the tie goes to the smaller id)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        conn.execute("UPDATE technicians SET active = id IN ('t-ana', 't-bob', 't-maria')")
        conn.execute("UPDATE technicians SET shift_start = '00:00', shift_end = '09:30'"
                     " WHERE id = 't-ana'")
        conn.execute("UPDATE technicians SET shift_start = '09:00', shift_end = '21:00'"
                     " WHERE id = 't-bob'")
        conn.execute("INSERT INTO contacts (person_id, channel, address)"
                     " VALUES ('t-bob', 'email', 'bob@example.com')")
        spares.import_rows(conn, [spares.SpareRow("iad1", "ST8000NM000A", "disk", 3)], "test",
                           at(-60))
        conn.execute(
            "INSERT INTO predictions (host_id, site_id, customer_id, component, kind,"
            " prediction, rule, slot, detected_at, last_seen) VALUES ('web-01', 'iad1', 'acme',"
            " 'disk:S1', 'disk', 'smart_counter_rising', 'smart_baseline', 'sda', %s, %s)",
            (at(-30), at(-30)))
    tick(pg_url, at(0))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert job(conn)[1:] == ("t-ana", "planned", "ST8000NM000A")
    return pg_url


def job(conn: Conn) -> tuple[int, str, str, str | None]:
    """(id, technician, state, spare part) of the one proactive job."""
    row = conn.execute("SELECT id, technician_id, state, spare_part FROM proactive_jobs"
                       ).fetchone()
    assert row is not None
    return int(row[0]), row[1], row[2], row[3]


def moves(conn: Conn) -> list[dict[str, Any]]:
    """The replanned events, oldest first."""
    return [r[0] for r in conn.execute("SELECT detail FROM proactive_job_events"
                                       " WHERE kind = 'replanned' ORDER BY id")]


def test_off_shift_past_the_window_goes_to_a_colleague_with_its_spare(url: str) -> None:
    tick(url, at(60))  # 10:00: Ana off for 30 min, inside the hour
    with psycopg.connect(url, autocommit=True) as conn:
        assert job(conn)[1] == "t-ana"
        assert moves(conn) == []
    tick(url, at(91))  # 10:31: off for 61 min
    with psycopg.connect(url, autocommit=True) as conn:
        jid, who, state, part = job(conn)
        held = conn.execute("SELECT state, part FROM spare_reservations"
                            " WHERE proactive_job_id = %s", (jid,)).fetchone()
        told = conn.execute("SELECT recipient, body FROM outbox WHERE recipient = 't-bob'"
                            " AND reason = 'proactive_planned'").fetchall()
        stock = spares.stock(conn, "iad1")[0]
        assert moves(conn) == [{"from": "t-ana", "to": "t-bob",
                                "reason": "t-ana off shift since 09:30 (UTC)"}]
    assert (who, state, part) == ("t-bob", "planned", "ST8000NM000A")
    assert held == ("reserved", "ST8000NM000A")  # the reservation stayed with the job
    assert (stock.count, stock.available) == (3, 2)  # nothing released, nothing taken twice
    assert len(told) == 1
    assert "moved to you from t-ana" in told[0][1]
    tick(url, at(92))  # Bob is on shift: it stays with him
    with psycopg.connect(url, autocommit=True) as conn:
        assert len(moves(conn)) == 1


def test_an_acknowledged_job_stays_with_its_technician(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE proactive_jobs SET state = 'acknowledged', acknowledged_at = %s",
                      (at(5),))
    tick(url, at(5 * 60))
    with psycopg.connect(url, autocommit=True) as conn:
        assert job(conn)[1:3] == ("t-ana", "acknowledged")
        assert moves(conn) == []


def test_an_inactive_technicians_job_moves_at_once(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE technicians SET active = false WHERE id = 't-ana'")
    tick(url, at(1))
    with psycopg.connect(url, autocommit=True) as conn:
        assert job(conn)[1] == "t-bob"
        assert moves(conn) == [{"from": "t-ana", "to": "t-bob",
                                "reason": "technician inactive"}]


def test_nobody_to_take_it_leaves_it_where_it_is(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE technicians SET active = false WHERE id = 't-bob'")
    tick(url, at(3 * 60))
    with psycopg.connect(url, autocommit=True) as conn:
        assert job(conn)[1] == "t-ana"
        assert moves(conn) == []


def test_the_window_is_a_setting(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        proactive.run(conn, at(91), off_shift_window=timedelta(hours=2))
        assert job(conn)[1] == "t-ana"
        proactive.run(conn, at(151), off_shift_window=timedelta(hours=2))
        assert job(conn)[1] == "t-bob"
